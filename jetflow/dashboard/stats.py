"""The dashboard's stats engine: live totals, rates, top collections and lag, as JSON snapshots.

:class:`DashboardStats` is fed events (:meth:`~DashboardStats.observe`, or subscribe it as a
sink with :meth:`~DashboardStats.sink`) and asked for a :meth:`~DashboardStats.snapshot`, a
JSON-ready dict that the dashboard page renders. It is plain Python, independent of the web
server, so notebooks and scripts can use it too.

Totals
    Every event is counted by kind (``commit``, ``identity``, ...), by operation (``create``,
    ``update``, ``delete``; commits only) and by collection (commits only). Past
    ``max_collections`` distinct collections, new ones are counted under ``(other)``, so no
    input can grow the memory without bound.

Rates (processing time)
    Events are also counted in one-second buckets of *arrival* time (``clock``, monotonic),
    counted from the engine's start. At a snapshot taken at ``now`` (bucket ``c``), a rate is
    the events of buckets ``max(0, c - rate_window)`` to ``c`` (the current, partial bucket
    included) divided by the time from the start of the oldest of them to ``now``. With the
    default ``rate_window=5`` that is a rate over the last 5 to 6 seconds, fresh to the
    moment; when the stream stops, rates fall to 0 within ``rate_window + 1`` seconds.
    ``history`` keeps the events of each of the last 60 complete seconds for a sparkline.

Lag
    ``lag_s`` is ``wall_clock() - latest event time``, computed at the snapshot (so it grows
    while the stream stalls), where the latest event time is the largest ``time_us`` seen.
    That measures lag behind the relay only when ``time_us`` is the relay frame's ``time``:
    decode with ``op.decode(time="relay")`` and say so with ``time_basis="relay"``. With a
    Jetstream source ``time_us`` is the Jetstream server's clock (``time_basis="jetstream"``:
    lag behind that server, which itself trails the relay by little). With
    ``time_basis="wall"`` (events stamped when decoded) there is no lag to show and the
    snapshot's ``lag`` is None. For a replayed capture, lag is how far the capture's events
    lie in the past.

Not thread-safe: feed it and read it from one thread (the event loop that runs the stream).
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final, Literal

from jetflow.errors import ConfigError
from jetflow.events import COMMIT, Event
from jetflow.sinks._base import Sink

TimeBasis = Literal["relay", "jetstream", "event", "wall"]
State = Literal["waiting", "running", "finished", "failed"]

OTHER: Final = "(other)"
SNAPSHOT_VERSION: Final = 1


class _Bucket:
    """The events that arrived during one second, by kind, operation and collection."""

    __slots__ = ("by_collection", "by_kind", "by_operation", "events", "index")

    def __init__(self, index: int) -> None:
        self.index = index
        self.events = 0
        self.by_kind: dict[str, int] = {}
        self.by_operation: dict[str, int] = {}
        self.by_collection: dict[str, int] = {}


class DashboardStats:
    """Live counters over an event stream (see the module docstring).

    Args:
        rate_window: seconds of arrival time a rate is computed over (at least 1).
        history: how many past seconds of per-second counts a snapshot carries.
        top: how many collections the snapshot's ``top_collections`` lists.
        max_collections: distinct collections counted by name; later ones count as ``(other)``.
        time_basis: what ``time_us`` means for lag (``relay``, ``jetstream``, ``event`` or
            ``wall``; see the module docstring).
        source: a label for the page (``"replay demo.bin.zst"``).
        clock: monotonic seconds, for rates (injectable for tests).
        wall_clock: Unix seconds, for lag (injectable for tests).

    Raises:
        ConfigError: a window, history, top or cap that is not a positive number.

    Example:
        >>> stats = DashboardStats(time_basis="relay", source="replay demo.bin.zst")
        >>> replay("demo.bin.zst").pipe(op.decode(time="relay")).subscribe(stats.sink())
        >>> stats.snapshot()["totals"]["events"]
        1873
    """

    def __init__(
        self,
        *,
        rate_window: int = 5,
        history: int = 60,
        top: int = 10,
        max_collections: int = 1000,
        time_basis: TimeBasis = "relay",
        source: str = "",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (
            ("rate_window", rate_window),
            ("history", history),
            ("top", top),
            ("max_collections", max_collections),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: must be a positive integer, not {value!r}")
        if time_basis not in ("relay", "jetstream", "event", "wall"):
            raise ConfigError(
                f"time_basis: {time_basis!r} is not one of relay, jetstream, event, wall"
            )
        self.rate_window = rate_window
        self.history = history
        self.top = top
        self.max_collections = max_collections
        self.time_basis: TimeBasis = time_basis
        self.source = source
        self.clock = clock
        self.wall_clock = wall_clock
        self.started = clock()
        self.started_wall = wall_clock()
        self.state: State = "waiting"
        self.error: str | None = None
        self.events = 0
        self.other_items = 0
        self.by_kind: dict[str, int] = {}
        self.by_operation: dict[str, int] = {}
        self.by_collection: dict[str, int] = {}
        self.first_time_us: int | None = None
        self.latest_time_us: int | None = None
        self.extra: dict[str, Callable[[], Any]] = {}
        keep = max(history, rate_window) + 2
        self._buckets: collections.deque[_Bucket] = collections.deque(maxlen=keep)
        self._current = _Bucket(-1)

    # -- feeding ----------------------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """Count one event."""
        index = int(self.clock() - self.started)
        bucket = self._current
        if bucket.index != index:
            bucket = self._current = _Bucket(index)
            self._buckets.append(bucket)
        if self.state == "waiting":
            self.state = "running"
        self.events += 1
        bucket.events += 1
        kind = event.kind
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
        bucket.by_kind[kind] = bucket.by_kind.get(kind, 0) + 1
        if kind == COMMIT:
            operation = event.operation
            self.by_operation[operation] = self.by_operation.get(operation, 0) + 1
            bucket.by_operation[operation] = bucket.by_operation.get(operation, 0) + 1
            collection = event.collection
            count = self.by_collection.get(collection)
            if count is None and len(self.by_collection) >= self.max_collections:
                collection = OTHER
                count = self.by_collection.get(OTHER)
            self.by_collection[collection] = (count or 0) + 1
            bucket.by_collection[collection] = bucket.by_collection.get(collection, 0) + 1
        time_us = event.time_us
        if self.latest_time_us is None or time_us > self.latest_time_us:
            self.latest_time_us = time_us
        if self.first_time_us is None:
            self.first_time_us = time_us

    def observe_all(self, events: Iterable[Event]) -> None:
        """Count every event of ``events``."""
        for event in events:
            self.observe(event)

    def finish(self, error: BaseException | str | None = None) -> None:
        """Mark the stream as ended (``finished``), or as failed with ``error``."""
        if error is None:
            self.state = "finished"
        else:
            self.state = "failed"
            self.error = str(error) or type(error).__name__

    def sink(self) -> StatsSink:
        """A jetflow sink that feeds this engine: ``stream.subscribe(stats.sink())``."""
        return StatsSink(self)

    # -- reading ----------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The current numbers as a JSON-ready dict (the dashboard's wire format, version 1).

        Keys: ``version``, ``source``, ``state``, ``error``, ``uptime_s``, ``now_us``,
        ``time_basis``, ``totals`` (``events``, ``by_kind``, ``by_operation``,
        ``collections``: distinct collections, ``other_items``: items that were not events),
        ``rates`` (``window_s``: the span the rates cover, ``events``, ``by_kind``,
        ``by_operation``), ``operations`` (one row per
        operation: ``operation``, ``events``, ``share`` of all commit operations, ``rate``),
        ``top_collections`` (``collection``, ``events``, ``rate``; most events first,
        ties by name), ``history`` (events of each of the last ``history`` complete seconds,
        oldest first), ``lag`` (``latest_time_us``, ``latest_time`` ISO 8601, ``lag_s``; None
        without events or with ``time_basis="wall"``), plus one key per entry of ``extra``.
        """
        now = self.clock()
        elapsed = max(now - self.started, 0.0)
        current = int(elapsed)
        oldest = max(0, current - self.rate_window)
        span = elapsed - oldest
        recent = [b for b in self._buckets if oldest <= b.index <= current]
        events_recent = sum(b.events for b in recent)
        kind_recent = _merge(b.by_kind for b in recent)
        operation_recent = _merge(b.by_operation for b in recent)
        collection_recent = _merge(b.by_collection for b in recent)

        def rate(count: int) -> float:
            return count / span if span > 0 else 0.0

        operations_total = sum(self.by_operation.values())
        operations = [
            {
                "operation": name,
                "events": count,
                "share": count / operations_total if operations_total else 0.0,
                "rate": rate(operation_recent.get(name, 0)),
            }
            for name, count in sorted(self.by_operation.items(), key=_by_count)
        ]
        ranked = sorted(self.by_collection.items(), key=_by_count)
        top_collections = [
            {"collection": name, "events": count, "rate": rate(collection_recent.get(name, 0))}
            for name, count in ranked[: self.top]
        ]
        per_second = {b.index: b.events for b in self._buckets}
        history = [per_second.get(index, 0) for index in range(current - self.history, current)]
        snapshot: dict[str, Any] = {
            "version": SNAPSHOT_VERSION,
            "source": self.source,
            "state": self.state,
            "error": self.error,
            "uptime_s": elapsed,
            "now_us": round(self.wall_clock() * 1_000_000),
            "time_basis": self.time_basis,
            "totals": {
                "events": self.events,
                "by_kind": dict(sorted(self.by_kind.items(), key=_by_count)),
                "by_operation": dict(sorted(self.by_operation.items(), key=_by_count)),
                "collections": len(self.by_collection),
                "other_items": self.other_items,
            },
            "rates": {
                "window_s": span,
                "events": rate(events_recent),
                "by_kind": {name: rate(count) for name, count in kind_recent.items()},
                "by_operation": {name: rate(count) for name, count in operation_recent.items()},
            },
            "operations": operations,
            "top_collections": top_collections,
            "history": history,
            "lag": self._lag(),
        }
        for name, read in self.extra.items():
            snapshot[name] = read()
        return snapshot

    def _lag(self) -> dict[str, Any] | None:
        latest = self.latest_time_us
        if latest is None or self.time_basis == "wall":
            return None
        lag_s = self.wall_clock() - latest / 1_000_000
        return {
            "latest_time_us": latest,
            "latest_time": _iso(latest),
            "lag_s": lag_s if math.isfinite(lag_s) else None,
        }


class StatsSink(Sink[Any]):
    """A sink that counts each event into a :class:`DashboardStats` and marks its end.

    Items that are not events (a pipeline stream of window results, say) are only counted,
    in ``DashboardStats.other_items``.
    """

    def __init__(self, stats: DashboardStats) -> None:
        super().__init__()
        self.dashboard_stats = stats

    def write(self, value: Any) -> None:
        if isinstance(value, Event):
            self.dashboard_stats.observe(value)
        else:
            self.dashboard_stats.other_items += 1
        self.stats.delivered += 1

    def on_error(self, error: Exception) -> None:
        self.dashboard_stats.finish(error)
        super().on_error(error)

    def on_completed(self) -> None:
        self.dashboard_stats.finish()
        super().on_completed()


def _merge(counters: Iterable[dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for counter in counters:
        for name, count in counter.items():
            merged[name] = merged.get(name, 0) + count
    return merged


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])


def _iso(time_us: int) -> str | None:
    try:
        moment = datetime.fromtimestamp(time_us / 1_000_000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
