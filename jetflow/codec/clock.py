"""The ``time_us`` clock (spec §10): Unix time in microseconds, strictly increasing."""

from __future__ import annotations

import time
from collections.abc import Callable


class MonotonicClock:
    """Wall-clock microseconds that never repeat or go back within one clock.

    When the wall clock has not moved past the last value (or went backwards), the next value
    is the last plus one. ``floor`` seeds the clock, e.g. with the newest stored ``time_us`` so
    that a restarted server never reuses a cursor.
    """

    __slots__ = ("_last", "_now_us")

    def __init__(self, floor: int = 0, now_us: Callable[[], int] | None = None) -> None:
        self._last = floor
        self._now_us = now_us or _wall_clock_us

    def __call__(self) -> int:
        now = self._now_us()
        if now <= self._last:
            now = self._last + 1
        self._last = now
        return now

    @property
    def last(self) -> int:
        """The most recent value handed out (or the floor)."""
        return self._last

    def advance_to(self, floor: int) -> None:
        """Make every later value greater than ``floor``."""
        if floor > self._last:
            self._last = floor


def _wall_clock_us() -> int:
    return time.time_ns() // 1000


class RelayClock:
    """``time_us`` taken from the relay's ``time`` field instead of the wall clock.

    For replays and analysis, where event-time windows should follow when events happened,
    not when they were decoded. Values stay strictly increasing: ``at_least(t)`` moves the
    clock up to a frame's own time, and each call hands out the next microsecond.
    """

    __slots__ = ("_last",)

    def __init__(self, floor: int = 0) -> None:
        self._last = floor

    def __call__(self) -> int:
        self._last += 1
        return self._last

    def at_least(self, time_us: int) -> None:
        """Make the next value at least ``time_us``."""
        if time_us - 1 > self._last:
            self._last = time_us - 1

    @property
    def last(self) -> int:
        return self._last
