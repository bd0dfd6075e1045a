"""Reading a stream: seek by ``time_us``, and pull consumers that resume by themselves.

**Seek.** ``time_us`` strictly increases in stream order (the ingest guarantees it), so the
first message at or after a cursor is found by binary search over stream sequences with
direct gets (about 30 for a day of the firehose): exact, and independent of the broker's
clock, which only approximates ``time_us`` (an event is stored a little after its ``time_us``
was assigned, or much later if it waited out a broker outage in the ingest's buffer).

**Ordered reading** (``durable=None``): an ephemeral pull consumer without acks, starting at
an explicit stream sequence. The reader tracks the last stream sequence it delivered and the
consumer's delivery count; on a gap, a silent consumer (no message and no heartbeat), a
deleted consumer or a broker restart it creates a new consumer from the next sequence. Each
incarnation gets its own inbox, so nothing from an old one can arrive out of order.

**Durable reading** (``durable="name"``): a durable pull consumer with explicit acks, shared
by every worker that names it: the broker hands each message to one of them and redelivers
what is not acknowledged within ``ack_wait``. Its position lives in the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson

from jetflow.broker.connection import BrokerURL, nats
from jetflow.broker.messages import TIME_US, did_and_time
from jetflow.broker.subjects import Subjects
from jetflow.errors import ConnectError, StoreError

log = logging.getLogger("jetflow.broker")

STATUS = "Status"


def time_of(headers: dict[str, str] | None, data: bytes) -> int:
    """A message's ``time_us``: from its header, else from the JSON."""
    if headers:
        value = headers.get(TIME_US)
        if value is not None:
            return int(value)
    return did_and_time(data)[1]


def reply_fields(reply: str) -> tuple[str, int, int, int]:
    """(consumer, stream seq, consumer seq, pending) from a JetStream ack subject."""
    tokens = reply.split(".")
    offset = 2 if len(tokens) == 9 else 4
    return (
        tokens[offset + 1],
        int(tokens[offset + 3]),
        int(tokens[offset + 4]),
        int(tokens[offset + 6]),
    )


async def stream_bounds(js: Any, url: BrokerURL) -> tuple[int, int]:
    """(first, last) stream sequence; (1, 0) when empty."""
    try:
        info = await js.stream_info(url.stream)
    except nats.js.errors.NotFoundError:
        raise StoreError(f"NATS stream {url.stream!r} does not exist on {url.display}") from None
    return int(info.state.first_seq or 1), int(info.state.last_seq or 0)


async def _first_from(js: Any, url: BrokerURL, seq: int, subject: str) -> Any | None:
    try:
        return await js.get_msg(url.stream, seq=seq, subject=subject, next=True, direct=True)
    except nats.js.errors.NotFoundError:
        return None


async def seek(js: Any, url: BrokerURL, time_us: int, low: int | None = None) -> int:
    """The stream sequence to start at so the first event delivered has ``time_us`` ≥ the
    cursor: the first such event's sequence, or one past the end if there is none."""
    subject = Subjects(url.prefix).all_events
    first, last = await stream_bounds(js, url)
    lo = max(first, low or first)
    hi = last + 1
    while lo < hi:
        mid = (lo + hi) // 2
        msg = await _first_from(js, url, mid, subject)
        if msg is None:
            hi = mid
            continue
        if time_of(msg.headers, msg.data) >= time_us:
            hi = mid
        else:
            lo = int(msg.seq) + 1
    return lo


async def last_event(js: Any, url: BrokerURL) -> Any | None:
    """The newest event message of the stream, or None."""
    try:
        return await js.get_last_msg(url.stream, Subjects(url.prefix).all_events, direct=True)
    except nats.js.errors.NotFoundError:
        return None


