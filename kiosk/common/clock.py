"""Injectable time: the box clock is the exam clock. Times are float epoch seconds."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told: for tests and scripted demos."""

    def __init__(self, start: float) -> None:
        self._t = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds

    def set(self, t: float) -> None:
        with self._lock:
            self._t = float(t)


class ScaledClock:
    """Box time running `speed` times faster than the wall clock from `start` (demo only)."""

    def __init__(self, start: float, speed: float) -> None:
        self._start = float(start)
        self._speed = float(speed)
        self._wall0 = time.monotonic()

    def now(self) -> float:
        return self._start + (time.monotonic() - self._wall0) * self._speed
