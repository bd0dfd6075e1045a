"""``websocket_server``: serve a pipeline's output to any number of websocket clients — a
derived Jetstream.

Each item becomes one text message: an event its Jetstream JSON, a window result
``{"start_us", "end_us", "events", "late", "value"}``, bytes as they are (see
:func:`jetflow.operators.to_json`). Like ``jetflow serve``, the websocket frame is built once
per item and written straight to each client's socket; a client whose unsent bytes exceed
``max_backlog_bytes`` is closed with 1008 "consumer too slow" and nobody else slows down —
the pipeline never waits for a client. Clients may filter events as on Jetstream, with
``?wantedCollections=app.bsky.feed.post`` (repeatable, ``prefix.*`` allowed) and
``?wantedDids=did:plc:…``. A plain HTTP GET on the port answers with a short text page.

>>> posts.subscribe(jf.sinks.websocket_server("127.0.0.1:8765"))
# then: websocat ws://127.0.0.1:8765/subscribe
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from jetflow.addresses import parse_listen
from jetflow.codec.wsframe import text_frame
from jetflow.errors import ConfigError
from jetflow.events import Event
from jetflow.filtering import EventFilter
from jetflow.operators.tojson import item_json
from jetflow.sinks._base import Sink

log = logging.getLogger("jetflow.sinks.websocket_server")

CONSUMER_TOO_SLOW = "consumer too slow"
STREAM_ENDED = "stream ended"
DEFAULT_LISTEN = "127.0.0.1:8765"
_SEND_BUFFER_BYTES = 256 * 1024


class _Client:
    __slots__ = ("connection", "events", "sent", "transport")

    def __init__(self, connection: ServerConnection, events: EventFilter | None) -> None:
        self.connection = connection
        self.transport = connection.transport
        self.events = events
        self.sent = 0


class WebsocketServerSink(Sink[Any]):
    """Broadcasts every item to the connected websocket clients; see
    :func:`websocket_server`.

    Attributes:
        clients: clients connected now.
        dropped_clients: clients closed for being too slow.
        port: the bound port once started (useful with port 0).
    """

    def __init__(
        self,
        listen: str = DEFAULT_LISTEN,
        *,
        path: str = "/subscribe",
        max_backlog_bytes: int = 4 << 20,
        wire_only: bool = True,
        close_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self.address = parse_listen(listen, "listen")
        if not path.startswith("/"):
            raise ConfigError(f"path: must start with '/', got {path!r}")
        if max_backlog_bytes < 1:
            raise ConfigError(f"max_backlog_bytes: must be positive, got {max_backlog_bytes}")
        self.path = path
        self.max_backlog_bytes = max_backlog_bytes
        self.wire_only = wire_only
        self.close_timeout = close_timeout
        self._clients: list[_Client] = []
        self._filters: dict[ServerConnection, EventFilter | None] = {}
        self.dropped_clients = 0
        self.frames_sent = 0
        self._server: Server | None = None
        self._start_task: asyncio.Task[None] | None = None
        self._closing = False
        self._shutdown_task: asyncio.Task[None] | None = None
        self._connections: set[ServerConnection] = set()
        self._closers: set[asyncio.Task[None]] = set()

    @property
    def clients(self) -> int:
        return len(self._clients)

    @property
    def port(self) -> int | None:
        if self._server is None:
            return None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str | None:
        """``ws://host:port/path`` once listening."""
        port = self.port
        return None if port is None else f"ws://{self.address[0]}:{port}{self.path}"

    async def start(self) -> None:
        """Start listening (a :class:`~jetflow.pipeline.Pipeline` does it before any item)."""
        if self._server is not None:
            return
        host, port = self.address
        try:
            self._server = await serve(
                self._handle,
                host,
                port,
                process_request=self._route,
                compression=None,
                max_size=64 * 1024,
                max_queue=4,
                ping_interval=30,
                ping_timeout=30,
                close_timeout=self.close_timeout,
                server_header="jetflow",
            )
        except OSError as exc:
            raise ConfigError(
                f"listen: cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from None
        log.info("serving a derived stream on %s", self.url)

    # -- items ------------------------------------------------------------------------------

    def write(self, value: Any) -> None:
        if self._server is None and self._start_task is None:
            self._start_lazily()
        clients = self._clients
        if not clients:
            self.stats.delivered += 1
            return
        payload = item_json(value, wire_only=self.wire_only)
        if payload is None:
            return
        data = text_frame(payload)
        size = len(data)
        event = value if isinstance(value, Event) else None
        limit = self.max_backlog_bytes
        for client in clients:
            wanted = client.events
            if event is not None and wanted is not None and not wanted.wants_event(event):
                continue
            transport = client.transport
            if transport.get_write_buffer_size() + size > limit:
                self._drop(client)
                continue
            transport.write(data)
            client.sent += 1
            self.frames_sent += 1
        self.stats.delivered += 1

    def _drop(self, client: _Client) -> None:
        """Close a client that fell ``max_backlog_bytes`` behind with 1008."""
        if client in self._clients:
            self._clients = [other for other in self._clients if other is not client]
        self.dropped_clients += 1
        log.warning(
            "dropped a websocket client of the derived stream: %s (%d frames sent)",
            CONSUMER_TOO_SLOW,
            client.sent,
        )
        closer = asyncio.get_running_loop().create_task(
            client.connection.close(1008, CONSUMER_TOO_SLOW)
        )
        self._closers.add(closer)
        closer.add_done_callback(self._closers.discard)

    def _start_lazily(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._start_task = loop.create_task(self.start())

    # -- connections ------------------------------------------------------------------------

    def _route(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if "upgrade" not in request.headers.get("Connection", "").lower():
            body = (
                f"jetflow: a derived stream; connect a websocket to {self.path}"
                f" ({len(self._clients)} clients)\n"
            )
            return _response(HTTPStatus.OK, body.encode())
        if path != self.path:
            return _response(HTTPStatus.NOT_FOUND, f"not found: try {self.path}\n".encode())
        if self._closing:
            return _response(HTTPStatus.SERVICE_UNAVAILABLE, b"the stream has ended\n")
        params = parse_qs(query)
        collections = params.get("wantedCollections")
        dids = params.get("wantedDids")
        try:
            events = (
                EventFilter(collections, dids, non_commits_bypass=True)
                if collections or dids
                else None
            )
        except ConfigError as exc:
            return _response(HTTPStatus.BAD_REQUEST, f"{exc}\n".encode())
        self._filters[connection] = events
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        if self._closing:
            await connection.close(1001, STREAM_ENDED)
            return
        sock = connection.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER_BYTES)
        client = _Client(connection, self._filters.pop(connection, None))
        self._clients = [*self._clients, client]
        self._connections.add(connection)
        try:
            async for _ in connection:
                pass  # clients have nothing to say; their messages are read and ignored
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(connection)
            if client in self._clients:
                self._clients = [other for other in self._clients if other is not client]

    # -- ending ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every client with 1001 "stream ended", stop listening, then be done."""
        if self.done or self._closing:
            return
        self._closing = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            super().close()
            return
        self._shutdown_task = loop.create_task(self._shutdown())

    async def _shutdown(self) -> None:
        try:
            if self._start_task is not None:
                with contextlib.suppress(Exception):
                    await self._start_task
            clients, self._clients = self._clients, []
            closing = [client.connection.close(1001, STREAM_ENDED) for client in clients]
            with contextlib.suppress(TimeoutError):
                # Each close waits for the client's answer up to close_timeout, concurrently.
                await asyncio.wait_for(
                    asyncio.gather(*closing, return_exceptions=True),
                    self.close_timeout + 1,
                )
            for connection in list(self._connections):  # dropped or silent clients
                connection.transport.abort()
            for closer in list(self._closers):
                closer.cancel()
            if self._server is not None:
                self._server.close(close_connections=False)
                await self._server.wait_closed()
        finally:
            Sink.close(self)


def _response(status: HTTPStatus, body: bytes) -> Response:
    headers = Headers(
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return Response(status.value, status.phrase, headers, body)


def websocket_server(
    listen: str = DEFAULT_LISTEN,
    *,
    path: str = "/subscribe",
    max_backlog_bytes: int = 4 << 20,
    wire_only: bool = True,
) -> WebsocketServerSink:
    """Serve every item as a JSON text message to all connected websocket clients.

    Args:
        listen: ``HOST:PORT`` to listen on (port 0 picks a free one: read ``sink.url``).
        path: the websocket path (``/subscribe``, as Jetstream).
        max_backlog_bytes: unsent bytes after which a client is closed with 1008.
        wire_only: skip ``sync`` and ``info`` events, as Jetstream does.

    Returns:
        A sink that starts listening when its pipeline starts (or on ``await sink.start()``)
        and closes its clients with 1001 when the stream ends.

    Example:
        >>> jf.Pipeline(source, [op.decode(), op.match("record.text", contains=["cats"])],
        ...             [jf.sinks.websocket_server("127.0.0.1:8765")]).run()
    """
    return WebsocketServerSink(
        listen, path=path, max_backlog_bytes=max_backlog_bytes, wire_only=wire_only
    )