class PullReader:
    """Batches of messages from a pull consumer (see the module docstring).

    Args:
        client: a connected nats-py client.
        url: the broker and stream.
        filters: filter subjects (see :meth:`Subjects.filters`).
        start_seq: first stream sequence to deliver (ordered reading); None with
            ``deliver="new"`` starts after the current end.
        durable: the durable consumer's name (shared work, explicit acks).
        batch: most messages per pull request.
        no_wait: stop once nothing more is available (a bounded read) instead of waiting.
    """

    def __init__(
        self,
        client: Any,
        url: BrokerURL,
        filters: Sequence[str],
        *,
        start_seq: int | None = None,
        deliver: str = "all",
        durable: str | None = None,
        batch: int = 1000,
        heartbeat: float = 1.0,
        no_wait: bool = False,
        ack_wait: float = 30.0,
        max_ack_pending: int = 10_000,
    ) -> None:
        self.client = client
        self.js = client.jetstream()
        self.url = url
        self.filters = list(filters)
        self.durable = durable
        self.deliver = deliver
        self.batch = batch
        self.heartbeat = heartbeat
        self.no_wait = no_wait
        self.ack_wait = ack_wait
        self.max_ack_pending = max_ack_pending
        self.position = (start_seq - 1) if start_seq is not None else None  # last delivered
        self.pending: int | None = None  # messages left after the last one delivered
        self.recreated = 0
        self._consumer: str | None = None
        self._subscription: Any = None
        self._inbox = ""
        self._consumer_seq = 0
        self._outstanding = 0

    # -- consumer lifecycle -----------------------------------------------------------------

    def _config(self) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        many = len(self.filters) > 1
        config = ConsumerConfig(
            filter_subject=None if many else self.filters[0],
            filter_subjects=self.filters if many else None,
        )
        if self.durable is not None:
            config.durable_name = self.durable
            config.ack_policy = AckPolicy.EXPLICIT
            config.ack_wait = self.ack_wait
            config.max_ack_pending = self.max_ack_pending
            config.deliver_policy = (
                DeliverPolicy.NEW if self.deliver == "new" else DeliverPolicy.ALL
            )
            if self.position is not None:
                config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
                config.opt_start_seq = self.position + 1
        else:
            config.ack_policy = AckPolicy.NONE
            config.inactive_threshold = 30.0
            config.mem_storage = True
            config.num_replicas = 1
            config.max_deliver = 1
            if self.position is None:
                config.deliver_policy = (
                    DeliverPolicy.NEW if self.deliver == "new" else DeliverPolicy.ALL
                )
            else:
                config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
                config.opt_start_seq = self.position + 1
        return config

    async def _open(self) -> None:
        await self._close_consumer()
        config = self._config()
        try:
            info = await self.js.add_consumer(self.url.stream, config=config)
        except nats.js.errors.NotFoundError:
            raise StoreError(
                f"NATS stream {self.url.stream!r} does not exist on {self.url.display}"
            ) from None
        except nats.js.errors.BadRequestError as exc:
            if self.durable is None:
                raise
            # A durable that exists with other settings: use it as it is.
            log.warning(
                "durable consumer %s exists with other settings (%s); using it", self.durable, exc
            )
            info = await self.js.consumer_info(self.url.stream, self.durable)
        self._consumer = info.name
        self._consumer_seq = 0
        self._outstanding = 0
        self._inbox = self.client.new_inbox()
        self._subscription = await self.client.subscribe(
            self._inbox, pending_msgs_limit=4 * self.batch + 1000, pending_bytes_limit=256 << 20
        )

    async def _close_consumer(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None
        if self._consumer is not None and self.durable is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.js.delete_consumer(self.url.stream, self._consumer), 1.0
                )
        self._consumer = None

    async def close(self) -> None:
        await self._close_consumer()

    async def _request(self) -> None:
        request: dict[str, Any] = {"batch": self.batch}
        if self.no_wait:
            request["no_wait"] = True
        else:
            request["expires"] = int(self.heartbeat * 10 * 1e9)
            request["idle_heartbeat"] = int(self.heartbeat * 1e9)
        await self.client.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{self.url.stream}.{self._consumer}",
            orjson.dumps(request),
            reply=self._inbox,
        )
        self._outstanding = self.batch

    # -- reading ------------------------------------------------------------------------------

    async def batches(self) -> AsyncIterator[list[Any]]:
        """Messages in stream order, as many per batch as have arrived (``no_wait``: until the
        end of the stream at the time of reading)."""
        try:
            while True:
                try:
                    async for batch in self._incarnation():
                        yield batch
                    return  # no_wait: reached the end
                except _Restart as reason:
                    self.recreated += 1
                    log.info("broker %s: new consumer (%s)", self.url.display, reason)
                    await asyncio.sleep(0.05 if self.recreated < 3 else 0.5)
        finally:
            await self._close_consumer()

    async def _incarnation(self) -> AsyncIterator[list[Any]]:
        while not self.client.is_connected:
            await asyncio.sleep(0.05)
        try:
            await self._open()
        except (
            nats.errors.TimeoutError,
            nats.js.errors.ServiceUnavailableError,
            nats.errors.ConnectionClosedError,
        ) as exc:
            raise _Restart(f"cannot create consumer: {exc or type(exc).__name__}") from None
        await self._request()
        assert self._subscription is not None
        queue: asyncio.Queue[Any] = self._subscription._pending_queue
        subscription = self._subscription
        silent_after = self.heartbeat * 3 + 1.0
        ordered = self.durable is None
        while True:
            try:
                msg = queue.get_nowait()
            except asyncio.QueueEmpty:
                try:
                    msg = await asyncio.wait_for(queue.get(), silent_after)
                except TimeoutError:
                    if self.no_wait and self.client.is_connected:
                        raise _Restart("no answer to a bounded read") from None
                    raise _Restart("no message and no heartbeat") from None
            batch: list[Any] = []
            while True:
                subscription._pending_size -= len(msg.data)
                headers = msg.headers
                status = headers.get(STATUS) if headers else None
                if status is not None:
                    if status == "100":
                        pass  # heartbeat
                    elif status == "404" or status == "408":
                        self._outstanding = 0
                        if self.no_wait:
                            if batch:
                                yield batch
                            self.pending = 0
                            return
                        await self._request()
                    else:  # 409: consumer deleted, leadership change, ...
                        if batch:
                            yield batch
                        raise _Restart(f"status {status} {headers.get('Description', '')}")
                else:
                    _, stream_seq, consumer_seq, pending = reply_fields(msg.reply)
                    if ordered and consumer_seq != self._consumer_seq + 1:
                        if batch:
                            yield batch
                        raise _Restart(f"gap: delivery {consumer_seq} after {self._consumer_seq}")
                    self._consumer_seq = consumer_seq
                    self.position = stream_seq
                    self.pending = pending
                    batch.append(msg)
                    self._outstanding -= 1
                    if self._outstanding <= 0:
                        await self._request()
                    if self.no_wait and pending == 0:
                        yield batch
                        return
                if len(batch) >= self.batch:
                    break
                try:
                    msg = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
            if batch:
                yield batch

    async def ack(self, msg: Any) -> None:
        """Acknowledge a message of a durable consumer."""
        if msg.reply:
            with contextlib.suppress(Exception):
                await self.client.publish(msg.reply, b"+ACK")


class _Restart(ConnectError):
    """The consumer must be created again from the last delivered position."""
