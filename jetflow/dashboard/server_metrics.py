"""Watch a ``jetflow serve`` (or Jetstream) server through its Prometheus ``/metrics`` endpoint.

:class:`ServerMetricsPoller` scrapes the endpoint every ``interval`` seconds and keeps a
summary for the dashboard: subscribers connected, events emitted per second (from the
counter's change between two scrapes), subscribers dropped by reason, refused subscribe
requests, whether the relay is connected, and the last relay ``seq``. The metric names are
those of :mod:`jetflow.server.telemetry` (Jetstream's own where the meaning is the same);
a metric the server does not export shows as None.

:func:`parse_metrics` reads the Prometheus text exposition format (version 0.0.4).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jetflow.errors import ConfigError

log = logging.getLogger("jetflow.dashboard")

# name -> list of (labels, value)
Samples = dict[str, list[tuple[dict[str, str], float]]]

_MAX_BODY = 4 << 20


def parse_metrics(text: str) -> Samples:
    """Parse Prometheus text exposition into ``{name: [(labels, value), ...]}``.

    Comments (``# HELP``, ``# TYPE``) and blank lines are skipped, and so is a line that does
    not parse (counted by nobody: a scrape is best effort). Label values are unescaped
    (``\\\\``, ``\\"``, ``\\n``); a trailing timestamp is ignored.

    Example:
        >>> parse_metrics('up{job="a"} 1\\n')
        {'up': [({'job': 'a'}, 1.0)]}
    """
    samples: Samples = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parsed = _parse_line(line)
        if parsed is not None:
            name, labels, value = parsed
            samples.setdefault(name, []).append((labels, value))
    return samples


def _parse_line(line: str) -> tuple[str, dict[str, str], float] | None:
    labels: dict[str, str] = {}
    brace = line.find("{")
    space = line.find(" ")
    if brace != -1 and (space == -1 or brace < space):
        name = line[:brace]
        position = brace + 1
        while True:
            while position < len(line) and line[position] in " ,":
                position += 1
            if position >= len(line):
                return None
            if line[position] == "}":
                position += 1
                break
            equals = line.find("=", position)
            if equals == -1 or equals + 1 >= len(line) or line[equals + 1] != '"':
                return None
            key = line[position:equals].strip()
            value_chars: list[str] = []
            position = equals + 2
            while position < len(line) and line[position] != '"':
                char = line[position]
                if char == "\\" and position + 1 < len(line):
                    position += 1
                    char = {"n": "\n"}.get(line[position], line[position])
                value_chars.append(char)
                position += 1
            if position >= len(line):
                return None
            labels[key] = "".join(value_chars)
            position += 1
        rest = line[position:].split()
    else:
        parts = line.split()
        name, rest = parts[0], parts[1:]
    if not name or not rest:
        return None
    try:
        value = float(rest[0])
    except ValueError:
        return None
    return name, labels, value


def metrics_url(url: str) -> str:
    """The scrape URL: ``http(s)://host:port`` gets the path ``/metrics`` when it has none.

    Raises:
        ConfigError: not an http or https URL with a host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"--server-metrics: {url!r} is not an http(s) URL such as http://127.0.0.1:6009/metrics"
        )
    path = parts.path if parts.path not in ("", "/") else "/metrics"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _total(samples: Samples, name: str) -> float | None:
    series = samples.get(name)
    if not series:
        return None
    return sum(value for _, value in series)


class ServerMetricsPoller:
    """Scrape a server's ``/metrics`` periodically; :meth:`snapshot` summarises the last scrape.

    Args:
        url: the metrics endpoint (``http://127.0.0.1:6009/metrics``; a bare ``host:port`` URL
            gets ``/metrics``).
        interval: seconds between scrapes.
        timeout: seconds a scrape may take.
        clock: monotonic seconds (injectable for tests).

    Example:
        >>> poller = ServerMetricsPoller("http://127.0.0.1:6009")
        >>> task = asyncio.create_task(poller.run())
        >>> poller.snapshot()["subscribers"]
        3
    """

    def __init__(
        self,
        url: str,
        *,
        interval: float = 1.0,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not interval > 0 or not timeout > 0:
            raise ConfigError("server metrics: interval and timeout must be positive")
        self.url = metrics_url(url)
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        self.scrapes = 0
        self.failures = 0
        self.error: str | None = None
        self.samples: Samples = {}
        self._scraped_at: float | None = None
        self._previous: tuple[float, float] | None = None  # (time, emitted total) one scrape ago
        self._emitted_rate: float | None = None

    def fetch(self) -> str:
        """One blocking scrape; returns the body (run it in a thread)."""
        request = urllib.request.Request(self.url, headers={"Accept": "text/plain"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            body: bytes = response.read(_MAX_BODY)
        return body.decode("utf-8", errors="replace")

    def update(self, text: str) -> None:
        """Take in one scrape's body (what :meth:`poll` does after fetching)."""
        now = self.clock()
        self.samples = parse_metrics(text)
        self.scrapes += 1
        self.error = None
        self._scraped_at = now
        emitted = _total(self.samples, "jetstream_events_emitted_total")
        if emitted is not None:
            if self._previous is not None and now > self._previous[0]:
                before_time, before = self._previous
                self._emitted_rate = max(emitted - before, 0.0) / (now - before_time)
            self._previous = (now, emitted)

    def fail(self, error: str) -> None:
        """Record a failed scrape; the last good numbers stay, marked stale by ``age_s``."""
        self.failures += 1
        self.error = error

    async def poll(self) -> None:
        """Scrape once, without blocking the event loop."""
        try:
            text = await asyncio.to_thread(self.fetch)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            if self.error is None:
                log.warning("server metrics %s: %s", self.url, reason)
            self.fail(str(reason))
            return
        self.update(text)

    async def run(self) -> None:
        """Scrape every ``interval`` seconds until cancelled."""
        while True:
            started = self.clock()
            await self.poll()
            await asyncio.sleep(max(self.interval - (self.clock() - started), 0.05))

    def snapshot(self) -> dict[str, Any]:
        """The server's numbers as of the last good scrape (JSON-ready).

        Keys: ``url``, ``ok`` (the last scrape succeeded), ``error``, ``scrapes``, ``age_s``
        (seconds since the last good scrape, None before one), ``subscribers``,
        ``relay_connected``, ``emitted_total``, ``emitted_rate`` (events/s between the last
        two scrapes), ``delivered_total``, ``dropped`` (by reason), ``dropped_total``,
        ``rejected_total``, ``replayed_total``, ``last_seq``, ``memory_bytes``.
        """
        samples = self.samples
        dropped = {
            labels.get("reason", ""): value
            for labels, value in samples.get("jetflow_subscribers_dropped_total", [])
        }
        relay = _total(samples, "jetflow_relay_connected")
        subscribers = _total(samples, "jetstream_subscribers_connected")
        return {
            "url": self.url,
            "ok": self.scrapes > 0 and self.error is None,
            "error": self.error,
            "scrapes": self.scrapes,
            "age_s": None if self._scraped_at is None else self.clock() - self._scraped_at,
            "subscribers": None if subscribers is None else int(subscribers),
            "relay_connected": None if relay is None else relay >= 1,
            "emitted_total": _int(_total(samples, "jetstream_events_emitted_total")),
            "emitted_rate": self._emitted_rate,
            "delivered_total": _int(_total(samples, "jetstream_events_delivered_total")),
            "dropped": {reason: int(value) for reason, value in sorted(dropped.items())},
            "dropped_total": int(sum(dropped.values())) if dropped else 0,
            "rejected_total": _int(_total(samples, "jetflow_subscribe_rejected_total")),
            "replayed_total": _int(_total(samples, "jetflow_replay_events_total")),
            "last_seq": _int(_total(samples, "consumer_last_seq")),
            "memory_bytes": _int(_total(samples, "process_resident_memory_bytes")),
        }


def _int(value: float | None) -> int | None:
    if value is None or not math.isfinite(value):
        return None
    return int(value)
