"""Event-time windows: durations, specs, boundaries, watermark, lateness, flush.

The windowing core is exercised through ``windowed`` with a list accumulator, so each emitted
window shows exactly which events (by rkey) it holds; the expected windows are hand-computed.
"""

from __future__ import annotations

from typing import Any

import pytest
import reactivex as rx
from reactivex.subject import Subject

from jetflow import operators as op
from jetflow.errors import ConfigError
from jetflow.events import Event
from jetflow.operators.window import WindowResult, WindowSpec, WindowStats, duration_us

S = 1_000_000  # µs per second


def ev(seconds: float, name: str, *, did: str = "did:plc:a") -> Event:
    """A like at ``seconds`` (event time) whose rkey is ``name``."""
    return Event(
        "commit",
        did,
        round(seconds * S),
        rev="3l",
        operation="create",
        collection="app.bsky.feed.like",
        rkey=name,
    )


def members(
    window: WindowSpec | str,
    *,
    lateness: float | str = 0,
    on_late: Any = None,
    stats: WindowStats | None = None,
) -> Any:
    """An operator emitting, per window, the rkeys of its events in arrival order."""

    def finish(names: list[str], events: int) -> list[str]:
        assert len(names) == events
        return names

    return op.windowed(
        window,
        value="commit.rkey",
        create=list,
        add=list.append,
        finish=finish,
        lateness=lateness,
        on_late=on_late,
        stats=stats,
    )


def run(events: list[Event], operator: Any) -> list[tuple[float, float, Any]]:
    """(start s, end s, value) of every window emitted for ``events``."""
    out: list[WindowResult[Any]] = []
    errors: list[Exception] = []
    rx.from_iterable(events).pipe(operator).subscribe(out.append, errors.append)
    assert errors == []
    return [(w.start_us / S, w.end_us / S, w.value) for w in out]


# -- durations and specs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "micros"),
    [
        ("250ms", 250_000),
        ("90s", 90 * S),
        ("5m", 300 * S),
        ("1h", 3600 * S),
        ("1h30m", 5400 * S),
        ("1.5s", 1_500_000),
        (" 2d ", 2 * 86_400 * S),
        ("10us", 10),
        (90, 90 * S),
        (0.25, 250_000),
        (0.1, 100_000),
    ],
)
def test_durations_parse_to_whole_microseconds(value: float | str, micros: int) -> None:
    assert duration_us(value) == micros


