"""Event-time windows over ``time_us``: window specs, durations and the windowing core.

reactivex only windows by processing time (when an item *arrives*); firehose analytics need
windows by event time (when it *happened*: ``Event.time_us``), so that a replayed capture, a
resumed cursor or a slow consumer give the same windows as the live stream.

Windows
    A window is ``[start, end)`` in microseconds. ``tumbling(size)`` windows follow each other
    without overlap and start at multiples of ``size``; ``sliding(size, step)`` windows are
    ``size`` long and start at multiples of ``step``, so each event falls in about
    ``size / step`` of them. Alignment is to the Unix epoch (a 1 h window starts on the hour,
    UTC). An event at exactly ``end`` belongs to the next window.

Watermark and lateness
    The watermark is the largest ``time_us`` seen so far. A window is emitted once
    ``watermark >= end + lateness``; until then an out-of-order event still joins it. An event
    all of whose windows were already emitted is **late**: it is counted (``stats.late``,
    :attr:`WindowResult.late`), handed to ``on_late`` if given, and otherwise dropped; emitted
    windows never change. With sliding windows an event may be too late for its oldest
    windows only: it joins the open ones and is counted in ``stats.late_partial``.

Empty windows
    Only windows that received at least one event are emitted: a window missing from the
    output had no events. (Emitting empty windows would make a jump in time, such as a replay
    that skips a day, emit one result per step of the gap.)

End of stream
    When the source completes, every open window is emitted, oldest first, then completion.
    On an error the open windows are discarded and the error is passed on.

Memory
    Aggregation is incremental: each open window holds one accumulator (a counter dict, a
    HyperLogLog, ...), never the events, and at most ``(size + lateness) / step + 1`` windows
    are open at once.

The aggregations themselves (``count_by``, ``top_k``, ``rate``, ``distinct_count``) live in
:mod:`jetflow.operators.aggregate`; :func:`windowed` is the core they share, public so that
other aggregations can be written the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from reactivex import Observable, abc

from jetflow.durations import parse_duration
from jetflow.errors import ConfigError
from jetflow.events import Event
from jetflow.fields import Getter, Key, key_getter

S = TypeVar("S")
V = TypeVar("V")

# A duration: seconds as a number, or a string with units ("250ms", "90s", "5m", "1h30m").
Duration = int | float | str


def duration_us(value: Duration, *, name: str = "duration", allow_zero: bool = False) -> int:
    """A duration in whole microseconds, parsed by jetflow's one duration syntax.

    Args:
        value: seconds as a number (``90``, ``0.25``), or a string as read by
            :func:`jetflow.durations.parse_duration`: ``"250ms"``, ``"90s"``, ``"5m"``,
            ``"1h"``, ``"1h30m"``, ``"2d"`` (a bare number in a string is seconds).
        name: the option being parsed, for the error message.
        allow_zero: accept 0 (e.g. for a lateness); durations are otherwise positive.

    Returns:
        The duration in microseconds, rounded to the nearest one.

    Raises:
        ConfigError: naming the option and the value, for anything else (a negative or
            infinite value, an unknown unit, a bool, or zero when it is not allowed).

    Example:
        >>> duration_us("1m30s")
        90000000
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{name}: {value!r} is not a duration (like 250ms, 90s, 5m, 1h)")
    seconds = parse_duration(value, name)
    if not math.isfinite(seconds):
        raise ConfigError(f"{name}: {value!r} is not a finite duration")
    micros = round(seconds * 1_000_000)
    if micros <= 0 and not (allow_zero and seconds == 0):
        raise ConfigError(f"{name}: {value!r} must be at least one microsecond")
    return micros


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Which windows an event falls in: ``size_us`` long, one starting every ``step_us``.

    Build one with :func:`tumbling` or :func:`sliding`. Window ``n`` is
    ``[n * step_us, n * step_us + size_us)``.
    """

    size_us: int
    step_us: int

    def __post_init__(self) -> None:
        if type(self.size_us) is not int or self.size_us <= 0:
            raise ConfigError(f"window size must be a positive number of µs, not {self.size_us!r}")
        if type(self.step_us) is not int or not 0 < self.step_us <= self.size_us:
            raise ConfigError(
                f"window step must be positive and at most the size ({self.size_us} µs),"
                f" not {self.step_us!r}: a larger step would leave events in no window"
            )

    @property
    def tumbling(self) -> bool:
        """True when windows do not overlap (step == size)."""
        return self.step_us == self.size_us

    def windows_of(self, time_us: int) -> list[tuple[int, int]]:
        """The ``(start_us, end_us)`` of every window holding ``time_us``, oldest first."""
        step, size = self.step_us, self.size_us
        first, last = (time_us - size) // step + 1, time_us // step
        return [(n * step, n * step + size) for n in range(first, last + 1)]


def tumbling(size: Duration) -> WindowSpec:
    """Back-to-back windows of ``size``, aligned to multiples of ``size`` from the epoch.

    Args:
        size: seconds (``60``) or a duration string (``"1m"``, ``"250ms"``).

    Returns:
        A :class:`WindowSpec` for the ``window=`` argument of the aggregations.

    Raises:
        ConfigError: ``size`` is not a positive duration.

    Example:
        >>> events.pipe(count_by("commit.collection", window=tumbling("1m")))
    """
    size_us = duration_us(size, name="window size")
    return WindowSpec(size_us, size_us)


def sliding(size: Duration, step: Duration) -> WindowSpec:
    """Overlapping windows of ``size``, one starting every ``step`` (multiples of ``step``).

    Args:
        size: the window length, in seconds or as a duration string.
        step: how often a window starts; at most ``size``. Each event is in about
            ``size / step`` windows, so a small step multiplies the work per event.

    Returns:
        A :class:`WindowSpec`.

    Raises:
        ConfigError: a bad duration, or ``step`` longer than ``size``.

    Example:
        >>> events.pipe(rate(window=sliding("5m", "1m")))  # a 5-minute rate, every minute
    """
    return WindowSpec(duration_us(size, name="window size"), duration_us(step, name="step"))


def as_window(window: WindowSpec | Duration) -> WindowSpec:
    """A window spec; a bare duration means tumbling windows of that size."""
    if isinstance(window, WindowSpec):
        return window
    return tumbling(window)


@dataclass(frozen=True, slots=True)
class WindowResult(Generic[V]):
    """One emitted window.

    Attributes:
        start_us: the window's start, inclusive (µs since the Unix epoch).
        end_us: its end, exclusive.
        value: the aggregation's result for the window (a dict, a list, a number, ...).
        events: how many events the window aggregated (> 0: empty windows are not emitted).
        late: how many late events this operator had dropped when the window was emitted:
            a running total per subscription, so a rise between two results means events
            arrived too late for windows already emitted. ``0`` everywhere means no loss.
    """

    start_us: int
    end_us: int
    value: V
    events: int
    late: int = 0

    @property
    def duration_s(self) -> float:
        """The window's length in seconds."""
        return (self.end_us - self.start_us) / 1_000_000


