"""Notebook helpers: take a few events, turn them into DataFrames, and watch live widgets.

Install the extra first: ``pip install 'jetflow[notebook]'`` (pandas, matplotlib, ipywidgets).
Each helper imports what it needs when called; without it, it raises
:class:`~jetflow.errors.ConfigError` naming that command.

Jupyter and event loops
    A Jupyter kernel already runs an asyncio loop, so ``asyncio.run()`` fails in a cell, while
    top-level ``await`` and background tasks work. jetflow's sources start their work as a task
    on the running loop when subscribed, so in a notebook::

        events = jf.sources.replay("demo.bin.zst").pipe(op.decode(time="relay"))
        counter = LiveCounter("commit.collection")
        counter                          # shows the widget
        events.subscribe(counter)        # returns at once; the stream runs on the kernel's loop
        await counter.wait_async()       # optional: wait for the end (the widget updates anyway)

    No ``nest_asyncio`` is needed or used.

Taking events
    :func:`take_async` (``await`` it: Jupyter, any coroutine) and :func:`take` (blocking: scripts,
    and notebook cells too) share one core. ``take`` called where a loop already runs in the
    thread (a notebook cell) runs the stream on a fresh loop in a helper thread and blocks the
    cell until it is done; meanwhile the kernel's own loop, and any pipeline running in the
    background on it, waits. Prefer ``await take_async(...)`` in notebooks.

Functions and classes
    - :func:`take`, :func:`take_async` — the first ``n`` items of a stream, as a list
    - :func:`to_dataframe` — events as a pandas DataFrame (time, did, kind, ..., record fields)
    - :func:`windows_to_dataframe` — window results (``count_by``, ``top_k``, ``rate``, ...)
    - :class:`LiveCounter` — a sink and widget: counts by key, refreshed while the stream runs
    - :class:`LiveChart` — a sink and widget: a matplotlib chart of window results, redrawn as
      windows close
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import html
import importlib
import io
import threading
import time
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeVar

from reactivex import Observable

from jetflow.errors import ConfigError
from jetflow.events import COMMIT, Event
from jetflow.fields import Getter, Key, key_getter
from jetflow.operators.window import WindowResult
from jetflow.sinks._base import Sink

T = TypeVar("T")

EXTRA: Final = "pip install 'jetflow[notebook]'"
BASE_COLUMNS: Final = ("time", "did", "kind", "operation", "collection", "rkey", "time_us")
RecordView = Literal["flatten", "dict", "none"]


def require(module: str) -> Any:
    """Import an optional dependency of the ``notebook`` extra, or fail naming the install.

    Raises:
        ConfigError: the module is not installed; the message says
            ``pip install 'jetflow[notebook]'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"jetflow.notebook needs {module.partition('.')[0]}, which is not installed: {EXTRA}"
        ) from exc


# -- take ---------------------------------------------------------------------------------------


def _check_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"take: n must be a positive integer, not {n!r}")


async def take_async(
    stream: Observable[T] | AsyncIterable[T] | Iterable[T],
    n: int,
    *,
    timeout: float | None = 30.0,
) -> list[T]:
    """The first ``n`` items of ``stream`` (fewer if it ends first or ``timeout`` passes).

    Subscribes, collects, then unsubscribes (a live source disconnects). Await it in a
    notebook cell or any coroutine; :func:`take` is the blocking twin.

    Args:
        stream: an Observable (a jetflow source, or one piped through operators), an async
            iterable, or a plain iterable.
        n: how many items.
        timeout: seconds to wait for them; then the items that arrived are returned
            (possibly fewer than ``n``, possibly none). None waits as long as it takes.

    Returns:
        A list of at most ``n`` items.

    Raises:
        ConfigError: ``n`` is not a positive integer, or ``stream`` is none of the above.
        Exception: whatever error ends the stream before ``n`` items arrived.

    Example:
        >>> posts = jf.sources.replay("demo.bin.zst").pipe(
        ...     op.decode(), op.filter(collections=["app.bsky.feed.post"]))
        >>> first = await take_async(posts, 10)
    """
    _check_count(n)
    if isinstance(stream, Observable):
        return await _take_observable(stream, n, timeout)
    if isinstance(stream, AsyncIterable):
        return await _take_async_iterable(stream, n, timeout)
    if isinstance(stream, Iterable):
        items: list[T] = []
        for item in stream:
            items.append(item)
            if len(items) >= n:
                break
        return items
    raise ConfigError(
        f"take: expected an Observable, an async iterable or an iterable, not {type(stream)!r}"
    )


