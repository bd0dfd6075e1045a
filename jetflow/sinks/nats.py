"""``nats``: publish events to a NATS JetStream stream (the scale-out log).

Each wire event (commit, identity, account) is published as its exact Jetstream JSON on
``<prefix>.evt.commit.<collection>``, ``<prefix>.evt.identity`` or ``<prefix>.evt.account``
(see :mod:`jetflow.broker.subjects`), with headers ``Nats-Msg-Id`` (the event's upstream
identity, so a second copy is dropped by the stream) and ``Jetflow-Time-Us``. The stream is
created if missing (file storage, ``max_age`` = the event TTL, a duplicate window, S2
compression) or checked if it exists.

Up to ``max_pending`` messages wait for the broker's acknowledgement; beyond that the sink
stops taking items and, through its own bounded buffer, pauses the source (see
:mod:`jetflow.flow`). While the broker is restarting or unreachable, messages wait and are
re-sent when it is back: nothing is lost, and the duplicate window drops repeats.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from jetflow.broker.connection import (
    DEFAULT_DUPLICATE_WINDOW,
    DEFAULT_EVENT_TTL,
    BrokerURL,
    as_url,
    connect,
    ensure_stream,
    require_nats,
)
from jetflow.broker.messages import encode
from jetflow.broker.publisher import Fence, Publisher
from jetflow.broker.subjects import Subjects
from jetflow.errors import JetflowError, SinkError
from jetflow.events import WIRE_KINDS, Event
from jetflow.flow import Overflow
from jetflow.sinks._base import AsyncSink

log = logging.getLogger("jetflow.sinks.nats")


class NatsSink(AsyncSink[Event]):
    """See the module docstring and :func:`nats`."""

    def __init__(
        self,
        url: str | BrokerURL = "nats://127.0.0.1:4222",
        *,
        stream: str | None = None,
        subject: str | None = None,
        create: bool = True,
        event_ttl: float = DEFAULT_EVENT_TTL,
        duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
        max_pending: int = 1000,
        ack_timeout: float = 5.0,
        ordered: bool = False,
        fence: Fence | None = None,
        client: Any = None,
        buffer_size: int = 10_000,
        overflow: str | Overflow = Overflow.BLOCK,
    ) -> None:
        require_nats()
        super().__init__(buffer_size=buffer_size, overflow=overflow)
        self.url = as_url(url, stream=stream, subject=subject)
        self.subjects = Subjects(self.url.prefix)
        self.create = create
        self.event_ttl = event_ttl
        self.duplicate_window = duplicate_window
        self.max_pending = max_pending
        self.ack_timeout = ack_timeout
        self.ordered = ordered
        self.fence = fence
        self.client = client
        self._own_client = client is None
        self.publisher: Publisher | None = None
        self._opening: asyncio.Lock | None = None

    async def open(self) -> Publisher:
        """Connect, check or create the stream, and start publishing (done by the first item,
        or call it to fail early: ConnectError / StoreError name the URL and the stream)."""
        if self.publisher is not None:
            return self.publisher
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self.publisher is None:
                if self.client is None:
                    self.client = await connect(self.url, name="jetflow-sink")
                await ensure_stream(
                    self.client.jetstream(),
                    self.url,
                    create=self.create,
                    max_age=self.event_ttl,
                    duplicate_window=self.duplicate_window,
                )
                publisher = Publisher(
                    self.client,
                    self.url,
                    max_pending=self.max_pending,
                    ack_timeout=self.ack_timeout,
                    ordered=self.ordered,
                    fence=self.fence,
                )
                await publisher.start()
                self.publisher = publisher
        return self.publisher

    async def handle(self, value: Event) -> None:
        if value.kind not in WIRE_KINDS:
            return
        publisher = self.publisher or await self.open()
        subject, payload, headers = encode(self.subjects, value)
        await publisher.publish(subject, payload, headers)

    async def settle(self) -> None:
        """Wait for the broker's acknowledgement of every event published so far."""
        if self.publisher is not None:
            await self.publisher.flush(timeout=max(self.ack_timeout * 2, 10.0))

    async def finish(self) -> None:
        try:
            if self.publisher is not None:
                try:
                    await self.publisher.flush(timeout=max(self.ack_timeout * 2, 10.0))
                except TimeoutError:
                    self.error = SinkError(
                        f"{self.publisher.pending} events not acknowledged by {self.url.display}"
                    )
                except JetflowError as exc:
                    self.error = exc
                await self.publisher.close()
        finally:
            if self._own_client and self.client is not None:
                await self.client.close()
                self.client = None


def nats(
    url: str = "nats://127.0.0.1:4222",
    *,
    stream: str | None = None,
    subject: str | None = None,
    **options: Any,
) -> NatsSink:
    """Publish each event to a NATS JetStream stream, deduplicated by upstream identity.

    Args:
        url: ``nats://[user:pass@]host:port`` (comma-separate several servers); ``?stream=``
            and ``?subject=`` may be given in the URL too.
        stream: the stream name (default ``JETFLOW``); created if missing unless
            ``create=False``.
        subject: the subject prefix (default ``jetflow``): events go to
            ``<prefix>.evt.commit.<collection>``, ``<prefix>.evt.identity``,
            ``<prefix>.evt.account``.
        **options: ``event_ttl`` (seconds the stream keeps events, default 24 h),
            ``duplicate_window`` (seconds, default 120), ``max_pending`` (unacknowledged
            messages before backpressure, default 1000), ``ack_timeout``, ``ordered`` (keep
            stream order = publish order across retries; for a single writer), ``buffer_size``,
            ``overflow``.

    Example:
        >>> events.subscribe(jf.sinks.nats("nats://127.0.0.1:4222"))
    """
    return NatsSink(url, stream=stream, subject=subject, **options)
