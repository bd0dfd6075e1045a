"""``jetflow serve --store nats://...``: a server node that fans out a shared stream.

Live: one ordered pull consumer tails the stream from its end; each batch of messages becomes
:class:`StoredEvent` s (filter fields from the subject and the JSON prefix, the text frame,
and the zstd frame: compressed here once per event for every compressed subscriber of this
node) and goes to the hub. An event reaches the hub only after the stream stored it, which is
the property the replay → live cutover relies on (:mod:`jetflow.server.replay`).

Replay: ``read(query, from_time_us, limit)`` seeks the first stream message with
``time_us ≥ from_time_us`` (binary search, :func:`jetflow.broker.reader.seek`; a read that
continues the previous one starts where that stopped), reads through an ephemeral consumer
whose server-side filter subjects come from the query's collections, applies Jetstream's
exact rules here (DIDs, prefixes, the size cap), and returns the frames concatenated, as the
SQLite log does. Fewer than ``limit`` events means the end of the stream was reached.

Every node hands out the ``time_us`` the ingest assigned, so a client can take its last
``time_us`` to any node as a cursor: no gap, no duplicate.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from jetflow.broker.connection import BrokerURL, connect, ensure_stream
from jetflow.broker.messages import stored_event
from jetflow.broker.reader import PullReader, last_event, reply_fields, seek, stream_bounds, time_of
from jetflow.broker.subjects import Subjects
from jetflow.codec.wsframe import frame_limit
from jetflow.codec.zstd import Compressor
from jetflow.server.config import ServeConfig
from jetflow.server.hub import Hub
from jetflow.server.telemetry import ServerMetrics
from jetflow.store.sqlite import KIND_CODES, ReplayBatch, ReplayQuery, StoredEvent

log = logging.getLogger("jetflow.server")

COMMIT_CODE = KIND_CODES["commit"]
CACHE_EVENTS = 50_000
_EMPTY = ReplayBatch(b"", 0, 0)


def wall_clock_us() -> int:
    import time

    return time.time_ns() // 1000


class NatsBackend:
    """See the module docstring (an :class:`~jetflow.server.backend.EventBackend`)."""

    def __init__(
        self, config: ServeConfig, hub: Hub, compressor: Compressor, metrics: ServerMetrics
    ) -> None:
        assert config.store is not None
        self.config = config
        self.url = BrokerURL.parse(config.store)
        self.subjects = Subjects(self.url.prefix)
        self.hub = hub
        self.compressor = compressor
        self.metrics = metrics
        self.client: Any = None
        self.js: Any = None
        self.newest_time_us = 0
        self.tail: PullReader | None = None
        self._task: asyncio.Task[None] | None = None
        self._cache: collections.OrderedDict[int, StoredEvent] = collections.OrderedDict()
        self._continue: collections.OrderedDict[tuple[ReplayQuery, int], int] = (
            collections.OrderedDict()
        )
        self.events_received = 0

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        tailing = self._task is not None and not self._task.done()
        return tailing and self.client is not None and self.client.is_connected

    @property
    def not_ready_reason(self) -> str:
        if self._task is not None and self._task.done():
            return f"stopped reading the stream {self.url.stream} (see the log)"
        return f"broker {self.url.display} not connected"

    @property
    def upstream_connected(self) -> bool:
        return self.ready

    async def open(self) -> None:
        self.client = await connect(self.url, name="jetflow-serve")
        self.js = self.client.jetstream()
        await ensure_stream(self.js, self.url, create=False)

    async def start(self) -> None:
        _, last = await stream_bounds(self.js, self.url)
        newest = await last_event(self.js, self.url)
        if newest is not None:
            self.newest_time_us = time_of(newest.headers, newest.data)
        self.tail = PullReader(
            self.client, self.url, [self.subjects.all_events], start_seq=last + 1, batch=2000
        )
        self._task = asyncio.get_running_loop().create_task(self._tail(self.tail))
        self._task.add_done_callback(self._tail_ended)

    def _tail_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("stopped reading the stream: %s", task.exception())

    async def _tail(self, tail: PullReader) -> None:
        subjects, compressor, hub, metrics = self.subjects, self.compressor, self.hub, self.metrics
        cache = self._cache
        async for batch in tail.batches():
            events = []
            for msg in batch:
                try:
                    event = stored_event(subjects, msg.subject, msg.data, compressor)
                except Exception as exc:  # not a jetflow event: skip it, loudly once
                    log.warning("skipped a stream message: %s", exc)
                    continue
                events.append(event)
                cache[reply_fields(msg.reply)[1]] = event
            _trim(cache)
            if events:
                self.events_received += len(events)
                self.newest_time_us = max(self.newest_time_us, events[-1].time_us)
                metrics.persisted.inc(len(events))
                hub.publish(events)
                metrics.count_emitted(events)

    async def drain(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.close()
            self.client = None

    # -- replay --------------------------------------------------------------------------------

    def now_us(self) -> int:
        # The ingest's clock, not this node's: a cursor a client got from another node is never
        # "in the future" here because of clock skew between machines.
        return max(wall_clock_us(), self.newest_time_us)

    async def read(self, query: ReplayQuery, from_time_us: int, limit: int) -> ReplayBatch:
        start = self._continue.pop((query, from_time_us), None)
        if start is None:
            start = await seek(self.js, self.url, from_time_us)
        reader = PullReader(
            self.client,
            self.url,
            self.subjects.filters(query.collections, query.prefixes),
            start_seq=start,
            batch=min(limit, 2000),
            no_wait=True,
        )
        frames: list[bytes] = []
        last_time = 0
        next_seq = start
        cap = frame_limit(query.max_payload) if query.max_payload is not None else None
        dids, collections, prefixes = query.dids, query.collections, query.prefixes
        compressed = query.compressed
        try:
            async for batch in reader.batches():
                for msg in batch:
                    seq = reply_fields(msg.reply)[1]
                    next_seq = seq + 1
                    event = self._event(seq, msg, compressed)
                    if event is None or event.time_us < from_time_us:
                        continue
                    if dids is not None and event.did not in dids:
                        continue
                    if (
                        collections is not None
                        and event.kind == COMMIT_CODE
                        and event.collection
                        and event.collection not in collections
                        and not event.collection.startswith(prefixes)
                    ):
                        continue
                    frame = event.binary if compressed else event.text
                    if cap is not None and len(frame) > cap:
                        continue
                    frames.append(frame)
                    last_time = event.time_us
                    if len(frames) >= limit:
                        break
                if len(frames) >= limit:
                    break
        finally:
            await reader.close()
        if not frames:
            return _EMPTY
        if len(frames) >= limit:
            self._continue[(query, last_time + 1)] = next_seq
            while len(self._continue) > 1000:
                self._continue.popitem(last=False)
        return ReplayBatch(b"".join(frames), len(frames), last_time)

    def _event(self, seq: int, msg: Any, compressed: bool) -> StoredEvent | None:
        event = self._cache.get(seq)
        if event is not None:
            return event
        try:
            if compressed:
                event = stored_event(self.subjects, msg.subject, msg.data, self.compressor)
                self._cache[seq] = event
                _trim(self._cache)
                return event
            # JSON subscribers need no zstd frame: skip the compression (and the cache).
            return stored_event(self.subjects, msg.subject, msg.data, _no_compression)
        except Exception as exc:
            log.warning("skipped a stream message: %s", exc)
            return None

    # -- telemetry -----------------------------------------------------------------------------

    def gauges(self) -> dict[str, Callable[[], float]]:
        return {
            "jetflow_broker_connected": lambda: float(
                bool(self.client is not None and self.client.is_connected)
            ),
            "jetflow_broker_tail_seq": lambda: float(
                self.tail.position or 0 if self.tail is not None else 0
            ),
        }

    def describe(self) -> dict[str, Any]:
        return {"store": self.url.display, "stream": self.url.stream}

    def stopped_fields(self) -> dict[str, Any]:
        return {"events_received": self.events_received}

    def follower_args(self) -> list[str]:
        assert self.config.store is not None
        return ["--follow", "--store", self.config.store]


def _trim(cache: collections.OrderedDict[int, StoredEvent]) -> None:
    while len(cache) > CACHE_EVENTS:
        cache.popitem(last=False)


def _no_compression(data: bytes) -> bytes:
    return b""
