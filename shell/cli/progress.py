"""Progress of a live run: a status line on a TTY, periodic log lines otherwise.

``Progress.update(state, now)`` is called after every ``decide``; it is cheap when nothing is
due. On a TTY the line is redrawn in place (``\\r``) at most every ``refresh`` seconds; off a
TTY one line is written every ``interval`` seconds. Both show done / active / ready / failed
out of the total, the completion rate over the last minute and the ETA at that rate.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import TextIO

from attrs import frozen

from swarmfold.core.state import SwarmState

__all__ = ["MODES", "Progress", "Snapshot", "format_duration", "snapshot"]

#: ``auto``: ``tty`` when the stream is a terminal, else ``lines``.
MODES = ("auto", "tty", "lines", "off")

#: Seconds of history the rate is measured over.
RATE_WINDOW = 60.0


@frozen
class Snapshot:
    """Counts of one state, for display."""

    phase: str
    run_status: str
    total: int
    done: int
    failed: int
    active: int
    ready: int
    in_flight: int


def snapshot(state: SwarmState) -> Snapshot:
    counts = state.status_counts
    earlier = state.done_not_loaded  # DONE before an attached run: in the totals, as the summary
    return Snapshot(
        phase=state.phase,
        run_status=state.run_status,
        total=state.total_tasks + earlier,
        done=counts.get("D", 0) + earlier,
        failed=counts.get("F", 0),
        active=state.active_count,
        ready=state.ready_count,
        in_flight=state.inflight_total,
    )


def format_duration(seconds: float) -> str:
    """``75`` -> ``"1m15s"``; ``3725`` -> ``"1h02m"``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class Progress:
    """Shows the progress of one run on ``stream``.

    ``mode`` is one of ``MODES``. ``label`` (the runner id) prefixes log lines.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        mode: str = "auto",
        *,
        label: str = "",
        refresh: float = 0.5,
        interval: float = 30.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode must be one of {MODES}, got {mode!r}")
        self.stream: TextIO = stream if stream is not None else sys.stderr
        if mode == "auto":
            isatty = getattr(self.stream, "isatty", None)
            mode = "tty" if isatty is not None and isatty() else "lines"
        self.mode = mode
        self.label = label
        self.period = refresh if mode == "tty" else interval
        self._next_at: float | None = None
        self._samples: deque[tuple[float, int]] = deque()
        self._width = 0
        self.lines_written = 0

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def update(self, state: SwarmState, now: float, *, force: bool = False) -> None:
        if self.mode == "off" or state.topology is None:
            return
        if self._next_at is None:
            self._next_at = now + (0.0 if self.mode == "tty" else self.period)
            counts = state.status_counts
            self._samples.append((now, counts.get("D", 0) + counts.get("F", 0)))
        if not force and now < self._next_at:
            return
        self._next_at = now + self.period
        self._write(self.line(snapshot(state), now))

    def rate(self, done: int, now: float) -> float | None:
        """Tasks finished per second over the last ``RATE_WINDOW`` seconds."""
        samples = self._samples
        samples.append((now, done))
        while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW:
            samples.popleft()
        t0, d0 = samples[0]
        if now - t0 <= 0:
            return None
        return (done - d0) / (now - t0)

    def line(self, s: Snapshot, now: float) -> str:
        finished = s.done + s.failed
        pct = 100.0 * finished / s.total if s.total else 100.0
        rate = self.rate(finished, now)
        remaining = s.total - finished
        if rate is None:
            rate_text, eta = "-", "-"
        else:
            rate_text = f"{rate:.1f}/s"
            eta = "0s" if remaining == 0 else (format_duration(remaining / rate) if rate > 0 else "?")
        return (
            f"{s.run_status} done {s.done}/{s.total} ({pct:.1f}%)  active {s.active + s.in_flight}  "
            f"ready {s.ready}  failed {s.failed}  rate {rate_text}  ETA {eta}"
        )

    def _write(self, text: str) -> None:
        try:
            if self.mode == "tty":
                pad = max(0, self._width - len(text))
                self.stream.write("\r" + text + " " * pad)
                self._width = len(text)
            else:
                prefix = f"[{self.label}] " if self.label else ""
                self.stream.write(f"{prefix}{text}\n")
            self.stream.flush()
            self.lines_written += 1
        except (OSError, ValueError):  # a closed or broken stream never stops the run
            self.mode = "off"

    def close(self, state: SwarmState | None, now: float) -> None:
        """Draw the final line (and end it on a TTY)."""
        if self.mode == "off":
            return
        if state is not None and state.topology is not None:
            self._write(self.line(snapshot(state), now))
        if self.mode == "tty" and self._width:
            try:
                self.stream.write("\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass
