"""One ``/subscribe`` connection: its options, its state, and how frames reach its socket.

Frames are built once per event (by the ingest) and written here straight to the
connection's transport, several pending frames per ``write`` call; websockets still does the
handshake, pings, reading client messages and the close handshake. Two bounds protect the
server: a per-address token bucket (spec §7), and a backlog limit: a subscriber whose unsent
bytes exceed it is closed with 1008 "consumer too slow" and nobody else notices.

States: ``hello`` (``requireHello``: nothing sent yet), ``replay`` (sending stored events;
live events matching it are kept aside), ``live``, ``closed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection

from jetflow.codec.wsframe import frame_limit
from jetflow.server.options import SubscriberOptions
from jetflow.server.ratelimit import TokenBucket
from jetflow.store.sqlite import KIND_CODES, ReplayBatch, StoredEvent

if TYPE_CHECKING:
    from jetflow.server.hub import Run

log = logging.getLogger("jetflow.server")


class State(enum.Enum):
    HELLO = "hello"
    REPLAY = "replay"
    LIVE = "live"
    CLOSED = "closed"


CONSUMER_TOO_SLOW = "consumer too slow"
WRITE_HIGH_WATER = 256 * 1024  # bytes handed to the transport before frames wait in ``pending``
# The kernel's send buffer: small when live, so that the backlog limit (which counts what
# waits in user space) bounds a slow subscriber's memory; large while replaying, where it is
# what lets one subscriber receive hundreds of thousands of events a second.
LIVE_SEND_BUFFER = 256 * 1024
REPLAY_SEND_BUFFER = 4 * 1024 * 1024
_DRAIN_POLL = 0.02
COMMIT_CODE = KIND_CODES["commit"]


class Subscriber:
    """See the module docstring."""

    def __init__(
        self,
        subscriber_id: int,
        connection: ServerConnection,
        address: str,
        options: SubscriberOptions,
        *,
        compress: bool,
        cursor: int | None,
        bucket: TokenBucket,
        max_backlog_bytes: int,
        max_replay_buffer: int,
        on_drop: Callable[[Subscriber, str], None],
    ) -> None:
        self.id = subscriber_id
        self.connection = connection
        self.transport = connection.transport
        self.address = address
        self.compress = compress
        self.cursor = cursor
        self.bucket = bucket
        self.max_backlog_bytes = max_backlog_bytes
        self.max_replay_buffer = max_replay_buffer
        self._on_drop = on_drop
        self.state = State.HELLO
        self.last_time_us = -(1 << 63)
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.replay_buffer: list[StoredEvent] = []
        self.replay_overflowed = False
        self.delivered = 0
        self.delivered_bytes = 0
        self.connected_at = time.monotonic()
        self.close_reason: str | None = None
        self._retry: asyncio.TimerHandle | None = None
        self.options = options
        self._frame_limit: int | None = None
        self.set_options(options)
        self.set_send_buffer(LIVE_SEND_BUFFER)

    def set_send_buffer(self, size: int) -> None:
        """Size the kernel's send buffer for this socket (see LIVE_SEND_BUFFER)."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    def set_options(self, options: SubscriberOptions) -> None:
        self.options = options
        self._frame_limit = (
            None if options.max_payload is None else frame_limit(options.max_payload)
        )

    def wants_collection(self, collection: str) -> bool:
        """Jetstream's collection test (spec §4); events without a collection pass."""
        options = self.options
        if options.collections is None or not collection:
            return True
        return collection in options.collections or collection.startswith(options.prefixes)

    def wants(self, event: StoredEvent) -> bool:
        """The full filter: DIDs for every kind, collections for commits only."""
        dids = self.options.dids
        if dids is not None and event.did not in dids:
            return False
        return event.kind != COMMIT_CODE or self.wants_collection(event.collection)

    # -- live --------------------------------------------------------------------------------

    def offer(self, event: StoredEvent) -> bool:
        """Take a live event the hub matched; True if something new is pending to write."""
        if event.time_us <= self.last_time_us:
            return False  # already sent (replay overlap, or offered twice by two index entries)
        if self.state is State.LIVE:
            frame = event.binary if self.compress else event.text
            limit = self._frame_limit
            if limit is not None and len(frame) > limit:
                return False  # too big: skipped, and not counted as seen (spec §4)
            self.pending.append(frame)
            self.pending_bytes += len(frame)
            self.last_time_us = event.time_us
            return True
        if self.state is State.REPLAY and not self.replay_overflowed:
            if len(self.replay_buffer) >= self.max_replay_buffer:
                # The events are in the store: forget them and let the replay read further.
                self.replay_overflowed = True
                self.replay_buffer.clear()
            else:
                self.replay_buffer.append(event)
        return False

    def offer_run(self, run: Run) -> bool:
        """Take a run of matched live events; in one step when nothing needs looking at."""
        if (
            self.state is State.LIVE
            and self._frame_limit is None
            and run.events[0].time_us > self.last_time_us
        ):
            frames, size = run.frames(self.compress)
            self.pending.extend(frames)
            self.pending_bytes += size
            self.last_time_us = run.events[-1].time_us
            return True
        touched = False
        for event in run.events:
            touched = self.offer(event) or touched
        return touched

    def flush(self) -> None:
        """Write pending frames now, as far as the rate limit and the socket allow.

        Frames go to the transport only while it holds less than ``WRITE_HIGH_WATER`` bytes;
        the rest wait in ``pending``. So when a subscriber is dropped, what was never written
        is discarded and the close frame reaches the client right after at most that much.
        """
        if self._retry is not None or not self.pending or self.state is State.CLOSED:
            return
        pending = self.pending
        buffered = self.transport.get_write_buffer_size()
        if buffered < WRITE_HIGH_WATER:
            granted = self.bucket.take(len(pending))
            if granted:
                chunk = pending if granted == len(pending) else pending[:granted]
                data = b"".join(chunk)
                self.transport.write(data)
                buffered += len(data)
                self.delivered += granted
                self.delivered_bytes += len(data)
                self.pending_bytes -= len(data)
                self.pending = pending = [] if granted == len(pending) else pending[granted:]
        if buffered + self.pending_bytes > self.max_backlog_bytes:
            self.drop(CONSUMER_TOO_SLOW)
        elif pending:
            if buffered >= WRITE_HIGH_WATER:
                delay = _DRAIN_POLL
            else:
                delay = self.bucket.wait_time(len(pending))
            self._retry = asyncio.get_running_loop().call_later(delay, self._retry_flush)

    def _retry_flush(self) -> None:
        self._retry = None
        self.flush()

    def go_live(self) -> None:
        """End of replay: queue the live events kept aside, newer than the last replayed."""
        buffered, self.replay_buffer = self.replay_buffer, []
        self.state = State.LIVE
        self.set_send_buffer(LIVE_SEND_BUFFER)
        for event in buffered:
            if self.wants(event):
                self.offer(event)
        self.flush()

    # -- replay --------------------------------------------------------------------------------

    async def send_replayed(self, batch: ReplayBatch) -> None:
        """Write stored frames, obeying the rate limit and the socket's flow control."""
        if self.state is not State.REPLAY:
            return
        wait = self.bucket.spend(batch.count)
        if wait > 0:
            await asyncio.sleep(wait)
            if self.state is not State.REPLAY:
                return
        self.transport.write(batch.data)
        self.delivered += batch.count
        self.delivered_bytes += len(batch.data)
        self.last_time_us = max(self.last_time_us, batch.last_time_us)
        await self.connection.drain()

    # -- ending --------------------------------------------------------------------------------

    def drop(self, reason: str) -> None:
        """Close with 1008 and ``reason``; the hub forgets this subscriber at once."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self.close_reason = reason
        self.pending = []
        self.pending_bytes = 0
        self.replay_buffer = []
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._on_drop(self, reason)
        asyncio.get_running_loop().create_task(self.connection.close(1008, reason))

    def mark_closed(self, reason: str) -> None:
        if self.state is not State.CLOSED:
            self.state = State.CLOSED
            self.close_reason = reason
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
