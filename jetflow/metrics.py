"""Prometheus metrics: counters, gauges and histograms, and the text exposition format.

Small on purpose: a metric child is a plain object whose ``value`` the hot path bumps with one
attribute write, and label sets are capped (``max_series``) so that no input can grow the
number of series without bound; past the cap a child named ``_other`` absorbs new values.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence

_OTHER = "_other"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class Child:
    """One series: a value for one combination of label values."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = value


class _HistogramChild:
    __slots__ = ("buckets", "counts", "sum")

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.sum += value
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1
                return
        self.counts[-1] += 1


class _Metric:
    kind = "untyped"

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str] = (), max_series: int = 1000
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.max_series = max_series
        self._children: dict[tuple[str, ...], object] = {}
        self._lock = threading.Lock()
        if not self.labelnames:
            self._children[()] = self._new_child()  # an unlabelled metric reads 0 from the start

    def _new_child(self) -> object:
        return Child()

    def _child(self, values: tuple[str, ...]) -> object:
        child = self._children.get(values)
        if child is None:
            with self._lock:
                if values not in self._children and len(self._children) >= self.max_series:
                    values = (_OTHER,) * len(self.labelnames)
                child = self._children.setdefault(values, self._new_child())
        return child

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.documentation}"
        yield f"# TYPE {self.name} {self.kind}"
        yield from self._render_samples()

    def _render_samples(self) -> Iterable[str]:
        for values, child in sorted(self._children.items()):
            assert isinstance(child, Child)
            yield f"{self.name}{self._labels(values)} {_format(child.value)}"

    def _labels(self, values: tuple[str, ...], extra: str = "") -> str:
        pairs = [
            f'{name}="{_escape(value)}"'
            for name, value in zip(self.labelnames, values, strict=True)
        ]
        if extra:
            pairs.append(extra)
        return "{" + ",".join(pairs) + "}" if pairs else ""


class Counter(_Metric):
    """A value that only goes up."""

    kind = "counter"

    def labels(self, *values: str) -> Child:
        child = self._child(values)
        assert isinstance(child, Child)
        return child

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)


class Gauge(_Metric):
    """A value that goes up and down, or is read from a function at scrape time."""

    kind = "gauge"

    def __init__(
        self, *args: object, function: Callable[[], float] | None = None, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.function = function

    def labels(self, *values: str) -> Child:
        child = self._child(values)
        assert isinstance(child, Child)
        return child

    def set(self, value: float) -> None:
        self.labels().set(value)

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self.labels().dec(amount)

    def _render_samples(self) -> Iterable[str]:
        if self.function is not None:
            yield f"{self.name} {_format(float(self.function()))}"
            return
        yield from super()._render_samples()


def exponential_buckets(start: float, factor: float, count: int) -> list[float]:
    return [start * factor**index for index in range(count)]


class Histogram(_Metric):
    """Observations counted into cumulative buckets."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = exponential_buckets(0.0001, 2, 18),
        max_series: int = 1000,
    ) -> None:
        self.buckets = list(buckets)
        super().__init__(name, documentation, labelnames, max_series)

    def _new_child(self) -> object:
        return _HistogramChild(self.buckets)

    def labels(self, *values: str) -> _HistogramChild:
        child = self._child(values)
        assert isinstance(child, _HistogramChild)
        return child

    def observe(self, value: float) -> None:
        self.labels().observe(value)

    def _render_samples(self) -> Iterable[str]:
        for values, child in sorted(self._children.items()):
            assert isinstance(child, _HistogramChild)
            running = 0
            for bound, count in zip([*child.buckets, math.inf], child.counts, strict=True):
                running += count
                le = 'le="' + _format(bound) + '"'
                yield f"{self.name}_bucket{self._labels(values, le)} {running}"
            yield f"{self.name}_sum{self._labels(values)} {_format(child.sum)}"
            yield f"{self.name}_count{self._labels(values)} {running}"


class Registry:
    """A set of metrics rendered together."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def register(self, metric: _Metric) -> None:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} registered twice")
        self._metrics[metric.name] = metric

    def counter(
        self, name: str, documentation: str, labelnames: Sequence[str] = (), **options: int
    ) -> Counter:
        metric = Counter(name, documentation, labelnames, **options)
        self.register(metric)
        return metric

    def gauge(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        function: Callable[[], float] | None = None,
    ) -> Gauge:
        metric = Gauge(name, documentation, labelnames, function=function)
        self.register(metric)
        return metric

    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] | None = None,
    ) -> Histogram:
        metric = (
            Histogram(name, documentation, labelnames, buckets)
            if buckets
            else Histogram(name, documentation, labelnames)
        )
        self.register(metric)
        return metric

    def render(self) -> bytes:
        lines = [line for metric in self._metrics.values() for line in metric.render()]
        return ("\n".join(lines) + "\n").encode()

    def add_process_metrics(self) -> None:
        """``process_resident_memory_bytes``, ``process_cpu_seconds_total``, start time."""
        started = time.time()
        self.gauge(
            "process_resident_memory_bytes", "Resident memory size in bytes.", function=_rss_bytes
        )
        self.gauge(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            function=lambda: sum(os.times()[:2]),
        )
        self.gauge(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            function=lambda: started,
        )


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _rss_bytes() -> float:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0.0