class WindowStats:
    """What a windowed operator saw (pass one as ``stats=`` to read it while it runs).

    Attributes:
        events: events received.
        late: events dropped because all their windows were already emitted.
        late_partial: (sliding windows) events that joined their open windows but missed
            older ones already emitted.
        windows: windows emitted.
        watermark: the largest ``time_us`` seen, or None before the first event.
    """

    __slots__ = ("events", "late", "late_partial", "watermark", "windows")

    def __init__(self) -> None:
        self.events = 0
        self.late = 0
        self.late_partial = 0
        self.windows = 0
        self.watermark: int | None = None

    def __repr__(self) -> str:
        return (
            f"WindowStats(events={self.events}, late={self.late},"
            f" late_partial={self.late_partial}, windows={self.windows},"
            f" watermark={self.watermark})"
        )


class _Open:
    """An open window: its accumulator and how many events it has seen."""

    __slots__ = ("events", "state")

    def __init__(self, state: Any) -> None:
        self.state = state
        self.events = 0


def _itself(event: Event) -> Event:
    return event


def hashable(value: Any) -> Any:
    """``value`` usable as a dict key: lists become tuples and dicts tuples of items, deeply.

    Field paths can read JSON lists and objects (``record.langs``); counting them by value
    needs a hashable form. Anything else unhashable is counted by its ``repr``.
    """
    if isinstance(value, list | tuple):
        return tuple(hashable(item) for item in value)
    if isinstance(value, dict):
        return tuple((key, hashable(item)) for key, item in value.items())
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


# Below any real time_us // step: nothing is closed yet and the first event sets the watermark.
_NEVER: Final = -(1 << 62)


def windowed(
    window: WindowSpec | Duration,
    *,
    create: Callable[[], S],
    add: Callable[[S, Any], object],
    finish: Callable[[S, int], V],
    value: Key | None = None,
    lateness: Duration = 0,
    on_late: Callable[[Event], object] | None = None,
    stats: WindowStats | None = None,
) -> Callable[[Observable[Event]], Observable[WindowResult[V]]]:
    """Aggregate events per event-time window with an accumulator of your own.

    Per open window, ``create()`` makes an accumulator, ``add(acc, value)`` folds in each
    event's ``value`` (extracted once per event, even when windows overlap), and
    ``finish(acc, events)`` turns it into the emitted value once the window closes. See the
    module docstring for watermark, lateness and empty-window rules.

    Args:
        window: a :class:`WindowSpec`, or a duration for tumbling windows of that size.
        create: makes an empty accumulator.
        add: folds one value into an accumulator (its result is ignored).
        finish: the window's value from its accumulator and its number of events.
        value: a field path or function giving what ``add`` receives; default: the event.
        lateness: how long after a window's end (by the watermark) it stays open for
            out-of-order events; seconds or a duration string, default 0.
        on_late: called with each event dropped as late.
        stats: a :class:`WindowStats` to count into.

    Returns:
        An operator from events to :class:`WindowResult` objects, in window order.

    Example:
        >>> def add_length(total: list[int], text: str | None) -> None:
        ...     total[0] += len(text or "")
        >>> mean_text_length = posts.pipe(
        ...     windowed(tumbling("1m"), value="record.text", create=lambda: [0],
        ...              add=add_length, finish=lambda total, events: total[0] / events)
        ... )
    """
    getter = key_getter(value, name="value") if value is not None else None
    return window_operator(
        window, lateness, on_late, stats, getter=getter, create=create, add=add, finish=finish
    )