@pytest.mark.parametrize(
    "value", ["5 minutes", "", "5x", "-1s", "s", "1h-5m", True, None, -3, float("inf"), 0, "0s"]
)
def test_bad_durations_raise_config_error_naming_the_value(value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        duration_us(value, name="window size")
    assert "window size" in str(info.value) and repr(value) in str(info.value)


def test_zero_is_a_valid_lateness_but_not_a_window_size() -> None:
    assert duration_us(0, name="lateness", allow_zero=True) == 0
    assert duration_us("0s", name="lateness", allow_zero=True) == 0
    with pytest.raises(ConfigError, match="window size"):
        op.tumbling("0s")
    with pytest.raises(ConfigError, match="lateness"):
        op.count_by("did", window="1s", lateness="-1s")


def test_tumbling_and_sliding_specs() -> None:
    assert op.tumbling("1m") == WindowSpec(60 * S, 60 * S)
    assert op.tumbling(2) == WindowSpec(2 * S, 2 * S)
    assert op.sliding("5m", "1m") == WindowSpec(300 * S, 60 * S)
    assert op.tumbling("1s").tumbling and not op.sliding("2s", "1s").tumbling
    with pytest.raises(ConfigError, match="step"):
        op.sliding("1s", "2s")


def test_windows_are_aligned_to_the_epoch() -> None:
    t = 1_725_000_123_456_789
    assert op.tumbling("1m").windows_of(t) == [(1_725_000_120 * S, 1_725_000_180 * S)]
    # sliding windows start at multiples of the step, not of the size
    assert op.sliding("3s", "2s").windows_of(round(2.5 * S)) == [(0, 3 * S), (2 * S, 5 * S)]
    assert op.sliding("3s", "2s").windows_of(3 * S) == [(2 * S, 5 * S)]


# -- boundaries and overlap ---------------------------------------------------------------------


def test_tumbling_windows_hold_start_but_not_end() -> None:
    events = [ev(0, "a"), ev(0.5, "b"), ev(0.999999, "c"), ev(1.0, "d"), ev(2.5, "e")]
    assert run(events, members(op.tumbling("1s"))) == [
        (0.0, 1.0, ["a", "b", "c"]),
        (1.0, 2.0, ["d"]),
        (2.0, 3.0, ["e"]),
    ]


def test_sliding_windows_overlap_and_each_event_joins_every_window_holding_it() -> None:
    events = [ev(0.5, "a"), ev(1.5, "b"), ev(2.0, "c"), ev(2.5, "d")]
    assert run(events, members(op.sliding("2s", "1s"))) == [
        (-1.0, 1.0, ["a"]),
        (0.0, 2.0, ["a", "b"]),
        (1.0, 3.0, ["b", "c", "d"]),
        (2.0, 4.0, ["c", "d"]),
    ]


def test_sliding_step_need_not_divide_the_size() -> None:
    events = [ev(1.0, "a"), ev(2.5, "b"), ev(3.0, "c")]
    # windows of 3 s starting every 2 s: [-2,1) [0,3) [2,5)
    assert run(events, members(op.sliding("3s", "2s"))) == [
        (0.0, 3.0, ["a", "b"]),
        (2.0, 5.0, ["b", "c"]),
    ]


def test_empty_windows_are_not_emitted() -> None:
    events = [ev(0.5, "a"), ev(3.5, "b")]
    assert run(events, members(op.tumbling("1s"))) == [(0.0, 1.0, ["a"]), (3.0, 4.0, ["b"])]


def test_a_bare_duration_means_tumbling_windows() -> None:
    events = [ev(0.2, "a"), ev(1.2, "b")]
    assert run(events, members("1s")) == run(events, members(op.tumbling("1s")))


# -- watermark, lateness, emission --------------------------------------------------------------


class Recorder:
    """Pushes events one at a time and records what is emitted after each."""

    def __init__(self, operator: Any) -> None:
        self.subject: Subject[Event] = Subject()
        self.windows: list[tuple[float, float, Any]] = []
        self.results: list[WindowResult[Any]] = []
        self.errors: list[Exception] = []
        self.completed = False
        self.subject.pipe(operator).subscribe(self._on_next, self.errors.append, self._on_done)

    def _on_next(self, window: WindowResult[Any]) -> None:
        self.results.append(window)
        self.windows.append((window.start_us / S, window.end_us / S, window.value))

    def _on_done(self) -> None:
        self.completed = True

    def push(self, *events: Event) -> list[tuple[float, float, Any]]:
        """The windows emitted while pushing ``events``."""
        before = len(self.windows)
        for event in events:
            self.subject.on_next(event)
        return self.windows[before:]


def test_a_window_is_emitted_when_the_watermark_reaches_its_end() -> None:
    rec = Recorder(members(op.tumbling("1s")))
    assert rec.push(ev(0.5, "a"), ev(0.999999, "b")) == []
    assert rec.push(ev(1.0, "c")) == [(0.0, 1.0, ["a", "b"])]
    assert rec.push(ev(1.7, "d")) == []


def test_lateness_holds_a_window_open_until_end_plus_lateness() -> None:
    rec = Recorder(members(op.tumbling("1s"), lateness="2s"))
    assert rec.push(ev(0.5, "a"), ev(1.0, "b"), ev(2.999999, "c")) == []
    assert rec.push(ev(3.0, "d")) == [(0.0, 1.0, ["a"])]
    assert rec.push(ev(4.0, "e")) == [(1.0, 2.0, ["b"])]


def test_out_of_order_event_within_lateness_joins_its_window() -> None:
    stats = WindowStats()
    rec = Recorder(members(op.tumbling("1s"), lateness="1s", stats=stats))
    assert rec.push(ev(0.2, "a"), ev(1.5, "b"), ev(0.7, "c"), ev(1.1, "d")) == []
    assert rec.push(ev(2.0, "e")) == [(0.0, 1.0, ["a", "c"])]
    assert stats.late == 0 and stats.watermark == 2 * S


def test_late_event_is_counted_reported_and_leaves_emitted_windows_unchanged() -> None:
    late_events: list[Event] = []
    stats = WindowStats()
    rec = Recorder(
        members(op.tumbling("1s"), lateness="500ms", on_late=late_events.append, stats=stats)
    )
    assert rec.push(ev(0.2, "a"), ev(1.6, "b")) == [(0.0, 1.0, ["a"])]
    emitted = rec.results[0]
    assert rec.push(ev(0.9, "late")) == []
    assert [e.rkey for e in late_events] == ["late"]
    assert stats.late == 1
    assert emitted.value == ["a"] and emitted.late == 0
    rec.subject.on_completed()
    # the next window carries the operator's running total of late events
    assert rec.windows[1:] == [(1.0, 2.0, ["b"])] and rec.results[1].late == 1


def test_event_for_a_window_that_closed_empty_is_late() -> None:
    stats = WindowStats()
    rec = Recorder(members(op.tumbling("1s"), stats=stats))
    rec.push(ev(10.0, "a"), ev(3.0, "b"))
    rec.subject.on_completed()
    assert rec.windows == [(10.0, 11.0, ["a"])] and stats.late == 1


def test_sliding_event_too_late_for_old_windows_joins_the_open_ones() -> None:
    stats = WindowStats()
    rec = Recorder(members(op.sliding("2s", "1s"), stats=stats))
    assert rec.push(ev(0.5, "a"), ev(2.0, "b")) == [(-1.0, 1.0, ["a"]), (0.0, 2.0, ["a"])]
    assert rec.push(ev(1.5, "c")) == []  # [0,2) is gone; [1,3) is still open
    rec.subject.on_completed()
    assert rec.windows[2:] == [(1.0, 3.0, ["b", "c"]), (2.0, 4.0, ["b"])]
    assert (stats.late, stats.late_partial) == (0, 1)


def test_completion_flushes_open_windows_oldest_first_then_completes() -> None:
    rec = Recorder(members(op.sliding("2s", "1s"), lateness="10s"))
    assert rec.push(ev(1.5, "b"), ev(0.5, "a"), ev(0.2, "c")) == []
    assert not rec.completed
    rec.subject.on_completed()
    assert rec.windows == [
        (-1.0, 1.0, ["a", "c"]),
        (0.0, 2.0, ["b", "a", "c"]),
        (1.0, 3.0, ["b"]),
    ]
    assert rec.completed


def test_a_jump_of_the_watermark_emits_every_closed_window_oldest_first() -> None:
    rec = Recorder(members(op.tumbling("1s"), lateness="5s"))
    assert rec.push(ev(2.5, "c"), ev(0.5, "a"), ev(1.5, "b"), ev(4.0, "d")) == []
    assert rec.push(ev(8.0, "e")) == [
        (0.0, 1.0, ["a"]),
        (1.0, 2.0, ["b"]),
        (2.0, 3.0, ["c"]),
    ]


def test_error_discards_open_windows_and_is_passed_on() -> None:
    rec = Recorder(members(op.tumbling("1s")))
    rec.push(ev(0.5, "a"), ev(1.5, "b"))
    boom = RuntimeError("upstream failed")
    rec.subject.on_error(boom)
    assert rec.windows == [(0.0, 1.0, ["a"])] and rec.errors == [boom]


def test_stats_count_events_windows_and_watermark() -> None:
    stats = WindowStats()
    run([ev(0.5, "a"), ev(1.5, "b"), ev(0.1, "late"), ev(2.5, "c")], members("1s", stats=stats))
    assert (stats.events, stats.late, stats.windows, stats.watermark) == (4, 1, 3, int(2.5 * S))


def test_each_subscription_has_its_own_windows() -> None:
    events = [ev(0.5, "a"), ev(1.5, "b")]
    stream = rx.from_iterable(events).pipe(members("1s"))
    first: list[WindowResult[Any]] = []
    second: list[WindowResult[Any]] = []
    stream.subscribe(first.append)
    stream.subscribe(second.append)
    assert [w.value for w in first] == [w.value for w in second] == [["a"], ["b"]]


def test_windowed_extracts_the_value_once_per_event_across_overlapping_windows() -> None:
    calls: list[str] = []

    def key(event: Event) -> str:
        calls.append(event.rkey)
        return event.rkey

    operator = op.windowed(
        op.sliding("4s", "1s"), value=key, create=list, add=list.append, finish=lambda a, n: a
    )
    windows = run([ev(3.5, "a")], operator)
    assert [w[:2] for w in windows] == [(0.0, 4.0), (1.0, 5.0), (2.0, 6.0), (3.0, 7.0)]
    assert calls == ["a"]


def test_window_result_exposes_its_duration() -> None:
    result = WindowResult(0, 90 * S, {"x": 1}, 1)
    assert result.duration_s == 90.0 and result.late == 0
