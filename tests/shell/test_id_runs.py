"""Long task-id lists are written to the event log as runs of consecutive ids (log version 2)
or as a bitmap (version 4), read back exactly, and a damaged runs or bitmap object is named at
its field and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmfold.core.commands import Finish, QueueBatch
from swarmfold.core.events import BatchQueued, TaskStatusesFetched
from swarmfold.core.id_array import IdArray
from swarmfold.core.topology import ArraySpec, ResourceSetSpec, TaskSpec, TopologySpec
from swarmfold.shell.log import eventlog
from swarmfold.shell.log.codec import CodecError, command_from_dict, event_from_dict, to_json
from swarmfold.shell.log.eventlog import read_header, read_log
from swarmfold.shell.log.id_runs import (
    BITS_SPAN,
    MAX_IDS,
    MIN_IDS,
    compact_by_status,
    compact_ids,
    expand_ids,
)
from swarmfold.shell.log.record_codec import decode_value, encode_value, record_text
from swarmfold.shell.log.replay import replay

from . import RUNNER, codec_line, lines_of, record_run

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_logs"


def _through_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _runs_of(ids: list[int]) -> list[tuple[int, int]]:
    """The oracle: maximal runs of +1 steps, one id at a time."""
    runs: list[tuple[int, int]] = []
    for i in ids:
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    return runs


_BLOCKS = st.lists(
    st.tuples(st.integers(-(2**40), 2**40), st.integers(1, 40)), max_size=80
).map(lambda blocks: [first + k for first, n in blocks for k in range(n)])
#: Increasing ids with gaps (a layer's tasks DONE so far): many short runs.
_SPARSE = st.tuples(
    st.integers(-(2**40), 2**40), st.lists(st.integers(1, 40), min_size=50, max_size=300)
).map(lambda start_steps: [start_steps[0] + sum(start_steps[1][:k]) for k in range(len(start_steps[1]))])
_ANY_IDS = st.one_of(_BLOCKS, _SPARSE, st.lists(st.integers(-(2**70), 2**70), max_size=200))


@given(_ANY_IDS)
def test_any_id_list_comes_back_exactly_and_short_forms_only_when_they_are_short(ids: list[int]) -> None:
    written = compact_ids(tuple(ids))
    runs = _runs_of(ids)
    fits = all(-(2**63) <= i < 2**63 for i in ids)
    increasing = all(a < b for a, b in zip(ids, ids[1:], strict=False))
    if len(ids) >= MIN_IDS and fits and 4 * len(runs) <= len(ids):
        assert written == {"runs": [x for run in runs for x in run]}
        assert expand_ids(_through_json(written)) == tuple(ids)
    elif len(ids) >= MIN_IDS and fits and increasing and ids[-1] - ids[0] + 1 <= BITS_SPAN * len(ids):
        assert isinstance(written, dict) and list(written) == ["bits"]
        assert written["bits"][:2] == [ids[0], ids[-1] - ids[0] + 1]
        assert expand_ids(_through_json(written)) == tuple(ids)
    else:
        assert written == tuple(ids)


def test_a_layer_done_so_far_is_a_bitmap_of_two_bits_an_id() -> None:
    """Every other id of 10,000: 5,000 runs of one, written as 1,250 bytes of bitmap."""
    ids = tuple(range(100, 20_100, 2))
    written = compact_ids(ids)
    assert written["bits"][:2] == [100, 19_999] and len(written["bits"][2]) == 3_336
    back = expand_ids(_through_json(written))
    assert isinstance(back, IdArray) and tuple(back) == ids
    assert len(json.dumps(written)) * 10 < len(json.dumps(list(ids)))


_INT64_IDS = st.one_of(_BLOCKS, st.lists(st.integers(-(2**63), 2**63 - 1), max_size=200))


@given(_INT64_IDS)
def test_a_packed_list_is_written_as_its_tuple_is(ids: list[int]) -> None:
    """The log's bytes do not depend on how the ids were held: an ``IdArray`` is written as
    the tuple of its ids is (a plain JSON list when not as runs)."""
    packed = IdArray.of(ids)
    assert json.dumps(compact_ids(packed)) == json.dumps(compact_ids(tuple(ids)))
    by_status = {"D": packed, "R": IdArray.of(ids[:3])}
    assert json.dumps(compact_by_status(by_status)) == json.dumps(
        compact_by_status({k: tuple(v) for k, v in by_status.items()})
    )


def test_a_long_expansion_comes_packed_and_a_short_one_as_a_tuple() -> None:
    long_ids = expand_ids({"runs": [10, 5000]})
    assert type(long_ids) is IdArray and long_ids == tuple(range(10, 5010))
    short = expand_ids({"runs": [10, 4000, 5, 2]})
    assert type(short) is tuple and short == (*range(10, 4010), 5, 6)


@pytest.mark.parametrize(
    ("sizes", "gap", "form"),
    [
        ([4] * 16, 13, "runs"),  # 64 ids in 16 runs (half the numbers), a span of 259 > 16 a run
        ([4] * 16, 12, "bits"),  # the same over a span of 244: at most 16 ids a run
        ([4] * 15 + [3, 1], 13, "bits"),  # 64 ids in 17 runs: more than half the numbers
        ([4] * 15 + [3, 1], 100, "plain"),  # ... and too wide for a bitmap (16 ids an id)
        ([63], 5, "plain"),  # one run, but shorter than MIN_IDS
        ([64], 5, "runs"),
    ],
)
def test_the_form_is_chosen_at_the_documented_bounds(sizes: list[int], gap: int, form: str) -> None:
    ids, first = [], 10
    for size in sizes:
        ids += range(first, first + size)
        first += size + gap
    written = compact_ids(tuple(ids))
    assert (next(iter(written)) if isinstance(written, dict) else "plain") == form
    assert expand_ids(written) == tuple(ids) if isinstance(written, dict) else written == tuple(ids)


def test_runs_out_of_order_stay_runs() -> None:
    """A bitmap holds increasing ids only: runs listed in another order are written as runs."""
    ids = [*range(1000, 1064), *range(10, 74)]
    assert compact_ids(tuple(ids)) == {"runs": [1000, 64, 10, 64]}


def test_a_bitmap_only_for_increasing_ids_within_its_span_bound() -> None:
    ids = list(range(0, 2 * MIN_IDS, 2))  # every other id: not runs
    assert "bits" in compact_ids(tuple(ids))
    assert compact_ids(tuple(reversed(ids))) == tuple(reversed(ids))  # decreasing: plain
    spread = list(range(0, 2 * (MIN_IDS - 1), 2))
    widest = (*spread, BITS_SPAN * MIN_IDS - 1)  # a span of BITS_SPAN ids an id
    assert "bits" in compact_ids(widest)
    too_wide = (*spread, BITS_SPAN * MIN_IDS)
    assert compact_ids(too_wide) == too_wide


def test_many_runs_expand_as_few_do() -> None:
    """Past 32 runs the reader expands with numpy; the ids are the same."""
    ids = tuple(i for block in range(1000) for i in range(block * 100, block * 100 + 7))
    written = compact_ids(ids)
    assert isinstance(written, dict) and len(written["runs"]) == 2000
    assert expand_ids(_through_json(written)) == ids
    assert expand_ids({"runs": written["runs"][:64]}) == ids[:224]  # 32 runs: the loop


def test_a_block_of_a_million_ids_is_two_numbers() -> None:
    ids = tuple(range(5, 1_000_005))
    assert compact_ids(ids) == {"runs": [5, 1_000_000]}
    assert expand_ids({"runs": [5, 1_000_000]}) == ids


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"runs": [1, 2, 3]}, "$.runs: expected pairs of first id and count, got 3 numbers"),
        ({"runs": [1, 0]}, "$.runs[1]: a run's count must be at least 1, got 0"),
        ({"runs": [1, 2, 9, -4]}, "$.runs[3]: a run's count must be at least 1, got -4"),
        ({"runs": [1, True]}, "$.runs[1]: expected int, got True"),
        ({"runs": [1, 2.0]}, "$.runs[1]: expected int, got 2.0"),
        ({"runs": "1-5"}, "$.runs: expected an array of ints, got '1-5'"),
        ({"runs": [2**64, 1]}, "$.runs[0]: 18446744073709551616 does not fit in 64 bits"),
        ({"runs": [2**63 - 2, 3]}, "$.runs[0]: the run from 9223372036854775806 goes past 64 bits"),
        ({"runs": [1, MAX_IDS, 0, 1]}, f"$.runs: stands for {MAX_IDS + 1:,} ids, more than"),
        ({"runs": [1, 2], "step": 1}, "$: unknown field(s) in an id runs object: step"),
        ({"first": 1}, "$.runs: required field missing"),
        ({"bits": [1, 8]}, "$.bits: expected [first id, span, base64 bitmap], got [1, 8]"),
        ({"bits": [1, 8.0, "AQ=="]}, "$.bits[1]: expected int, got 8.0"),
        ({"bits": [1, 0, ""]}, "$.bits[1]: expected a span from 1 to"),
        ({"bits": [2**63 - 2, 8, "AQ=="]}, "$.bits[0]: ids from 9223372036854775806 over a span of 8"),
        ({"bits": [1, 8, "A$=="]}, "$.bits[2]: not base64"),
        ({"bits": [1, 16, "AQ=="]}, "$.bits[2]: expected 2 bytes for a span of 16, got 1"),
        ({"bits": [1, 4, "/w=="]}, "$.bits[2]: bits set past the span of 4"),
        ({"bits": [1, 8, "AQ=="], "runs": []}, "$: unknown field(s) in an id runs object: bits"),
    ],
)
def test_a_damaged_runs_object_names_what_and_where(value: dict[str, Any], message: str) -> None:
    with pytest.raises(CodecError) as exc:
        expand_ids(value)
    assert exc.value.errors[0].startswith(message), exc.value.errors


def test_the_log_writes_long_lists_as_runs_and_short_ones_plain() -> None:
    batch = QueueBatch(3, 1, tuple(range(100, 600)), 2, 1)
    fetched = TaskStatusesFetched(4, 1.0, {"D": tuple(range(1, 65)), "Q": (70, 72), "R": ()}, "t")
    answered = BatchQueued(5, 2.0, {"Q": tuple(range(1, 64))}, 0.5)
    line = json.loads(record_text(1, "r", fetched, [batch]))
    assert line["commands"][0]["task_ids"] == {"runs": [100, 500]}
    assert line["event"]["tasks_by_status"] == {"D": {"runs": [1, 64]}, "Q": [70, 72], "R": []}
    assert eventlog._dumps(encode_value(answered)) == to_json(answered)  # 63 ids: plain, as the codec
    for value, by_name, slow in [
        (batch, eventlog._COMMANDS_BY_NAME, command_from_dict),
        (fetched, eventlog._EVENTS_BY_NAME, event_from_dict),
    ]:
        data = _through_json(encode_value(value))
        assert decode_value(data, by_name, lambda d: pytest.fail(f"slow path for {d}")) == value
        assert slow(json.loads(to_json(value))) == value


def test_a_record_that_takes_the_codec_still_reads_its_runs() -> None:
    """A field the fast path declines (an int as the float ``at``... is fine; a null
    ``server_time`` is fine; an unknown field is not) sends the record through the codec,
    which gets the ids expanded and names the real problem."""
    data = _through_json(encode_value(TaskStatusesFetched(4, 1.0, {"D": tuple(range(1, 100))}, None)))
    data["server_time"] = 5
    with pytest.raises(CodecError, match=r"\$\.server_time: expected str"):
        decode_value(data, eventlog._EVENTS_BY_NAME, event_from_dict)
    data["server_time"] = None
    data["tasks_by_status"]["D"]["runs"][1] = 0
    with pytest.raises(CodecError, match=r"\$\.tasks_by_status\['D'\]\.runs\[1\]: a run's count"):
        decode_value(data, eventlog._EVENTS_BY_NAME, event_from_dict)


def _wide_spec(n: int) -> TopologySpec:
    """``n`` independent tasks in one array: every batch and sync list is one long block."""
    return TopologySpec(
        tasks=[TaskSpec(i, 1, 1) for i in range(1, n + 1)],
        arrays=[ArraySpec(1, "a", 10_000)],
        resource_sets=[ResourceSetSpec(1, "all.q", (("memory", 1),))],
    )


def test_a_recorded_run_with_runs_replays_and_is_smaller(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    result = record_run(path, _wide_spec(3000))
    assert isinstance(result.outcome, Finish) and result.outcome.summary.done_count == 3000
    assert read_header(path).version >= 2  # runs came with version 2
    log = read_log(path, strict=True)
    with_ids = [r for r in log.records if isinstance(r.event, TaskStatusesFetched | BatchQueued)]
    assert with_ids
    written = sum(len(lines_of(path)[r.line - 1]) for r in with_ids)
    plain = sum(len(codec_line(r.seq, RUNNER, r.event, r.commands)) + 1 for r in with_ids)  # + newline
    assert written < plain / 2
    replayed = replay(str(path))
    assert replayed.ok, (replayed.divergence, replayed.error)


def test_a_damaged_run_in_a_log_names_its_line_and_keeps_the_records_before(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    record_run(path, _wide_spec(500))
    lines = lines_of(path)
    at = next(i for i, line in enumerate(lines) if b'"task_ids":{"runs":[' in line)
    record = json.loads(lines[at])
    k = next(k for k, c in enumerate(record["commands"]) if type(c.get("task_ids")) is dict)
    record["commands"][k]["task_ids"]["runs"].append(7)
    lines[at] = json.dumps(record).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    log = read_log(path)
    assert log.error is not None and log.error.line == at + 1
    assert log.error.field == f"$.commands[{k}].task_ids.runs"
    assert "pairs of first id and count" in log.error.message
    assert len(log.records) == at - 1


def test_version_1_logs_still_read(tmp_path: Path) -> None:
    packed = GOLDEN / "fold-pipeline.log.gz"
    plain = tmp_path / "v1.log"
    plain.write_bytes(gzip.decompress(packed.read_bytes()))
    assert read_header(plain).version == 1
    assert read_log(plain, strict=True).records


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (True, "expected int, got True"),
        (False, "expected int, got False"),
        (1.0, "expected int, got 1.0"),
        ("7", "expected int, got '7'"),
        (None, "expected int, got None"),
        (2**64, "18446744073709551616 does not fit in 64 bits"),
    ],
)
@pytest.mark.parametrize("at", [0, 1, 101, 199])
def test_a_long_runs_list_names_a_bad_number_where_a_short_one_does(bad: Any, message: str, at: int) -> None:
    """Above 64 numbers the runs are converted and checked in one pass (``int64_array``):
    the same item is refused with the same message."""
    flat: list[Any] = []
    for k in range(100):
        flat += [1_000 * k + 1, 1 + k % 2]  # counts of 1 and 2: many items equal to 1
    flat[at] = bad
    with pytest.raises(CodecError) as exc:
        expand_ids({"runs": flat})
    assert exc.value.errors[0] == f"$.runs[{at}]: {message}", exc.value.errors


def test_int64_array_takes_ints_and_refuses_bools_floats_and_overflow() -> None:
    from swarmfold.shell.log.codec import int64_array

    good = [0, 1, 1, 2**63 - 1, -(2**63), 5]
    column = int64_array(good)
    assert column is not None and list(column) == good
    empty = int64_array([])
    assert empty is not None and len(empty) == 0
    for bad in ([0, 1, True], [True], [2, False], [1, 2.5], [1, "1"], [2**63], [None]):
        assert int64_array(bad) is None, bad
