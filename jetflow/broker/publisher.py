"""Pipelined publishing to a JetStream stream, with a bound on unacknowledged messages.

Up to ``max_pending`` messages are in flight; ``publish()`` waits for room beyond that, which
is the backpressure a sink hands on to its source. Every message carries its ``Nats-Msg-Id``,
so a message re-sent after a lost ack, a timeout or a reconnect is stored once.

**Ordered mode** (one writer per stream, as the ingest is) keeps the stream in exactly the
order of ``publish()`` calls even across reconnects and retries: each message carries
``Nats-Expected-Last-Sequence`` = the sequence its predecessor will get, so once one message
is lost every later one is refused rather than stored ahead of it. On any failure (a refusal,
a timeout, a disconnect) the publisher stops, lets the messages in flight settle, reads the
stream's last message to learn which of its messages landed (they form a prefix, by the same
rule), and re-sends the rest in order.

**Fencing** adds ``Nats-Expected-Last-Subject-Sequence`` on the writer subject
(``<prefix>.ctl.writer``): the stream refuses the message as soon as another node has
published a newer epoch there, so a writer that lost its lease cannot interleave a single
event with its successor's. The check is made by the server, atomically with the append.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from jetflow.broker.connection import BrokerURL, nats
from jetflow.broker.messages import (
    EXPECTED_LAST_SEQ,
    EXPECTED_SUBJECT,
    EXPECTED_SUBJECT_SEQ,
    MSG_ID,
)
from jetflow.broker.subjects import Subjects
from jetflow.errors import SinkError

log = logging.getLogger("jetflow.broker")

WRONG_LAST_SEQUENCE = 10071


class Fenced(SinkError):
    """Another writer claimed the stream (a newer epoch on the writer subject)."""


@dataclass(frozen=True)
class Fence:
    """This writer's epoch: the stream sequence of its message on ``subject``."""

    subject: str
    seq: int


@dataclass(slots=True)
class _Outgoing:
    subject: str
    payload: bytes
    headers: dict[str, str]
    token: int = 0
    deadline: float = 0.0
    acked: bool = False


class PublisherStats:
    __slots__ = ("acked", "duplicates", "errors", "resent", "resyncs")

    def __init__(self) -> None:
        self.acked = 0
        self.duplicates = 0
        self.resent = 0
        self.resyncs = 0
        self.errors: dict[str, int] = {}

    def count_error(self, name: str) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "acked": self.acked,
            "duplicates": self.duplicates,
            "resent": self.resent,
            "resyncs": self.resyncs,
            "errors": dict(self.errors),
        }


