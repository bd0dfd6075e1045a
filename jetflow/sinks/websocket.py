"""``websocket``: push each event to a remote websocket endpoint, reconnecting as needed."""

from __future__ import annotations

import asyncio
import logging

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from jetflow.errors import ConfigError
from jetflow.events import WIRE_KINDS, Event
from jetflow.flow import Overflow
from jetflow.sinks._base import AsyncSink
from jetflow.sources._backoff import Backoff

log = logging.getLogger("jetflow.sinks.websocket")


class WebsocketSink(AsyncSink[Event | bytes | str]):
    """Sends events as text frames (their JSON), ``bytes`` as binary and ``str`` as text.

    While the endpoint is unreachable, items wait in the sink's bounded buffer and the source
    is paused once it fills. An item whose send fails is retried on the next connection; one
    that was written to a connection which then broke may be lost (websockets has no acks).
    """

    def __init__(
        self,
        url: str,
        *,
        buffer_size: int = 10_000,
        overflow: str | Overflow = Overflow.BLOCK,
        backoff: Backoff | None = None,
        open_timeout: float = 10.0,
    ) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ConfigError(f"websocket sink url: expected ws:// or wss://, got {url!r}")
        super().__init__(buffer_size=buffer_size, overflow=overflow)
        self.url = url
        self.backoff = backoff or Backoff()
        self.open_timeout = open_timeout
        self.connects = 0
        self._connection: ClientConnection | None = None

    async def _connected(self) -> ClientConnection:
        while self._connection is None:
            try:
                self._connection = await connect(
                    self.url, compression=None, open_timeout=self.open_timeout
                )
                self.connects += 1
                self.backoff.reset()
                log.info("websocket sink connected to %s", self.url)
            except (OSError, TimeoutError, WebSocketException) as exc:
                self.stats.count_error(type(exc).__name__)
                delay = self.backoff.next_delay()
                log.warning(
                    "websocket sink cannot reach %s (%s); retrying in %.1f s", self.url, exc, delay
                )
                await asyncio.sleep(delay)
        return self._connection

    async def handle(self, value: Event | bytes | str) -> None:
        if isinstance(value, Event):
            if value.kind not in WIRE_KINDS:
                return
            message: bytes | str = value.json.decode("utf-8")
        else:
            message = value
        while True:
            connection = await self._connected()
            try:
                await connection.send(message)
                return
            except (OSError, WebSocketException) as exc:
                self.stats.count_error(type(exc).__name__)
                log.warning("websocket sink lost %s: %s", self.url, exc)
                self._connection = None

    async def finish(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


def websocket(
    url: str, *, buffer_size: int = 10_000, overflow: str | Overflow = Overflow.BLOCK
) -> WebsocketSink:
    """Push each event's JSON to ``url`` over a websocket, reconnecting with backoff.

    Example:
        >>> events.subscribe(jf.sinks.websocket("ws://127.0.0.1:9000/ingest"))
    """
    return WebsocketSink(url, buffer_size=buffer_size, overflow=overflow)
