"""``jetflow ingest``: relay → decode → ``time_us`` → the stream, by one active node at a time.

``time_us`` is every client's cursor, so it must strictly increase in stream order; two nodes
each stamping with their own clock must therefore never both be appending. The scheme:

1. **Lease** (NATS KV, bucket ``jetflow_ingest``, key = the stream name, TTL ``lease_ttl``):
   a node becomes active by *creating* the key (atomic: one winner) and renews it every
   ``lease_ttl / 3`` with a compare-and-set on its revision. A standby polls; when the active
   node stops renewing (crash, partition), the key expires and a standby creates it. A node
   restarted under the same ``node_id`` takes its own lease back at once.
2. **Epoch fence** (in the stream itself): the new active node appends an epoch message to
   ``<prefix>.ctl.writer``, and every event it publishes carries
   ``Nats-Expected-Last-Subject-Sequence`` = that epoch's sequence on that subject. From the
   moment a successor's epoch is stored, the stream refuses every message of the old node —
   even one delayed in a socket buffer after a long pause — so the two can never interleave.
   Lease expiry is only a liveness signal; safety comes from the fence, checked by the server.
3. **Takeover from the stream**: after its epoch, the node reads the stream's last event
   (everything before the epoch is the predecessor's, nothing after it is): its
   ``Jetflow-Time-Us`` floors the new clock (so ``time_us`` keeps increasing) and its
   message id ``<relay seq>:<op index>`` is where the relay is resumed — from that frame
   again, skipping its ops already stored. No event is lost or stored twice, whatever the
   time between the two nodes; the stream's duplicate window additionally drops copies of
   retried publishes.
4. **Ordered publishing** (:mod:`jetflow.broker.publisher`): a chain of
   ``Nats-Expected-Last-Sequence`` keeps stream order = ``time_us`` order across retries and
   broker restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from typing import Any

import orjson

from jetflow.broker.connection import (
    DEFAULT_DUPLICATE_WINDOW,
    DEFAULT_EVENT_TTL,
    BrokerURL,
    connect,
    ensure_stream,
    nats,
)
from jetflow.broker.messages import MSG_ID, encode, relay_position
from jetflow.broker.publisher import WRONG_LAST_SEQUENCE, Fence, Fenced, Publisher
from jetflow.broker.reader import last_event, time_of
from jetflow.broker.subjects import Subjects
from jetflow.codec.clock import MonotonicClock
from jetflow.codec.firehose import DecodeStats, FirehoseDecoder
from jetflow.errors import ConnectError, MalformedFrameError
from jetflow.events import WIRE_KINDS
from jetflow.sources.firehose import FirehoseSource

log = logging.getLogger("jetflow.ingest")

LEASE_BUCKET = "jetflow_ingest"


class LeaseLost(ConnectError):
    """Another node holds the lease now."""


class IngestNode:
    """One ``jetflow ingest`` process: standby until it holds the lease, then active."""

    def __init__(
        self,
        relay_url: str,
        url: BrokerURL,
        *,
        node_id: str | None = None,
        lease_ttl: float = 6.0,
        event_ttl: float = DEFAULT_EVENT_TTL,
        duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
        relay_cursor: int | None = None,
        idle_timeout: float = 60.0,
        max_pending: int = 2000,
    ) -> None:
        self.relay_url = relay_url
        self.url = url
        self.subjects = Subjects(url.prefix)
        self.node_id = node_id or socket.gethostname()
        self.lease_ttl = lease_ttl
        self.event_ttl = event_ttl
        self.duplicate_window = duplicate_window
        self.relay_cursor = relay_cursor
        self.idle_timeout = idle_timeout
        self.max_pending = max_pending
        self.state = "starting"
        self.stats = DecodeStats()
        self.published = 0
        self.skipped_replayed = 0
        self.terms = 0
        self.client: Any = None
        self.publisher: Publisher | None = None
        self.source: FirehoseSource | None = None
        self._revision = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and check (or create) the stream and the lease bucket; clear errors here."""
        self.client = await connect(self.url, name=f"jetflow-ingest-{self.node_id}")
        js = self.client.jetstream()
        await ensure_stream(
            js,
            self.url,
            create=True,
            max_age=self.event_ttl,
            duplicate_window=self.duplicate_window,
        )
        self.kv = await self._lease_bucket(js)

    async def _lease_bucket(self, js: Any) -> Any:
        from nats.js.api import KeyValueConfig, StorageType

        try:
            return await js.key_value(LEASE_BUCKET)
        except nats.js.errors.BucketNotFoundError:
            return await js.create_key_value(
                KeyValueConfig(
                    bucket=LEASE_BUCKET, history=1, ttl=self.lease_ttl, storage=StorageType.FILE
                )
            )

    async def run(self) -> None:
        """Standby ⇄ active until cancelled."""
        if self.client is None:
            await self.open()
        while True:
            self.state = "standby"
            await self._acquire()
            self.terms += 1
            self.state = "active"
            log.info("active", extra={"fields": {"node": self.node_id, "term": self.terms}})
            try:
                await self._active()
            except (Fenced, LeaseLost) as exc:
                log.warning(
                    "standing down", extra={"fields": {"node": self.node_id, "why": str(exc)}}
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error(
                    "active term failed",
                    extra={"fields": {"node": self.node_id, "error": repr(exc)}},
                )
                await asyncio.sleep(1.0)
            finally:
                await self._release_term()

    async def close(self) -> None:
        if self.publisher is not None:
            with contextlib.suppress(Exception):
                await self.publisher.flush(timeout=5)
        await self._release_term()
        if self.state == "active" and self._revision:
            # A clean stop hands the lease over at once instead of after its TTL.
            with contextlib.suppress(Exception):
                await self.kv.delete(self.url.stream, last=self._revision)
        self.state = "stopped"
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.close()
            self.client = None

    # -- lease -------------------------------------------------------------------------------

    def _lease_value(self) -> bytes:
        return orjson.dumps({"node": self.node_id, "since": time.time()})

    async def _acquire(self) -> None:
        key = self.url.stream
        while True:
            try:
                self._revision = await self.kv.create(key, self._lease_value())
                return
            except nats.js.errors.KeyWrongLastSequenceError:
                with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                    entry = await self.kv.get(key)
                    holder = orjson.loads(entry.value or b"{}").get("node")
                    if holder == self.node_id:  # our own lease from before a restart
                        self._revision = await self.kv.update(
                            key, self._lease_value(), last=entry.revision
                        )
                        return
            except (
                nats.errors.TimeoutError,
                nats.errors.ConnectionClosedError,
                nats.js.errors.ServiceUnavailableError,
                nats.js.errors.APIError,
            ) as exc:
                log.debug("lease: %s", exc)
            await asyncio.sleep(min(self.lease_ttl / 4, 0.5))

    async def _renew_forever(self) -> None:
        key = self.url.stream
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.lease_ttl / 3)
            try:
                self._revision = await self.kv.update(key, self._lease_value(), last=self._revision)
                renewed = time.monotonic()
            except nats.js.errors.KeyWrongLastSequenceError:
                raise LeaseLost("the lease was taken over") from None
            except Exception as exc:
                if time.monotonic() - renewed > self.lease_ttl:
                    raise LeaseLost(
                        f"could not renew the lease for {self.lease_ttl:g} s: {exc}"
                    ) from None

    async def _release_term(self) -> None:
        if self.source is not None:
            self.source = None
        if self.publisher is not None:
            publisher, self.publisher = self.publisher, None
            await publisher.close()

    # -- active ------------------------------------------------------------------------------

    async def _claim(self) -> Fence:
        """Append this node's epoch to the writer subject (fencing out the previous writer)."""
        js = self.client.jetstream()
        try:
            previous = await js.get_last_msg(self.url.stream, self.subjects.writer, direct=True)
            last = int(previous.seq)
        except nats.js.errors.NotFoundError:
            last = 0
        try:
            ack = await js.publish(
                self.subjects.writer,
                orjson.dumps({"node": self.node_id, "at": time.time()}),
                headers={"Nats-Expected-Last-Subject-Sequence": str(last)},
            )
        except nats.js.errors.APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise Fenced("another node claimed the stream at the same moment") from None
            raise
        return Fence(self.subjects.writer, int(ack.seq))

    async def _active(self) -> None:
        fence = await self._claim()
        js = self.client.jetstream()
        last = await last_event(js, self.url)
        floor, resume = 0, None
        if last is not None:
            floor = time_of(last.headers, last.data)
            resume = relay_position((last.headers or {}).get(MSG_ID))
        cursor = self.relay_cursor if resume is None else resume[0] - 1
        log.info(
            "taking over",
            extra={
                "fields": {
                    "node": self.node_id,
                    "epoch": fence.seq,
                    "time_us_floor": floor,
                    "relay_cursor": cursor,
                    "skip_through": resume,
                }
            },
        )
        publisher = Publisher(
            self.client, self.url, max_pending=self.max_pending, ordered=True, fence=fence
        )
        await publisher.start()
        self.publisher = publisher
        clock = MonotonicClock(floor=floor)
        decoder = FirehoseDecoder(clock=clock, stats=self.stats)
        source = FirehoseSource(self.relay_url, cursor=cursor, idle_timeout=self.idle_timeout)
        self.source = source
        renew = asyncio.get_running_loop().create_task(self._renew_forever())
        pump = asyncio.get_running_loop().create_task(
            self._pump(source, decoder, publisher, resume)
        )
        done, _ = await asyncio.wait({renew, pump}, return_when=asyncio.FIRST_COMPLETED)
        for task in (renew, pump):
            task.cancel()
        await asyncio.gather(renew, pump, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _pump(
        self,
        source: FirehoseSource,
        decoder: FirehoseDecoder,
        publisher: Publisher,
        resume: tuple[int, int] | None,
    ) -> None:
        subjects = self.subjects
        async for frame in source:
            if resume is not None:
                try:
                    seq = frame.seq
                except MalformedFrameError:
                    seq = None
                if seq is not None and seq < resume[0]:
                    continue
            for event in decoder.decode(frame):
                if event.kind not in WIRE_KINDS:
                    continue
                if resume is not None and event.seq is not None:
                    if (event.seq, event.op_index) <= resume:
                        self.skipped_replayed += 1
                        continue
                    resume = None
                subject, payload, headers = encode(subjects, event)
                await publisher.publish(subject, payload, headers)
                self.published += 1

    def status(self) -> dict[str, Any]:
        return {
            "node": self.node_id,
            "state": self.state,
            "terms": self.terms,
            "published": self.published,
            "acked": self.publisher.stats.as_dict() if self.publisher else None,
            "relay_connected": bool(self.source and self.source.connected),
            "decode": self.stats.as_dict(),
        }