async def _take_observable(stream: Observable[T], n: int, timeout: float | None) -> list[T]:
    loop = asyncio.get_running_loop()
    owner = threading.get_ident()
    items: list[T] = []
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def finish(error: BaseException | None = None) -> None:
        if threading.get_ident() == owner:
            settle(error)
        else:  # an Observable that pushes from another thread
            loop.call_soon_threadsafe(settle, error)

    def on_next(item: T) -> None:
        if len(items) < n:
            items.append(item)
            if len(items) == n:
                finish()

    subscription = stream.subscribe(on_next, finish, finish)
    try:
        await asyncio.wait_for(asyncio.shield(done), timeout)
    except TimeoutError:
        pass
    finally:
        subscription.dispose()
    error = done.exception() if done.done() else None
    if error is not None and len(items) < n:
        raise error
    return items[:n]


async def _take_async_iterable(stream: AsyncIterable[T], n: int, timeout: float | None) -> list[T]:
    items: list[T] = []

    async def collect() -> None:
        iterator = aiter(stream)
        try:
            async for item in iterator:
                items.append(item)
                if len(items) >= n:
                    break
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(collect(), timeout)
    return items


def take(
    stream: Observable[T] | AsyncIterable[T] | Iterable[T],
    n: int,
    *,
    timeout: float | None = 30.0,
) -> list[T]:
    """Blocking twin of :func:`take_async`: the first ``n`` items of ``stream``.

    In a script it runs the stream on its own event loop. Called where a loop is already
    running in this thread (a notebook cell), it runs the stream on a fresh loop in a helper
    thread and blocks until done, so it works in Jupyter too; the kernel's loop waits
    meanwhile (use ``await take_async(...)`` to keep background pipelines running).

    Args, Returns, Raises: as for :func:`take_async`.

    Example:
        >>> events = take(jf.sources.replay("demo.bin.zst").pipe(op.decode()), 5)
    """
    _check_count(n)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(take_async(stream, n, timeout=timeout))
    outcome: list[list[T]] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(asyncio.run(take_async(stream, n, timeout=timeout)))
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=work, name="jetflow-take", daemon=True)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return outcome[0]


# -- DataFrames ---------------------------------------------------------------------------------


def _flatten(value: Mapping[str, Any], prefix: str, row: dict[str, Any]) -> None:
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            _flatten(item, name + ".", row)
        else:
            row[name] = item


def _field_getters(fields: Sequence[str] | Mapping[str, Key] | None) -> list[tuple[str, Getter]]:
    if fields is None:
        return []
    named: Iterable[tuple[str, Key]]
    if isinstance(fields, Mapping):
        named = fields.items()
    elif isinstance(fields, str):
        raise ConfigError(f"fields: a list of field paths or a mapping, not the string {fields!r}")
    else:
        named = ((path, path) for path in fields)
    getters: list[tuple[str, Getter]] = []
    for name, key in named:
        if name in BASE_COLUMNS:
            raise ConfigError(f"fields: {name!r} is already a column; choose another name")
        getters.append((name, key_getter(key, name="fields")))
    return getters


