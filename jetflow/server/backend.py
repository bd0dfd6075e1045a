"""Where a server's events come from and where its cursor replay reads: the seam between the
``/subscribe`` server (HTTP, subscribers, hub, replay → live) and the event log.

A backend feeds committed events to the :class:`~jetflow.server.hub.Hub` (``hub.publish``
only after an event is durably in the log: that is what makes the replay → live cutover
gapless) and answers ``read(query, from_time_us, limit)`` from the same log. Two exist:

* :class:`SqliteBackend` — this process ingests the relay into a local SQLite log (or, with
  ``--follow``, tails the log another process writes); the default.
* :class:`jetflow.broker.serve.NatsBackend` — ``--store nats://...``: the events come from a
  NATS JetStream stream written by ``jetflow ingest``, shared by any number of server nodes.

The server calls, in order: ``open()`` (fail early: bad store, unreachable broker), ``start()``
once it listens, ``drain()`` when stopping (stop feeding, persist what was read), then, after
the subscribers are closed, ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from jetflow.codec.zstd import Compressor
from jetflow.errors import ConfigError
from jetflow.server.config import ServeConfig
from jetflow.server.hub import Hub
from jetflow.server.ingest import Ingest
from jetflow.server.telemetry import ServerMetrics
from jetflow.store.sqlite import EventStore, ReplayBatch, ReplayQuery

log = logging.getLogger("jetflow.server")

_FOLLOW_INTERVAL = 0.02


class EventBackend(Protocol):
    """See the module docstring."""

    @property
    def ready(self) -> bool:
        """Events are flowing (the relay or the broker is connected)."""

    @property
    def not_ready_reason(self) -> str: ...

    @property
    def upstream_connected(self) -> bool:
        """For the ``jetflow_relay_connected`` gauge."""

    async def open(self) -> None: ...

    async def start(self) -> None: ...

    async def drain(self) -> None: ...

    async def close(self) -> None: ...

    async def read(self, query: ReplayQuery, from_time_us: int, limit: int) -> ReplayBatch: ...

    def now_us(self) -> int:
        """The server's "now" for cursors (a later cursor means live tail, spec §3)."""

    def gauges(self) -> dict[str, Callable[[], float]]: ...

    def describe(self) -> dict[str, Any]: ...

    def stopped_fields(self) -> dict[str, Any]: ...

    def follower_args(self) -> list[str]:
        """Arguments for an extra fan-out process serving the same events on the same port."""


def wall_clock_us() -> int:
    return time.time_ns() // 1000


