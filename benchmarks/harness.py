"""Tiny benchmark harness: timed cases with targets, printed as one table."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """One measured case. ``target_s`` is the issue's speed target (None: informative only)."""

    name: str
    seconds: float
    target_s: float | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.target_s is None:
            return "info"
        return "PASS" if self.seconds <= self.target_s else "FAIL"


def timed(fn: Callable[[], object], repeats: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeats`` calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out
