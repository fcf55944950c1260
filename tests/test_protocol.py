"""The protocol table (``swarmfold.core.protocol``) is complete and agrees with the core."""

from __future__ import annotations

import attrs
import pytest

from swarmfold.core.commands import COMMAND_TYPES, LogHeartbeat, QueueBatch, WakeAt
from swarmfold.core.errors import ProtocolViolation
from swarmfold.core.events import EVENT_TYPES, BatchQueueFailed, HeartbeatFailed
from swarmfold.core.protocol import (
    ANSWERS_TO,
    BATCH,
    EXECUTED_LANES,
    HEARTBEAT,
    PROTOCOL,
    SERVER_COMMANDS,
    UNSOLICITED_EVENTS,
    exchange_of,
    failure_event,
    lane_of,
)


def test_every_command_has_one_row_and_every_event_a_place() -> None:
    assert list(PROTOCOL) == list(COMMAND_TYPES)
    placed = set(ANSWERS_TO) | set(UNSOLICITED_EVENTS)
    assert placed == set(EVENT_TYPES)
    assert not set(ANSWERS_TO) & set(UNSOLICITED_EVENTS)


def test_answered_commands_run_on_a_lane_and_unanswered_ones_do_not() -> None:
    for row in PROTOCOL.values():
        assert row.answered == (row.lane in EXECUTED_LANES), row.command.__name__
        if row.server:
            assert row.answered and row.failure is not None, row.command.__name__


def test_answer_and_failure_events_carry_the_command_id() -> None:
    for row in PROTOCOL.values():
        for event in (*row.answers, *([row.failure] if row.failure else [])):
            names = [a.name for a in attrs.fields(event)]
            assert names[:2] == ["command_id", "at"], event.__name__
        if row.failure is not None:
            assert "error" in [a.name for a in attrs.fields(row.failure)]


def test_failure_event_is_built_from_the_table() -> None:
    beat = LogHeartbeat(7, 1, "R", 90.0)
    assert failure_event(beat, 3.5, "boom") == HeartbeatFailed(7, 3.5, "boom")
    batch = QueueBatch(8, 1, (1, 2), 5, 1)
    assert failure_event(batch, 1.0, "x") == BatchQueueFailed(8, 1.0, "x")
    with pytest.raises(ProtocolViolation, match="WakeAt has no failure event"):
        failure_event(WakeAt(9, 1.0), 1.0, "x")


def test_lanes_keep_the_heartbeat_alone() -> None:
    assert lane_of(LogHeartbeat(1, 1, "R", 90.0)) == HEARTBEAT
    assert lane_of(QueueBatch(1, 1, (1,), 1, 1)) == BATCH
    assert [c for c, row in PROTOCOL.items() if row.lane == HEARTBEAT] == [LogHeartbeat]
    assert QueueBatch in SERVER_COMMANDS and WakeAt not in SERVER_COMMANDS


def test_an_unknown_command_type_is_a_protocol_violation() -> None:
    with pytest.raises(ProtocolViolation, match="no protocol row for int"):
        exchange_of(int)
