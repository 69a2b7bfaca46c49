"""Clocks injected into sessions, so that compute time is measured, or scripted in tests."""

from __future__ import annotations

import time
from typing import Callable

Clock = Callable[[], float]
"""Returns seconds; only differences are used."""


def wall_clock() -> float:
    """The process's monotonic high-resolution clock."""
    return time.perf_counter()


class StepClock:
    """A scripted clock: each call advances by ``step_s`` (deterministic compute times for tests)."""

    def __init__(self, step_s: float = 0.0) -> None:
        self.step_s = step_s
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now