def to_dataframe(
    events: Iterable[Event | Mapping[str, Any]],
    *,
    fields: Sequence[str] | Mapping[str, Key] | None = None,
    record: RecordView = "flatten",
) -> Any:
    """Events as a pandas DataFrame, one row per event.

    Columns, in order: ``time`` (a UTC ``datetime64`` from ``time_us``), ``did``, ``kind``,
    ``operation``, ``collection``, ``rkey`` (None on events that are not commits),
    ``time_us``; then one column per entry of ``fields``; then the record view:

    - ``"flatten"`` (default): one column per record field, nested objects joined with dots
      (``record.text``, ``record.subject.uri``, ``record.embed.$type``); lists stay values.
      Columns appear in the order first seen; a field an event lacks is NaN/None.
    - ``"dict"``: one ``record`` column holding the record dict (None without one).
    - ``"none"``: no record columns.

    Args:
        events: :class:`~jetflow.events.Event` objects, or Jetstream JSON objects (dicts).
        fields: extra columns from field paths (see :mod:`jetflow.fields`): a list
            (``["record.langs.0"]``, each named by its path) or a mapping name → path or
            function (``{"lang": "record.langs.0"}``).
        record: the record view, as above.

    Returns:
        A ``pandas.DataFrame``.

    Raises:
        ConfigError: pandas is missing (``pip install 'jetflow[notebook]'``), a bad field
            path, a field named like a base column, an unknown ``record`` view, or an item
            that is not an event.

    Example:
        >>> df = to_dataframe(posts, fields={"lang": "record.langs.0"})
        >>> df["lang"].value_counts().plot.bar()
    """
    pandas = require("pandas")
    if record not in ("flatten", "dict", "none"):
        raise ConfigError(f"record: {record!r} is not one of flatten, dict, none")
    getters = _field_getters(fields)
    rows: list[dict[str, Any]] = []
    for item in events:
        if isinstance(item, Mapping):
            event = Event.from_dict(dict(item))
        elif isinstance(item, Event):
            event = item
        else:
            raise ConfigError(f"to_dataframe: expected events, got {type(item).__name__}")
        commit = event.kind == COMMIT
        row: dict[str, Any] = {
            "time": event.time_us,
            "did": event.did or None,
            "kind": event.kind,
            "operation": event.operation if commit else None,
            "collection": event.collection if commit else None,
            "rkey": event.rkey if commit else None,
            "time_us": event.time_us,
        }
        for name, getter in getters:
            row[name] = getter(event)
        if record == "flatten":
            body = event.record if commit else None
            if body:
                _flatten(body, "record.", row)
        elif record == "dict":
            row["record"] = event.record if commit else None
        rows.append(row)
    columns = [*BASE_COLUMNS, *(name for name, _ in getters)]
    if record == "dict":
        columns.append("record")
    frame = pandas.DataFrame(rows) if rows else pandas.DataFrame(columns=columns)
    frame["time"] = pandas.to_datetime(frame["time"].astype("int64"), unit="us", utc=True)
    return frame


def windows_to_dataframe(results: Iterable[WindowResult[Any]]) -> Any:
    """Window results as a pandas DataFrame, one row per window (or per window and key).

    Columns ``start`` and ``end`` (UTC datetimes), ``events`` and ``late``, then by the kind
    of value:

    - a dict (``count_by``, keyed ``rate``): one column per key, 0 where a window lacked it;
    - a list of ``(key, count)`` pairs (``top_k``): one row per pair, with ``rank`` (1 is the
      most frequent), ``key`` and ``count``;
    - anything else (``rate``, ``distinct_count``): a ``value`` column.

    Raises:
        ConfigError: pandas is missing, or the results mix kinds of values.

    Example:
        >>> counts = take(events.pipe(op.count_by("kind", window=op.tumbling("1s"))), 100)
        >>> windows_to_dataframe(counts).set_index("start").plot()
    """
    pandas = require("pandas")
    results = list(results)
    shapes = {_shape(result.value) for result in results}
    if len(shapes) > 1:
        raise ConfigError(f"windows_to_dataframe: results mix values of kinds {sorted(shapes)}")
    shape = shapes.pop() if shapes else "value"
    rows: list[dict[str, Any]] = []
    for result in results:
        base = {
            "start": result.start_us,
            "end": result.end_us,
            "events": result.events,
            "late": result.late,
        }
        if shape == "dict":
            rows.append({**base, **{_column(key): count for key, count in result.value.items()}})
        elif shape == "pairs":
            for rank, (key, count) in enumerate(result.value, start=1):
                rows.append({**base, "rank": rank, "key": key, "count": count})
        else:
            rows.append({**base, "value": result.value})
    frame = pandas.DataFrame(rows) if rows else pandas.DataFrame(columns=["start", "end"])
    if shape == "dict" and rows:
        keys = [name for name in frame.columns if name not in ("start", "end", "events", "late")]
        frame[keys] = frame[keys].fillna(0)
    for name in ("start", "end"):
        frame[name] = pandas.to_datetime(frame[name].astype("int64"), unit="us", utc=True)
    return frame


def _shape(value: Any) -> str:
    if isinstance(value, Mapping):
        return "dict"
    if isinstance(value, list) and all(
        isinstance(item, tuple) and len(item) == 2 for item in value
    ):
        return "pairs"
    return "value"


def _column(key: Any) -> str:
    return key if isinstance(key, str) else str(key)


# -- widgets ------------------------------------------------------------------------------------


