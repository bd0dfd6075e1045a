"""``prometheus``: a pipeline's output as a Prometheus metric, served on ``/metrics``.

One sink is one metric (a counter or a gauge). Several sinks given the same ``listen`` address
share one HTTP listener, so a pipeline's metrics are scraped from one port::

    sinks:
      - prometheus: {metric: jetflow_follows_total, help: New follows., listen: 127.0.0.1:9464}
        stream: follows
      - prometheus: {metric: jetflow_follows_per_minute, kind: gauge, listen: 127.0.0.1:9464}
        stream: per_minute

What each item does:

==========================  ===============================================================
item                        effect
==========================  ===============================================================
an event, ``counter``       +1 (or + the number at the ``value`` field path), on the series
                            whose labels are read from the event by the ``labels`` paths
an event, ``gauge``         set to the number at the ``value`` field path
a window result whose       one series per key, label ``key_label``: a counter adds each
value is a dict (count_by,  count, a gauge is *replaced* by the window's values (keys absent
keyed rate) or a list of    from the newest window disappear)
pairs (top_k)
a window result whose       a counter adds the window's events, a gauge is set to the value
value is a number (rate,
distinct_count)
==========================  ===============================================================

Label cardinality is bounded: past ``max_series`` series one series labelled ``_other``
absorbs the rest (a gauge's ``_other`` holds their sum), so no input can grow the number of
series without end.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, Literal

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from jetflow.addresses import parse_listen
from jetflow.errors import ConfigError
from jetflow.events import Event
from jetflow.fields import Getter, compile_path
from jetflow.metrics import CONTENT_TYPE, Child, Counter, Gauge
from jetflow.operators.window import WindowResult
from jetflow.sinks._base import Sink

log = logging.getLogger("jetflow.sinks.prometheus")

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
DEFAULT_LISTEN = "127.0.0.1:9464"
Kind = Literal["counter", "gauge"]


def check_metric_name(name: str) -> None:
    """Raise ConfigError unless ``name`` is a valid Prometheus metric name."""
    if not isinstance(name, str) or not _METRIC_NAME.fullmatch(name):
        raise ConfigError(
            f"metric: {name!r} is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"
        )


def check_label_name(name: str) -> None:
    """Raise ConfigError unless ``name`` is a valid Prometheus label name."""
    if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
        raise ConfigError(
            f"label {name!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, no __)"
        )


class _Gauge(Gauge):
    """A gauge whose series can be replaced all at once (one window's values)."""

    def clear(self) -> None:
        with self._lock:
            self._children.clear()


def label_value(value: Any) -> str:
    """A key or field value as a label value: None → ``none``, tuples joined by commas."""
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(label_value(item) for item in value)
    return str(value)


class PrometheusSink(Sink[Any]):
    """Updates one metric from each item and serves it on ``/metrics``; see
    :func:`prometheus`."""

    def __init__(
        self,
        metric: str,
        *,
        kind: Kind = "counter",
        help: str = "",
        labels: dict[str, str] | None = None,
        value: str | None = None,
        key_label: str = "key",
        listen: str | None = DEFAULT_LISTEN,
        max_series: int = 100,
    ) -> None:
        super().__init__()
        check_metric_name(metric)
        if kind not in ("counter", "gauge"):
            raise ConfigError(f"kind: {kind!r} is not 'counter' or 'gauge'")
        if max_series < 1:
            raise ConfigError(f"max_series: must be at least 1, got {max_series}")
        check_label_name(key_label)
        self.labels = dict(labels or {})
        for name in self.labels:
            check_label_name(name)
        if key_label in self.labels:
            raise ConfigError(f"key_label: {key_label!r} is also one of the labels")
        self._getters: list[Getter] = [compile_path(path) for path in self.labels.values()]
        self._value: Getter | None = compile_path(value) if value is not None else None
        self.kind = kind
        self.key_label = key_label
        self.address = parse_listen(listen, "listen") if listen is not None else None
        self.documentation = help or f"{metric} (a jetflow pipeline's {kind})"
        self.max_series = max_series
        self.name = metric
        self.skipped = 0
        # The metric's labels follow its items: the ``labels`` of events (or none), or
        # ``key_label`` once a window result with keys arrives first.
        self._metric = self._new_metric(list(self.labels))
        self._keyed = False
        self._touched = False
        self._exporter: _Exporter | None = None

    def _new_metric(self, labelnames: list[str]) -> Counter | _Gauge:
        if self.kind == "counter":  # an unlabelled counter reads 0 from the start
            return Counter(self.name, self.documentation, labelnames, self.max_series)
        gauge = _Gauge(self.name, self.documentation, labelnames, max_series=self.max_series)
        gauge.clear()  # a gauge has no value until an item sets one
        return gauge

    # -- serving ------------------------------------------------------------------------------

    @property
    def url(self) -> str | None:
        """``http://host:port/metrics`` once started, else None."""
        exporter = self._exporter
        if exporter is None or exporter.server is None:
            return None
        host, port = exporter.bound
        return f"http://{host}:{port}/metrics"

    async def start(self) -> None:
        """Start (or join) the HTTP listener at ``listen``; no-op with ``listen=None``."""
        if self.address is None or self._exporter is not None:
            return
        self._exporter = await _Exporter.join(self.address, self)

    def close(self) -> None:
        if not self.done and self._exporter is not None:
            exporter, self._exporter = self._exporter, None
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                task = loop.create_task(exporter.leave(self))
                task.add_done_callback(lambda _: Sink.close(self))
                return
        super().close()

    # -- metrics ------------------------------------------------------------------------------

    def render(self) -> Iterable[str]:
        """The metric in the text exposition format (HELP, TYPE, samples)."""
        return self._metric.render()

    def samples(self) -> dict[str, float]:
        """Every sample as ``{'name{label="v"}': value}`` (for tests and ``jetflow test``)."""
        out: dict[str, float] = {}
        for line in self.render():
            if line.startswith("#"):
                continue
            name, _, number = line.rpartition(" ")
            out[name] = float(number)
        return out

    def write(self, value: Any) -> None:
        if isinstance(value, Event):
            done = self._event(value)
        elif isinstance(value, WindowResult):
            done = self._window(value)
        else:
            done = False
        if not done:
            self.skipped += 1
            self.stats.count_error("unsupported_item")
            return
        self._touched = True
        self.stats.delivered += 1

    def _event(self, event: Event) -> bool:
        if self._keyed:
            return False
        labels = [label_value(get(event)) for get in self._getters]
        amount: Any = 1.0
        if self._value is not None:
            amount = self._value(event)
            if isinstance(amount, bool) or not isinstance(amount, int | float):
                return False
        metric = self._metric
        if isinstance(metric, Counter):
            metric.labels(*labels).inc(amount)
            return True
        if self._value is None:
            return False  # a gauge of events needs ``value``
        metric.labels(*labels).set(amount)
        return True

    def _window(self, result: WindowResult[Any]) -> bool:
        value = result.value
        pairs: Iterable[Any] | None = None
        if isinstance(value, dict):
            pairs = value.items()
        elif isinstance(value, list) and all(
            isinstance(item, tuple | list) and len(item) == 2 for item in value
        ):
            pairs = value
        if pairs is None:
            if self._keyed or self.labels:
                return False
            metric = self._metric
            if isinstance(metric, Counter):
                metric.inc(result.events)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                metric.set(value)
            else:
                return False
            return True
        if not self._keyed:
            if self._touched:
                return False
            self._metric = self._new_metric([self.key_label])
            self._keyed = True
        metric = self._metric
        if isinstance(metric, _Gauge):
            metric.clear()  # the newest window replaces the previous one
        for key, count in pairs:
            if isinstance(count, int | float) and not isinstance(count, bool):
                child: Child = metric.labels(label_value(key))
                child.inc(count)  # after clear(): a set, or the sum of the rest for _other
        return True


class _Exporter:
    """One HTTP listener serving the metrics of every sink that joined it."""

    _shared: dict[tuple[str, int], _Exporter] = {}  # noqa: RUF012 - process-wide on purpose

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.sinks: list[PrometheusSink] = []
        self.server: Server | None = None
        self.bound = address
        self._starting: asyncio.Lock = asyncio.Lock()

    @classmethod
    async def join(cls, address: tuple[str, int], sink: PrometheusSink) -> _Exporter:
        exporter = cls._shared.get(address) if address[1] != 0 else None
        if exporter is None:
            exporter = cls(address)
            if address[1] != 0:
                cls._shared[address] = exporter
        if any(other.name == sink.name for other in exporter.sinks):
            raise ConfigError(f"metric {sink.name} is already served on {address[0]}:{address[1]}")
        exporter.sinks.append(sink)
        async with exporter._starting:
            if exporter.server is None:
                try:
                    exporter.server = await serve(
                        _never, address[0], address[1], process_request=exporter._route
                    )
                except OSError as exc:
                    exporter.sinks.remove(sink)
                    cls._shared.pop(address, None)
                    raise ConfigError(
                        f"listen: cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc}"
                    ) from None
                exporter.bound = exporter.server.sockets[0].getsockname()[:2]
                log.info("serving metrics on http://%s:%d/metrics", *exporter.bound)
        return exporter

    async def leave(self, sink: PrometheusSink) -> None:
        if sink in self.sinks:
            self.sinks.remove(sink)
        if not self.sinks and self.server is not None:
            if self._shared.get(self.address) is self:
                del self._shared[self.address]
            server, self.server = self.server, None
            server.close()
            await server.wait_closed()

    def render(self) -> bytes:
        lines = [line for sink in self.sinks for line in sink.render()]
        return ("\n".join(lines) + "\n").encode()

    def _route(self, connection: ServerConnection, request: Request) -> Response:
        if request.path.partition("?")[0] == "/metrics":
            return _response(HTTPStatus.OK, self.render(), CONTENT_TYPE)
        return _response(HTTPStatus.NOT_FOUND, b"not found: try /metrics\n")


async def _never(connection: ServerConnection) -> None:
    await connection.close(1008, "no websocket here")


def _response(
    status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8"
) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return Response(status.value, status.phrase, headers, body)


def prometheus(
    metric: str,
    *,
    kind: Kind = "counter",
    help: str = "",
    labels: dict[str, str] | None = None,
    value: str | None = None,
    key_label: str = "key",
    listen: str | None = DEFAULT_LISTEN,
    max_series: int = 100,
) -> PrometheusSink:
    """Count events or expose window results as a Prometheus metric on ``/metrics``.

    See the module docstring for what each kind of item does. The listener starts when a
    :class:`~jetflow.pipeline.Pipeline` starts (or on ``await sink.start()``) and stops when
    the stream ends; sinks with the same ``listen`` share it.

    Args:
        metric: the metric name, e.g. ``jetflow_follows_total``.
        kind: ``counter`` or ``gauge``.
        help: the HELP text.
        labels: label name → field path read from each event (``{"collection":
            "commit.collection"}``).
        value: a field path holding the number to add (counter) or set (gauge) per event.
        key_label: the label holding a window result's keys (``count_by``, ``top_k``).
        listen: ``HOST:PORT`` of the HTTP listener (port 0 picks a free one; see ``url``),
            or None to serve nothing (read :meth:`PrometheusSink.samples`).
        max_series: series per metric before ``_other`` takes the rest.

    Example:
        >>> per_lang = posts.pipe(op.count_by("record.langs.0", window="1m"))
        >>> per_lang.subscribe(jf.sinks.prometheus("posts_per_minute", kind="gauge",
        ...                                        key_label="lang"))
    """
    return PrometheusSink(
        metric,
        kind=kind,
        help=help,
        labels=labels,
        value=value,
        key_label=key_label,
        listen=listen,
        max_series=max_series,
    )
