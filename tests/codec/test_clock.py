"""The monotonic ``time_us`` clock (spec §10)."""

from __future__ import annotations

import time

from jetflow.codec.clock import MonotonicClock


def test_values_strictly_increase_even_when_the_wall_clock_stalls_or_goes_back() -> None:
    readings = iter([100, 100, 90, 200])
    clock = MonotonicClock(now_us=lambda: next(readings))
    assert [clock(), clock(), clock(), clock()] == [100, 101, 102, 200]


def test_floor_keeps_a_restarted_clock_above_stored_values() -> None:
    clock = MonotonicClock(floor=10**18)
    assert clock() == 10**18 + 1


def test_default_clock_is_wall_clock_microseconds() -> None:
    value = MonotonicClock()()
    assert abs(value - time.time() * 1e6) < 5e6


def test_relay_clock_follows_relay_time_but_never_goes_back() -> None:
    from jetflow.codec.clock import RelayClock

    clock = RelayClock()
    clock.at_least(1_000)
    assert [clock(), clock()] == [1_000, 1_001]
    clock.at_least(500)  # an older frame: keeps counting up
    assert clock() == 1_002
    clock.at_least(5_000)
    assert clock() == 5_000
