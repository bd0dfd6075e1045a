"""``nats``: events from a NATS JetStream stream written by ``jetflow ingest`` or the nats sink.

Two ways to read (see :mod:`jetflow.broker.reader`):

* **ordered** (``durable=None``, the default): this process reads the stream itself, from
  ``start``, through an ephemeral consumer that is recreated from the last position after
  any broker trouble. ``start`` is a ``time_us`` cursor (exact: the reader seeks to the first
  event at or after it and skips anything older), ``"new"`` or ``"all"``. With
  ``checkpoint=`` the last delivered ``time_us`` is saved in a NATS KV bucket and a restarted
  worker, on any machine, resumes after it.
* **durable** (``durable="name"``): every worker naming the same durable consumer shares the
  work: the broker hands each event to one of them, and an event that is not acknowledged
  within ``ack_wait`` (the worker died) is delivered again to another. Under a
  :class:`~jetflow.pipeline.Pipeline` an event is acknowledged only after the sinks flushed
  it (at the pipeline's checkpoints: at-least-once, nothing lost to a crash); iterated
  directly, once the iteration comes back for the next one.

Collections are filtered by the broker (subjects, see :mod:`jetflow.broker.subjects`);
DIDs, and Jetstream's exact prefix rule, are applied here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import Any

from jetflow.broker.checkpoint import KvCheckpoint
from jetflow.broker.connection import BrokerURL, as_url, connect, ensure_stream, require_nats
from jetflow.broker.messages import MSG_ID, relay_position
from jetflow.broker.reader import PullReader, seek, stream_bounds
from jetflow.broker.subjects import Subjects
from jetflow.errors import ConfigError, DecodeError
from jetflow.events import Event
from jetflow.filtering import EventFilter
from jetflow.flow import Overflow
from jetflow.sources._base import Source

log = logging.getLogger("jetflow.sources.nats")

Start = int | str


class NatsSource(Source[Event]):
    """See the module docstring and :func:`nats`."""

    def __init__(
        self,
        url: str | BrokerURL = "nats://127.0.0.1:4222",
        collections: Iterable[str] | None = None,
        dids: Iterable[str] | None = None,
        start: Start = "new",
        durable: str | None = None,
        *,
        stream: str | None = None,
        subject: str | None = None,
        checkpoint: str | None = None,
        batch: int = 500,
        ack_wait: float = 30.0,
        client: Any = None,
        buffer_size: int = 10_000,
        overflow: str | Overflow = Overflow.BLOCK,
    ) -> None:
        require_nats()
        super().__init__(buffer_size=buffer_size, overflow=overflow)
        self.url = as_url(url, stream=stream, subject=subject)
        self.subjects = Subjects(self.url.prefix)
        self.event_filter = EventFilter(collections, dids, non_commits_bypass=True)
        self.filter_subjects = self.subjects.filters(
            self.event_filter.collections, self.event_filter.prefixes
        )
        if not (isinstance(start, int) or start in ("new", "all")):
            raise ConfigError(f"start: expected a time_us cursor, 'new' or 'all', got {start!r}")
        if durable is not None and checkpoint is not None:
            raise ConfigError("checkpoint: a durable consumer keeps its position in the broker")
        self.start = start
        self.durable = durable
        self.checkpoint_key = checkpoint
        self.batch = batch
        self.ack_wait = ack_wait
        self.client = client
        self.last_time_us: int | None = None
        self.reader: PullReader | None = None
        self._acknowledge_later = False
        # Durable messages handed out and not yet acknowledged, in order, with their events
        # (skipped messages are acknowledged at once: nothing will process them).
        self._unacknowledged: deque[tuple[Any, Event]] = deque()

    def acknowledge_later(self) -> bool:
        """Hold acknowledgements until :meth:`acknowledge_through`; False if this source has
        none to give (an ordered reader). The pipeline calls it before it starts reading."""
        self._acknowledge_later = self.durable is not None
        return self._acknowledge_later

    async def acknowledge_through(self, event: Event) -> bool:
        """Acknowledge every message handed out up to and including ``event``'s; False if
        ``event`` is not one waiting for its acknowledgement."""
        pending = self._unacknowledged
        if self.reader is None or not any(held is event for _, held in pending):
            return False
        while pending:
            msg, held = pending.popleft()
            await self.reader.ack(msg)
            if held is event:
                break
        return True

    def resume_after(self, time_us: int) -> None:
        """Start the next read after this ``time_us`` (a pipeline's checkpoint); a durable
        consumer's position is in the broker instead."""
        if self.durable is None:
            self.start = time_us + 1

    async def _start_seq(self, js: Any, checkpoint: KvCheckpoint | None) -> tuple[int, int | None]:
        """(first stream sequence to read, cursor to skip below)."""
        cursor: int | None = self.start if isinstance(self.start, int) else None
        if checkpoint is not None:
            saved = await asyncio.to_thread(checkpoint.load)
            if saved is not None:
                cursor = saved + 1
        if cursor is not None:
            return await seek(js, self.url, cursor), cursor
        first, last = await stream_bounds(js, self.url)
        return (first if self.start == "all" else last + 1), None

    async def _items(self) -> AsyncIterator[Event]:
        own = self.client is None
        client = (
            self.client
            if self.client is not None
            else await connect(self.url, name="jetflow-source")
        )
        checkpoint: KvCheckpoint | None = None
        try:
            js = client.jetstream()
            await ensure_stream(js, self.url, create=False)
            if self.checkpoint_key is not None:
                checkpoint = KvCheckpoint(self.url, self.checkpoint_key)
            cursor: int | None
            if self.durable is None:
                first_seq, cursor = await self._start_seq(js, checkpoint)
                reader = PullReader(
                    client, self.url, self.filter_subjects, start_seq=first_seq, batch=self.batch
                )
            else:
                cursor = self.start if isinstance(self.start, int) else None
                durable_start = await seek(js, self.url, cursor) if cursor is not None else None
                reader = PullReader(
                    client,
                    self.url,
                    self.filter_subjects,
                    start_seq=durable_start,
                    deliver="new" if self.start == "new" else "all",
                    durable=self.durable,
                    batch=self.batch,
                    ack_wait=self.ack_wait,
                )
            self.reader = reader
            self._unacknowledged.clear()
            self.stats.connects += 1
            wants = self.event_filter.wants_event
            durable = self.durable is not None
            hold = durable and self._acknowledge_later
            async for batch in reader.batches():
                for msg in batch:
                    try:
                        event = Event.from_json(msg.data)
                    except DecodeError as exc:
                        self.stats.count_error("bad_message")
                        log.warning("skipped a broker message that is not an event: %s", exc)
                        if durable:
                            await reader.ack(msg)
                        continue
                    _set_position(event, msg.headers)
                    if (cursor is not None and event.time_us < cursor) or not wants(event):
                        if durable:
                            await reader.ack(msg)
                        continue
                    if hold:  # before the yield: the consumer may stop right after this one
                        self._unacknowledged.append((msg, event))
                    yield event
                    self.last_time_us = event.time_us
                    if checkpoint is not None and checkpoint.due():
                        await asyncio.to_thread(checkpoint.save, event.time_us)
                    if durable and not hold:
                        await reader.ack(msg)
        finally:
            self._unacknowledged.clear()  # what was not acknowledged is redelivered
            if checkpoint is not None:
                with contextlib.suppress(Exception):
                    if self.last_time_us is not None:
                        await asyncio.to_thread(checkpoint.save, self.last_time_us)
                    await asyncio.to_thread(checkpoint.close)
            if own:
                with contextlib.suppress(Exception):
                    await client.close()


def _set_position(event: Event, headers: dict[str, str] | None) -> None:
    """Give the event its relay ``seq`` and op index back, from its message id."""
    if headers:
        position = relay_position(headers.get(MSG_ID))
        if position is not None:
            event.seq, event.op_index = position


def nats(
    url: str = "nats://127.0.0.1:4222",
    collections: Iterable[str] | None = None,
    dids: Iterable[str] | None = None,
    start: Start = "new",
    durable: str | None = None,
    **options: Any,
) -> NatsSource:
    """Events from a NATS JetStream stream, filtered by the broker where it can.

    Args:
        url: ``nats://[user:pass@]host:port`` (``?stream=`` and ``?subject=`` allowed).
        collections: wanted NSIDs or ``prefix.*`` patterns (Jetstream's rules; identity and
            account events pass, as on ``/subscribe``).
        dids: wanted repo DIDs.
        start: a ``time_us`` cursor (inclusive), ``"new"`` (default) or ``"all"``.
        durable: a durable consumer name: workers naming the same one share the events.
        **options: ``stream``, ``subject``, ``checkpoint`` (a KV key: save and resume the
            position), ``batch``, ``ack_wait``, ``buffer_size``, ``overflow``.

    Example:
        >>> posts = jf.sources.nats("nats://127.0.0.1:4222", collections=["app.bsky.feed.post"])
    """
    return NatsSource(url, collections, dids, start, durable, **options)
