"""Relay → decode → ``time_us`` → encode once + compress once → store → fan-out.

Events are committed to the store in batches together with the relay cursor that covers
them (the ``seq`` of the last frame whose events are all in the batch: a low-water mark, since
frames are handled one at a time in relay order). Only after the commit are they published to
subscribers. So ``kill -9`` at any moment loses nothing (the relay is re-read from the cursor)
and never re-emits an event under a new ``time_us`` (nothing uncommitted was ever sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jetflow.codec.clock import MonotonicClock
from jetflow.codec.firehose import DecodeStats, FirehoseDecoder
from jetflow.codec.zstd import Compressor
from jetflow.errors import MalformedFrameError
from jetflow.events import WIRE_KINDS
from jetflow.server.hub import Hub
from jetflow.server.telemetry import ServerMetrics
from jetflow.sources.firehose import FirehoseSource
from jetflow.store.sqlite import EventStore, StoredEvent

log = logging.getLogger("jetflow.server")


class Ingest:
    """Reads the relay and feeds the store and the hub."""

    def __init__(
        self,
        relay_url: str,
        store: EventStore,
        hub: Hub,
        compressor: Compressor,
        writer: ThreadPoolExecutor,
        metrics: ServerMetrics,
        *,
        cursor_override: int | None = None,
        idle_timeout: float = 60.0,
        batch_interval: float = 0.05,
        batch_max: int = 1000,
        max_pending: int = 50_000,
    ) -> None:
        self.relay_url = relay_url
        self.store = store
        self.hub = hub
        self.compressor = compressor
        self.writer = writer
        self.metrics = metrics
        self.batch_interval = batch_interval
        self.batch_max = batch_max
        self.max_pending = max_pending
        self.clock = MonotonicClock(floor=store.newest_time_us())
        self.stats = DecodeStats()
        cursor = cursor_override if cursor_override is not None else store.relay_cursor(relay_url)
        self.source = FirehoseSource(relay_url, cursor=cursor, idle_timeout=idle_timeout)
        self.decoder = FirehoseDecoder(clock=self.clock, stats=self.stats)
        self._pending: list[StoredEvent] = []
        self._pending_cursor: int | None = None
        self._committed_cursor = cursor
        self._room = asyncio.Event()
        self._room.set()
        self._wakeup = asyncio.Event()
        self.committed_events = 0
        log.info("ingest starting", extra={"fields": {"relay": relay_url, "cursor": cursor}})

    @property
    def relay_connected(self) -> bool:
        return self.source.connected

    @property
    def relay_cursor(self) -> int | None:
        return self._committed_cursor

    async def read_relay(self) -> None:
        """Decode frames into the pending batch until cancelled."""
        compressor = self.compressor
        metrics = self.metrics
        async for frame in self.source:
            started = time.perf_counter()
            for event in self.decoder.decode(frame):
                if event.kind in WIRE_KINDS:
                    self._pending.append(StoredEvent.from_event(event, compressor))
                    metrics.count_event(event)
            try:
                seq = frame.seq
            except MalformedFrameError:
                seq = None
            if seq is not None:
                self._pending_cursor = seq
                metrics.last_seq.set(seq)
            metrics.processing.observe(time.perf_counter() - started)
            if len(self._pending) >= self.batch_max:
                self._wakeup.set()
            if len(self._pending) >= self.max_pending:
                self._room.clear()
                await self._room.wait()

    async def commit_batches(self) -> None:
        """Commit pending events (with their cursor) every ``batch_interval``, then publish."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.batch_interval)
            self._wakeup.clear()
            await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        cursor = self._pending_cursor
        if not batch and cursor == self._committed_cursor:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.writer, self.store.append, batch, cursor, self.relay_url)
        self._committed_cursor = cursor
        self._room.set()
        if batch:
            self.committed_events += len(batch)
            self.metrics.persisted.inc(len(batch))
            self.hub.publish(batch)
            self.metrics.count_emitted(batch)

    def stats_dict(self) -> dict[str, Any]:
        return {"decode": self.stats.as_dict(), "source": self.source.stats.as_dict()}