def window_operator(
    window: WindowSpec | Duration,
    lateness: Duration,
    on_late: Callable[[Event], object] | None,
    stats: WindowStats | None,
    *,
    getter: Getter | None,
    create: Callable[[], Any],
    add: Callable[[Any, Any], object] | None,
    finish: Callable[[Any, int], V],
    count_keys: bool = False,
) -> Callable[[Observable[Event]], Observable[WindowResult[V]]]:
    """The windowing core shared by :func:`windowed` and the aggregations.

    ``getter`` extracts each event's value once (None: the event itself). With ``count_keys``
    the accumulator is a dict and the value is counted in it inline (no ``add`` call per
    event: the path of ``count_by``, ``top_k`` and keyed ``rate``); otherwise ``add`` is
    called, unless it is None (only the events per window are counted, as for ``rate``).
    """
    spec = as_window(window)
    lateness_us = duration_us(lateness, name="lateness", allow_zero=True)
    size, step = spec.size_us, spec.step_us
    if count_keys and getter is None:
        raise ConfigError("counting keys needs a key")
    key_of: Getter = getter if getter is not None else _itself
    needs_value = count_keys or add is not None
    shared_stats = stats if stats is not None else WindowStats()

    def operator(source: Observable[Event]) -> Observable[WindowResult[V]]:
        def subscribe(
            observer: abc.ObserverBase[WindowResult[V]],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            emit = observer.on_next
            stats = shared_stats
            windows: dict[int, _Open] = {}
            open_window = windows.get
            watermark = _NEVER
            closed = _NEVER  # windows n <= closed have been emitted (or can no longer open)
            close_at = _NEVER  # the watermark at which window closed + 1 closes
            late = 0

            def emit_window(n: int, window: _Open) -> None:
                start = n * step
                result = finish(window.state, window.events)
                stats.windows += 1
                emit(WindowResult(start, start + size, result, window.events, late))

            def advance(new_watermark: int) -> None:
                nonlocal closed, close_at
                closed = (new_watermark - size - lateness_us) // step
                close_at = (closed + 1) * step + size + lateness_us
                if windows:
                    ready = [n for n in windows if n <= closed]
                    ready.sort()
                    for n in ready:
                        emit_window(n, windows.pop(n))

            def drop(event: Event) -> None:
                nonlocal late
                late += 1
                stats.late += 1
                if on_late is not None:
                    on_late(event)

            def on_tumbling(event: Event) -> None:
                nonlocal watermark
                t = event.time_us
                stats.events += 1
                if t > watermark:
                    watermark = stats.watermark = t
                    if t >= close_at:
                        advance(t)
                n = t // size
                if n <= closed:
                    drop(event)
                    return
                window = open_window(n)
                if window is None:
                    window = windows[n] = _Open(create())
                window.events += 1
                if count_keys:
                    counts = window.state
                    key = key_of(event)
                    try:
                        counts[key] = counts.get(key, 0) + 1
                    except TypeError:  # a list or dict value: count it as a tuple
                        key = hashable(key)
                        counts[key] = counts.get(key, 0) + 1
                elif add is not None:
                    add(window.state, key_of(event))

            def on_sliding(event: Event) -> None:
                nonlocal watermark
                t = event.time_us
                stats.events += 1
                if t > watermark:
                    watermark = stats.watermark = t
                    if t >= close_at:
                        advance(t)
                first, last = (t - size) // step + 1, t // step
                if first <= closed:
                    if last <= closed:
                        drop(event)
                        return
                    first = closed + 1
                    stats.late_partial += 1
                item = key_of(event) if needs_value else None
                if count_keys:
                    try:
                        hash(item)
                    except TypeError:
                        item = hashable(item)
                for n in range(first, last + 1):
                    window = open_window(n)
                    if window is None:
                        window = windows[n] = _Open(create())
                    window.events += 1
                    if count_keys:
                        counts = window.state
                        counts[item] = counts.get(item, 0) + 1
                    elif add is not None:
                        add(window.state, item)

            def on_completed() -> None:
                for n in sorted(windows):
                    emit_window(n, windows.pop(n))
                observer.on_completed()

            def on_error(error: Exception) -> None:
                windows.clear()
                observer.on_error(error)

            on_next = on_tumbling if spec.tumbling else on_sliding
            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return operator
