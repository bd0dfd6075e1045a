"""The dashboard's web server: a static page, a JSON snapshot, and a websocket that pushes it.

Routes (plain HTTP/1.1 and one websocket, served by ``websockets`` on one port)::

    GET /                 the page (index.html)
    GET /app.js           its script          GET /style.css   its style sheet
    GET /snapshot.json    the current snapshot, for scripts and curl
    GET /healthz          "ok"
    WS  /ws               a snapshot as one JSON text message on connect, then every ``interval``

The page, script and style sheet ship inside the package (``jetflow/dashboard/static``); the
page loads nothing else (its Content-Security-Policy allows only its own origin). A websocket
whose ``Origin`` names another host is refused (403), so other web pages cannot read it.
One snapshot is built per tick and the same message is broadcast to every client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from http import HTTPStatus
from importlib import resources
from typing import Any, Final
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from jetflow.errors import ConfigError

log = logging.getLogger("jetflow.dashboard")

STATIC: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
CSP: Final = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
MAX_INTERVAL: Final = 1.0


def static_file(name: str) -> bytes:
    """The bytes of a file shipped in ``jetflow/dashboard/static``."""
    return resources.files("jetflow.dashboard").joinpath("static", name).read_bytes()


class DashboardServer:
    """Serve the page and push ``snapshot()`` to every websocket client every ``interval``.

    Args:
        snapshot: builds the current snapshot (a JSON-ready dict); called once per tick.
        host: address to bind (default 127.0.0.1: only this machine).
        port: port to bind; 0 picks a free one (read :attr:`port` after :meth:`start`).
        interval: seconds between pushes, more than 0 and at most 1.

    Raises:
        ConfigError: an interval out of range.

    Example:
        >>> server = DashboardServer(stats.snapshot, port=0)
        >>> await server.start()
        >>> server.url
        'http://127.0.0.1:40123/'
    """

    def __init__(
        self,
        snapshot: Callable[[], dict[str, Any]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        interval: float = 0.5,
    ) -> None:
        if not 0 < interval <= MAX_INTERVAL:
            raise ConfigError(
                f"interval: must be more than 0 and at most {MAX_INTERVAL} s, not {interval!r}"
            )
        self._snapshot = snapshot
        self.host = host
        self.requested_port = port
        self.interval = interval
        self.clients: set[ServerConnection] = set()
        self.ticks = 0
        self._files = {name: static_file(name) for name, _ in STATIC.values()}
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._latest = b""

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("the dashboard server is not started")
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """``http://host:port/``, the page's address."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def message(self) -> bytes:
        """A fresh snapshot as JSON, stamped with the tick count and the push interval."""
        snapshot = self._snapshot()
        snapshot["tick"] = self.ticks
        snapshot["interval_s"] = self.interval
        return orjson.dumps(snapshot)

    async def start(self) -> None:
        """Bind and start pushing."""
        try:
            self._server = await serve(
                self._handle,
                self.host,
                self.requested_port,
                process_request=self._route,
                compression=None,
                max_size=4096,
            )
        except OSError as exc:
            raise ConfigError(
                f"--port: cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}"
            ) from None
        self._latest = self.message()
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def stop(self) -> None:
        """Stop pushing, close every client and the listening socket."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> DashboardServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += self.interval
            await asyncio.sleep(max(next_at - loop.time(), 0.0))
            if loop.time() - next_at > self.interval:  # fell behind (a busy loop): catch up
                next_at = loop.time()
            self.ticks += 1
            try:
                self._latest = self.message()
            except Exception:  # a broken snapshot must not end the pushes
                log.exception("dashboard snapshot failed")
                continue
            if self.clients:
                broadcast(self.clients, self._latest.decode())

    # -- HTTP -------------------------------------------------------------------------------

    def _route(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.partition("?")[0]
        if path == "/ws":
            if not _same_origin(request.headers):
                return _response(HTTPStatus.FORBIDDEN, b"cross-origin websocket refused")
            return None  # the websocket handshake goes on
        if path in STATIC:
            name, content_type = STATIC[path]
            return _response(HTTPStatus.OK, self._files[name], content_type)
        if path == "/snapshot.json":
            return _response(HTTPStatus.OK, self.message(), "application/json")
        if path == "/healthz":
            return _response(HTTPStatus.OK, b"ok")
        return _response(HTTPStatus.NOT_FOUND, b"not found")

    async def _handle(self, connection: ServerConnection) -> None:
        self.clients.add(connection)
        try:
            await connection.send(self._latest.decode())
            await connection.wait_closed()
        finally:
            self.clients.discard(connection)


def _same_origin(headers: Headers) -> bool:
    origin = headers.get("Origin")
    if origin is None:  # not a browser: nothing to protect against
        return True
    return urlsplit(origin).netloc.lower() == str(headers.get("Host", "")).lower()


def _response(
    status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8"
) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", CSP),
        ]
    )
    return Response(status.value, status.phrase, headers, body)
