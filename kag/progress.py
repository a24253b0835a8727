"""Periodic progress lines on stderr for long work (training, metric tables).

Plain lines rather than a redrawn bar: they survive pytest capture, xdist workers and CI logs.
``KAG_QUIET=1`` silences them.
"""

from __future__ import annotations

import os
import sys
import time


class Progress:
    """Print ``[kag] <task>: 3/10 epoch, <note> (12.3 s)`` at most every ``every`` seconds."""

    def __init__(self, task: str, total: int, unit: str = "step", every: float = 5.0) -> None:
        self.task, self.total, self.unit, self.every = task, total, unit, every
        self.start = self._last = time.perf_counter()
        self.quiet = os.environ.get("KAG_QUIET", "") not in ("", "0")

    def _print(self, text: str) -> None:
        if not self.quiet:
            print(f"[kag] {self.task}: {text}", file=sys.stderr, flush=True)

    def update(self, done: int, note: str = "") -> None:
        now = time.perf_counter()
        if now - self._last >= self.every or done == self.total:
            self._last = now
            suffix = f", {note}" if note else ""
            self._print(f"{done}/{self.total} {self.unit}{suffix} ({now - self.start:.1f} s)")

    def done(self, summary: str) -> None:
        self._print(f"done: {summary}")