class _Throttle:
    """True at most once per ``interval`` seconds of wall time."""

    __slots__ = ("interval", "last")

    def __init__(self, interval: float) -> None:
        if not interval >= 0:
            raise ConfigError(f"interval: must be 0 or more seconds, not {interval!r}")
        self.interval = interval
        self.last = float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            return True
        return False


class LiveCounter(Sink[Event]):
    """A sink that counts events by a key and shows the counts in a live widget.

    Display it (make it the last expression of a cell), then subscribe it to a stream: the
    table refreshes at most every ``interval`` seconds while events arrive, and once more when
    the stream ends. It is a jetflow sink, so ``await counter.wait_async()`` waits for the end.

    Args:
        key: a field path or function of the event (default ``commit.collection``; events
            that are not commits count under None, shown as "(none)").
        top: how many keys the table shows (all are counted).
        title: the widget's heading (default: the key).
        interval: seconds between refreshes.

    Attributes:
        counts: key → events so far.
        total: events so far.
        widget: the ``ipywidgets.HTML`` widget.

    Raises:
        ConfigError: ipywidgets is missing (``pip install 'jetflow[notebook]'``), a bad key.

    Example:
        >>> counter = LiveCounter("commit.collection", top=8)
        >>> counter
        >>> events.subscribe(counter)
    """

    def __init__(
        self,
        key: Key = "commit.collection",
        *,
        top: int = 10,
        title: str | None = None,
        interval: float = 0.25,
    ) -> None:
        widgets = require("ipywidgets")
        super().__init__()
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ConfigError(f"top: must be a positive integer, not {top!r}")
        self._key = key_getter(key)
        self.top = top
        self.title = title if title is not None else (key if isinstance(key, str) else "count")
        self.counts: dict[Any, int] = {}
        self.total = 0
        self.refreshes = 0
        self._throttle = _Throttle(interval)
        self._started: float | None = None
        self._ended: float | None = None
        self.widget: Any = widgets.HTML()
        self.refresh()

    def write(self, value: Event) -> None:
        if self._started is None:
            self._started = time.monotonic()
        key = self._key(value)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.total += 1
        self.stats.delivered += 1
        if self._throttle.due():
            self.refresh()

    def close(self) -> None:
        if not self.done:
            self._ended = time.monotonic()
            self.refresh()
        super().close()

    def most_common(self, n: int | None = None) -> list[tuple[Any, int]]:
        """The ``n`` (default ``top``) most frequent keys, ties by key."""
        ranked = sorted(self.counts.items(), key=lambda item: (-item[1], str(item[0])))
        return ranked[: self.top if n is None else n]

    def render(self) -> str:
        """The widget's HTML (keys escaped)."""
        elapsed = 0.0
        if self._started is not None:
            elapsed = (self._ended or time.monotonic()) - self._started
        rate = self.total / elapsed if elapsed > 0 else 0.0
        state = "running" if self._started else "waiting"
        if self._ended is not None:
            state = "done" if self.error is None else f"failed: {self.error}"
        rows = []
        most = max(self.counts.values(), default=1)
        for key, count in self.most_common():
            label = "(none)" if key is None else str(key)
            width = 100 * count / most
            rows.append(
                "<tr>"
                f"<td style='font-family:monospace;padding:1px 8px'>{html.escape(label)}</td>"
                f"<td style='text-align:right;padding:1px 8px'>{count:,}</td>"
                f"<td style='width:200px'><div style='background:#3b82f6;height:8px;"
                f"width:{width:.1f}%'></div></td>"
                "</tr>"
            )
        return (
            f"<div><b>{html.escape(self.title)}</b> — {self.total:,} events"
            f" ({rate:,.0f}/s, {html.escape(state)})"
            f"<table>{''.join(rows)}</table></div>"
        )

    def refresh(self) -> None:
        """Redraw the widget now."""
        self.widget.value = self.render()
        self.refreshes += 1

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