class SqliteBackend:
    """Relay → SQLite → hub in this process (or ``--follow``: tail another process's log)."""

    def __init__(
        self, config: ServeConfig, hub: Hub, compressor: Compressor, metrics: ServerMetrics
    ) -> None:
        self.config = config
        self.hub = hub
        self.compressor = compressor
        self.metrics = metrics
        self.store = EventStore(config.data_dir, read_only=config.follow)
        self._check_dictionary()
        self._newest_stored_us = self.store.newest_time_us()
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="jetflow-store-writer")
        self.readers = ThreadPoolExecutor(4, thread_name_prefix="jetflow-store-reader")
        self.ingest: Ingest | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    def _check_dictionary(self) -> None:
        stored = self.store.get_meta("zstd_dictionary_id")
        current = str(self.compressor.dictionary_id)
        if stored is None:
            if not self.store.read_only:
                self.store.set_meta("zstd_dictionary_id", current)
        elif stored != current:
            raise ConfigError(
                f"zstd-dictionary: {self.store.path} holds events compressed with dictionary ID "
                f"{stored}, but the dictionary given has ID {current}; use the same dictionary "
                "or a new --data-dir"
            )

    @property
    def ready(self) -> bool:
        return self.config.follow or (self.ingest is not None and self.ingest.relay_connected)

    @property
    def not_ready_reason(self) -> str:
        return "relay not connected"

    @property
    def upstream_connected(self) -> bool:
        return self.ready and not self.config.follow

    async def open(self) -> None:
        pass  # the store was opened (and checked) by the constructor

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.config.follow:
            self._tasks.append(loop.create_task(self._follow_store()))
            return
        self.ingest = Ingest(
            self.config.relay,
            self.store,
            self.hub,
            self.compressor,
            self.writer,
            self.metrics,
            cursor_override=self.config.relay_cursor,
            idle_timeout=self.config.liveness_ttl,
        )
        self._tasks += [
            loop.create_task(self.ingest.read_relay()),
            loop.create_task(self.ingest.commit_batches()),
            loop.create_task(self._trim_forever()),
        ]

    async def drain(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.ingest is not None:
            await self.ingest.flush()  # persist the events read and the cursor that covers them

    async def close(self) -> None:
        self.writer.shutdown(wait=True)
        self.readers.shutdown(wait=True)
        self.store.close()

    async def read(self, query: ReplayQuery, from_time_us: int, limit: int) -> ReplayBatch:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.readers, self.store.read_batch, query, from_time_us, limit
        )

    def now_us(self) -> int:
        # The ingest clock never goes below the newest stored time_us; neither may "now", or
        # after the wall clock steps back a valid cursor would get the live tail (a gap).
        return max(wall_clock_us(), self.hub.newest_time_us, self._newest_stored_us)

    def gauges(self) -> dict[str, Callable[[], float]]:
        return {
            "jetflow_store_bytes": lambda: float(self.store.size_bytes()),
            "jetflow_decode_skipped": lambda: float(
                self.ingest.stats.skipped if self.ingest else 0
            ),
        }

    def describe(self) -> dict[str, Any]:
        return {"follow": self.config.follow, "data_dir": str(self.config.data_dir)}

    def stopped_fields(self) -> dict[str, Any]:
        return {"relay_cursor": self.ingest.relay_cursor if self.ingest else None}

    def follower_args(self) -> list[str]:
        return ["--follow", "--data-dir", str(self.config.data_dir)]

    async def _trim_forever(self) -> None:
        interval = min(60.0, max(self.config.event_ttl / 10, 1.0))
        loop = asyncio.get_running_loop()
        while True:
            cutoff = wall_clock_us() - int(self.config.event_ttl * 1_000_000)
            trimmed = await loop.run_in_executor(self.writer, self.store.trim, cutoff)
            if trimmed:
                self.metrics.trimmed.inc(trimmed)
                log.info("trimmed", extra={"fields": {"events": trimmed, "before_time_us": cutoff}})
            await asyncio.sleep(interval)

    async def _follow_store(self) -> None:
        """Follower processes publish what the ingesting process commits."""
        loop = asyncio.get_running_loop()
        last = await loop.run_in_executor(self.readers, self.store.newest_time_us)
        while True:
            rows = await loop.run_in_executor(self.readers, self.store.events_after, last, 5000)
            if rows:
                last = rows[-1].time_us
                self.hub.publish(rows)
            if len(rows) < 5000:
                await asyncio.sleep(_FOLLOW_INTERVAL)


def make_backend(
    config: ServeConfig, hub: Hub, compressor: Compressor, metrics: ServerMetrics
) -> EventBackend:
    """The backend ``config`` asks for: ``--store nats://...`` or the local SQLite log."""
    if config.store is not None:
        from jetflow.broker.serve import NatsBackend

        return NatsBackend(config, hub, compressor, metrics)
    return SqliteBackend(config, hub, compressor, metrics)


def upstream_label(config: ServeConfig) -> str:
    """Where events come from, for metric labels: the relay, or the broker without credentials."""
    if config.store is not None:
        from jetflow.broker.connection import BrokerURL

        return BrokerURL.parse(config.store).display
    return config.relay


def stop_followers(followers: list[subprocess.Popen[bytes]]) -> None:
    for follower in followers:
        follower.terminate()
    for follower in followers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            follower.wait(10)