class Publisher:
    """See the module docstring. ``await start()``, ``publish()`` …, ``await close()``."""

    def __init__(
        self,
        client: Any,
        url: BrokerURL,
        *,
        max_pending: int = 1000,
        ack_timeout: float = 5.0,
        ordered: bool = False,
        fence: Fence | None = None,
    ) -> None:
        self.client = client
        self.js = client.jetstream()
        self.url = url
        self.subjects = Subjects(url.prefix)
        self.max_pending = max_pending
        self.ack_timeout = ack_timeout
        self.ordered = ordered or fence is not None
        self.fence = fence
        self.stats = PublisherStats()
        self.last_seq = 0
        self._unacked: collections.deque[_Outgoing] = collections.deque()
        self._inflight: dict[int, _Outgoing] = {}
        self._tokens = itertools.count(1)
        self._next_expected = 0
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._trouble = asyncio.Event()
        self._recovering = False
        self._fatal: BaseException | None = None
        self._inbox = ""
        self._subscription: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._raw = _raw_publisher(client)

    @property
    def pending(self) -> int:
        return len(self._unacked)

    async def start(self) -> None:
        self._inbox = self.client.new_inbox()
        self._subscription = await self.client.subscribe(self._inbox + ".*", cb=self._on_ack)
        if self.ordered:
            self._next_expected = await self._stream_last_seq()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._recover_forever()), loop.create_task(self._watch())]

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        """Queue one message; waits while ``max_pending`` are unacknowledged."""
        while True:
            if self._fatal is not None:
                raise self._fatal
            if not self._recovering and len(self._unacked) < self.max_pending:
                break
            self._room.clear()
            await self._room.wait()
        entry = _Outgoing(subject, payload, headers)
        self._unacked.append(entry)
        self._idle.clear()
        await self._send(entry)

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every message published so far is acknowledged."""
        async with asyncio.timeout(timeout):
            while self._unacked or self._recovering:
                if self._fatal is not None:
                    raise self._fatal
                self._idle.clear()
                await self._idle.wait()
        if self._fatal is not None:
            raise self._fatal

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
        self._wake()

    # -- sending ------------------------------------------------------------------------------

    async def _send(self, entry: _Outgoing) -> None:
        headers = entry.headers
        if self.ordered:
            headers = {**headers, EXPECTED_LAST_SEQ: str(self._next_expected)}
            self._next_expected += 1
            if self.fence is not None:
                headers[EXPECTED_SUBJECT_SEQ] = str(self.fence.seq)
                headers[EXPECTED_SUBJECT] = self.fence.subject
        token = next(self._tokens)
        entry.token = token
        entry.deadline = time.monotonic() + self.ack_timeout
        self._inflight[token] = entry
        try:
            if self._raw is not None:
                await self._raw(entry.subject, f"{self._inbox}.{token}", headers, entry.payload)
            else:
                await self.client.publish(
                    entry.subject, entry.payload, reply=f"{self._inbox}.{token}", headers=headers
                )
        except Exception as exc:  # closed / buffer full while disconnected: recover later
            self.stats.count_error(type(exc).__name__)
            self._inflight.pop(token, None)
            self._fail()

    async def _on_ack(self, msg: Any) -> None:
        try:
            token = int(msg.subject.rsplit(".", 1)[1])
        except ValueError:
            return
        entry = self._inflight.pop(token, None)
        if entry is None:
            return  # an answer to a message re-sent since
        if not msg.data:  # a status only: 503 no responders (JetStream not ready)
            self.stats.count_error("no_responders")
            self._retry(entry)
            return
        try:
            answer = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            self.stats.count_error("bad_ack")
            self._retry(entry)
            return
        error = answer.get("error")
        if error is not None:
            code = error.get("err_code")
            self.stats.count_error(f"api_{code}")
            if code == WRONG_LAST_SEQUENCE or error.get("code") == 503:
                self._retry(entry)
            else:  # cannot ever be stored (too large, ...): count it and go on
                log.error(
                    "broker refused a message on %s: %s", entry.subject, error.get("description")
                )
                entry.acked = True
                self._settle()
            return
        seq = answer.get("seq", 0)
        if answer.get("duplicate"):
            self.stats.duplicates += 1
        elif seq > self.last_seq:
            self.last_seq = seq
        self.stats.acked += 1
        entry.acked = True
        self._settle()

    def _retry(self, entry: _Outgoing) -> None:
        del entry  # still unacknowledged: the recovery re-sends it
        self._fail()

    def _fail(self) -> None:
        self._recovering = True  # no new message goes out until the recovery is done
        self._trouble.set()

    def _settle(self) -> None:
        unacked = self._unacked
        while unacked and unacked[0].acked:
            unacked.popleft()
        if not self._recovering and len(unacked) < self.max_pending:
            self._room.set()
        if not unacked:
            self._idle.set()

    def _wake(self) -> None:
        self._room.set()
        self._idle.set()

    # -- recovery -----------------------------------------------------------------------------

    async def _watch(self) -> None:
        """Notice acknowledgements that do not come."""
        while True:
            await asyncio.sleep(min(0.25, self.ack_timeout / 4))
            now = time.monotonic()
            if any(entry.deadline < now for entry in self._inflight.values()):
                self.stats.count_error("ack_timeout")
                self._fail()

    async def _recover_forever(self) -> None:
        while True:
            await self._trouble.wait()
            self._recovering = True
            try:
                await self._recover()
            except Fenced as exc:
                self._fatal = exc
                self._wake()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker is still away: try again shortly
                self.stats.count_error(type(exc).__name__)
                log.warning("broker %s: recovery failed (%s); retrying", self.url.display, exc)
                await asyncio.sleep(0.5)
                self._fail()
                continue
            if not self._trouble.is_set():
                self._recovering = False
            self._settle()

    async def _recover(self) -> None:
        while not self.client.is_connected:
            await asyncio.sleep(0.05)
        settle_by = time.monotonic() + self.ack_timeout
        while self._inflight and time.monotonic() < settle_by and self.client.is_connected:
            await asyncio.sleep(0.01)
        self._trouble.clear()
        self._inflight.clear()  # answers still on their way are ignored from here on
        self.stats.resyncs += 1
        if self.ordered:
            if self.fence is not None and not await self._fence_holds():
                raise Fenced(
                    f"stream {self.url.stream!r} on {self.url.display} has a newer writer; "
                    "this one stops"
                )
            landed = await self._last_message_id()
            if landed is not None:
                for index in range(len(self._unacked) - 1, -1, -1):
                    if self._unacked[index].headers.get(MSG_ID) == landed:
                        for _ in range(index + 1):
                            self._unacked.popleft()
                        break
            self._next_expected = await self._stream_last_seq()
        resend = [entry for entry in self._unacked if not entry.acked]
        log.info("broker %s: re-sending %d unacknowledged messages", self.url.display, len(resend))
        for entry in resend:
            self.stats.resent += 1
            await self._send(entry)
            if self._trouble.is_set():
                break

    async def _stream_last_seq(self) -> int:
        info = await self.js.stream_info(self.url.stream)
        last: int = info.state.last_seq
        return last

    async def _last_message_id(self) -> str | None:
        try:
            msg = await self.js.get_last_msg(self.url.stream, self.subjects.all_events, direct=True)
        except nats.js.errors.NotFoundError:
            return None
        headers = msg.headers or {}
        value = headers.get(MSG_ID)
        return str(value) if value is not None else None

    async def _fence_holds(self) -> bool:
        assert self.fence is not None
        try:
            msg = await self.js.get_last_msg(self.url.stream, self.fence.subject, direct=True)
        except nats.js.errors.NotFoundError:
            return False
        return bool(msg.seq == self.fence.seq)


RawPublish = Callable[[str, str, dict[str, str], bytes], Awaitable[None]]


def _raw_publisher(client: Any) -> RawPublish | None:
    """A faster ``HPUB`` for nats-py: the command is built in one go from values this module
    made itself (subjects, tokens and header values with no line breaks), skipping nats-py's
    per-header validation, which costs more than everything else per message. Falls back to
    ``client.publish`` when nats-py's internals are not the ones this was written against."""
    send = getattr(client, "_send_command", None)
    flush = getattr(client, "_flush_pending", None)
    if send is None or flush is None or not hasattr(client, "_flush_queue"):
        return None
    from nats import errors

    async def publish(subject: str, reply: str, headers: dict[str, str], payload: bytes) -> None:
        if client.is_closed:
            raise errors.ConnectionClosedError
        if not client.is_connected and (
            client._max_pending_size <= 0
            or len(payload) + client._pending_data_size > client._max_pending_size
        ):
            raise errors.OutboundBufferLimitError
        block = (
            "NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        ).encode()
        size = len(block)
        await send(
            b"HPUB %s %s %d %d\r\n%s%s\r\n"
            % (subject.encode(), reply.encode(), size, size + len(payload), block, payload)
        )
        queue = client._flush_queue
        if queue is not None and queue.empty():
            await flush()

    return publish