class LiveChart(Sink[WindowResult[Any]]):
    """A sink of window results drawn as a matplotlib chart in a live widget.

    Subscribe it to an aggregation (``count_by``, ``rate``, ``top_k``, ``distinct_count``);
    the chart is redrawn at most every ``interval`` seconds as windows close, and once more
    when the stream ends (each redraw renders a PNG on the stream's loop, a few tens of
    milliseconds, hence the throttle). What it draws depends on the values:

    - dicts (``count_by``, keyed ``rate``): one line per key over the windows (the ``top``
      keys with the most in the shown windows);
    - numbers (``rate``, ``distinct_count``): one line;
    - ``(key, count)`` lists (``top_k``): horizontal bars of the latest window.

    Args:
        title: the chart's title.
        ylabel: the y axis label (default "events").
        max_windows: how many of the latest windows are drawn.
        top: how many keys get a line.
        interval: seconds between redraws.
        size: the figure size in inches.

    Attributes:
        results: the latest ``max_windows`` results.
        widget: the ``ipywidgets.Image`` showing the PNG.

    Raises:
        ConfigError: matplotlib or ipywidgets is missing (``pip install 'jetflow[notebook]'``).

    Example:
        >>> chart = LiveChart(title="events/s by kind")
        >>> chart
        >>> events.pipe(op.rate(window=op.tumbling("1s"), key="kind")).subscribe(chart)
    """

    def __init__(
        self,
        *,
        title: str = "",
        ylabel: str = "events",
        max_windows: int = 60,
        top: int = 8,
        interval: float = 0.5,
        size: tuple[float, float] = (8.0, 3.0),
    ) -> None:
        widgets = require("ipywidgets")
        require("matplotlib")
        super().__init__()
        for name, number in (("max_windows", max_windows), ("top", top)):
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                raise ConfigError(f"{name}: must be a positive integer, not {number!r}")
        self.title = title
        self.ylabel = ylabel
        self.top = top
        self.size = size
        self.results: collections.deque[WindowResult[Any]] = collections.deque(maxlen=max_windows)
        self.redraws = 0
        self._throttle = _Throttle(interval)
        self.widget: Any = widgets.Image(format="png")
        self.refresh()

    def write(self, value: WindowResult[Any]) -> None:
        self.results.append(value)
        self.stats.delivered += 1
        if self._throttle.due():
            self.refresh()

    def close(self) -> None:
        if not self.done:
            self.refresh()
        super().close()

    def figure(self) -> Any:
        """A new ``matplotlib.figure.Figure`` of the current results (no pyplot state)."""
        figure_module = require("matplotlib.figure")
        figure = figure_module.Figure(figsize=self.size, layout="constrained")
        axes = figure.add_subplot()
        axes.set_title(self.title)
        results = list(self.results)
        if not results:
            axes.text(0.5, 0.5, "waiting for the first window", ha="center", va="center")
            axes.set_axis_off()
            return figure
        shape = _shape(results[-1].value)
        if shape == "pairs":
            latest = results[-1]
            pairs = list(reversed(latest.value[: self.top]))
            axes.barh([_label(key) for key, _ in pairs], [count for _, count in pairs])
            axes.set_xlabel(self.ylabel)
            axes.set_title(f"{self.title} — window from {_hhmmss(latest.start_us)}")
            return figure
        times = [datetime.fromtimestamp(result.start_us / 1_000_000, UTC) for result in results]
        if shape == "dict":
            totals: dict[Any, float] = {}
            for result in results:
                for key, count in result.value.items():
                    totals[key] = totals.get(key, 0) + count
            keys = sorted(totals, key=lambda key: (-totals[key], str(key)))[: self.top]
            for key in keys:
                values = [result.value.get(key, 0) for result in results]
                axes.plot(times, values, marker=".", label=_label(key))
            axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
        else:
            axes.plot(times, [result.value for result in results], marker=".")
        axes.set_ylabel(self.ylabel)
        axes.set_ylim(bottom=0)
        dates = require("matplotlib.dates")
        locator = dates.AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
        return figure

    def png(self) -> bytes:
        """The chart as PNG bytes."""
        backend = require("matplotlib.backends.backend_agg")
        figure = self.figure()
        buffer = io.BytesIO()
        backend.FigureCanvasAgg(figure).print_png(buffer)
        return buffer.getvalue()

    def refresh(self) -> None:
        """Redraw the widget now."""
        self.widget.value = self.png()
        self.redraws += 1

    def to_dataframe(self) -> Any:
        """The shown results as a DataFrame (see :func:`windows_to_dataframe`)."""
        return windows_to_dataframe(self.results)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _label(key: Any) -> str:
    return "(none)" if key is None else str(key)


def _hhmmss(time_us: int) -> str:
    return datetime.fromtimestamp(time_us / 1_000_000, UTC).strftime("%H:%M:%S")
