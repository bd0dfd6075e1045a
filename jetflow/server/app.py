"""``jetflow serve``: a drop-in Jetstream v1 server assembled from jetflow's parts.

The server (HTTP routes, subscribers, the hub, replay → live) is the same whatever the event
log is; where events come from and where replay reads is its backend
(:mod:`jetflow.server.backend`): by default this process ingests the relay into a local
SQLite log; with ``--store nats://...`` it serves a NATS JetStream stream that ``jetflow
ingest`` writes and any number of server nodes share. Optional follower processes serve
``/subscribe`` on the same port (``SO_REUSEPORT``) from the same log, so fan-out can use more
than one core while every process hands out the same ``time_us``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
import weakref
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from jetflow.codec.zstd import Compressor
from jetflow.metrics import CONTENT_TYPE
from jetflow.server.backend import make_backend, stop_followers, upstream_label
from jetflow.server.config import ServeConfig
from jetflow.server.hub import Hub
from jetflow.server.options import (
    MAX_CLIENT_MESSAGE_BYTES,
    OptionsError,
    SubscribeRequest,
    parse_client_message,
    parse_subscribe,
)
from jetflow.server.ratelimit import RateLimiter, client_address
from jetflow.server.replay import replay_then_live
from jetflow.server.subscriber import State, Subscriber
from jetflow.server.telemetry import ServerMetrics

log = logging.getLogger("jetflow.server")

WELCOME = "Welcome to Jetstream"
SHUTDOWN_REASON = "server shutdown"
_MAX_REASON_BYTES = 123  # the websocket limit for a close reason


def _close_reason(text: str) -> str:
    encoded = text.encode()[:_MAX_REASON_BYTES]
    return encoded.decode("utf-8", errors="ignore")


class JetstreamServer:
    """See the module docstring. ``await start()``, then ``await stop()``."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.compressor = Compressor(config.zstd_dictionary)
        self.hub = Hub()
        self.limiter = RateLimiter(config.max_sub_rate)
        self.metrics = ServerMetrics(upstream_label(config))
        self.backend = make_backend(config, self.hub, self.compressor, self.metrics)
        self.connections: dict[int, Subscriber] = {}
        self._counted: dict[int, tuple[int, int]] = {}  # delivered (events, bytes) in counters
        self._requests: weakref.WeakKeyDictionary[ServerConnection, SubscribeRequest] = (
            weakref.WeakKeyDictionary()
        )
        self._next_id = 1
        self._tasks: list[asyncio.Task[Any]] = []
        self._server: Server | None = None
        self._metrics_server: Server | None = None
        self._followers: list[subprocess.Popen[bytes]] = []
        self._stopped = asyncio.Event()
        self.metrics.attach_gauges(
            **self.backend.gauges(),
            jetflow_rate_limiter_clients=lambda: float(len(self.limiter)),
        )

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Events are flowing: the relay (or the broker) is connected."""
        return self.backend.ready

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        await self.backend.open()  # a bad store or an unreachable broker fails here
        host, port = self.config.listen
        reuse_port = self.config.fanout_processes > 1 or self.config.follow
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._route,
            process_response=self._add_cors,
            compression=None,
            max_size=MAX_CLIENT_MESSAGE_BYTES,
            max_queue=16,
            write_limit=1 << 20,
            ping_interval=30,
            ping_timeout=30,
            close_timeout=5,
            reuse_port=reuse_port,
            server_header="jetflow",
        )
        if self.config.metrics_listen is not None:
            metrics_host, metrics_port = self.config.metrics_listen
            self._metrics_server = await serve(
                self._never, metrics_host, metrics_port, process_request=self._metrics_route
            )
        loop = asyncio.get_running_loop()
        await self.backend.start()
        if not self.config.follow:
            self._start_followers()
        self._tasks.append(loop.create_task(self._refresh_gauges()))
        log.info(
            "serving",
            extra={"fields": {"listen": f"{host}:{self.port}", **self.backend.describe()}},
        )

    async def stop(self) -> None:
        """Stop ingesting, commit what was read, close subscribers with 1001, close the store."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._server is not None:
            self._server.close(close_connections=False)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.backend.drain()  # stop feeding; persist what was read
        closing = []
        for subscriber in list(self.connections.values()):
            subscriber.mark_closed(SHUTDOWN_REASON)
            self.hub.remove(subscriber)
            closing.append(subscriber.connection.close(1001, SHUTDOWN_REASON))
        await asyncio.gather(*closing, return_exceptions=True)
        for server in (self._server, self._metrics_server):
            if server is not None:
                server.close()
                await server.wait_closed()
        stop_followers(self._followers)
        await self.backend.close()
        log.info("stopped", extra={"fields": self.backend.stopped_fields()})

    async def run_until_signal(self) -> None:
        """Serve until SIGINT or SIGTERM, then stop cleanly."""
        await self.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await self.stop()

    # -- HTTP routes ---------------------------------------------------------------------------

    def _route(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if path == "/subscribe":
            try:
                self._requests[connection] = parse_subscribe(query, request.headers)
            except OptionsError as exc:
                self.metrics.rejected.inc()
                return _response(HTTPStatus.BAD_REQUEST, str(exc))
            return None
        if path == "/":
            return _response(HTTPStatus.OK, WELCOME)
        if path == "/healthz":
            return _response(HTTPStatus.OK, "ok")
        if path == "/readyz":
            if self.ready:
                return _response(HTTPStatus.OK, "ready")
            return _response(
                HTTPStatus.SERVICE_UNAVAILABLE, f"not ready: {self.backend.not_ready_reason}"
            )
        return _response(HTTPStatus.NOT_FOUND, '{"message":"Not Found"}', "application/json")

    def _add_cors(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> Response:
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    def _count_delivered(self, subscriber: Subscriber) -> None:
        """Add what ``subscriber`` was sent since it was last counted (the counters stay live
        for long-lived connections without a per-write cost)."""
        events, sent_bytes = subscriber.delivered, subscriber.delivered_bytes
        counted_events, counted_bytes = self._counted.get(subscriber.id, (0, 0))
        self.metrics.delivered.inc(events - counted_events)
        self.metrics.delivered_bytes.inc(sent_bytes - counted_bytes)
        if subscriber.id in self.connections:
            self._counted[subscriber.id] = (events, sent_bytes)
        else:
            self._counted.pop(subscriber.id, None)

    def _metrics_route(self, connection: ServerConnection, request: Request) -> Response:
        if request.path.partition("?")[0] == "/metrics":
            for subscriber in list(self.connections.values()):
                self._count_delivered(subscriber)
            return _response(HTTPStatus.OK, self.metrics.registry.render().decode(), CONTENT_TYPE)
        return _response(HTTPStatus.NOT_FOUND, '{"message":"Not Found"}', "application/json")

    async def _never(self, connection: ServerConnection) -> None:
        await connection.close(1008, "no websocket here")

    # -- subscribers ---------------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        request = self._requests.pop(connection, None)
        if request is None or self._stopped.is_set():
            await connection.close(1001, SHUTDOWN_REASON)
            return
        assert connection.request is not None
        peer = connection.remote_address[0] if connection.remote_address else "unknown"
        address = client_address(peer, connection.request.headers, self.config.trusted_proxies)
        subscriber = Subscriber(
            self._next_id,
            connection,
            address,
            request.options,
            compress=request.compress,
            cursor=request.cursor,
            bucket=self.limiter.bucket(address),
            max_backlog_bytes=self.config.max_backlog_bytes,
            max_replay_buffer=100_000,
            on_drop=self._dropped,
        )
        self._next_id += 1
        self.connections[subscriber.id] = subscriber
        self.metrics.subscribers.inc()
        log.info(
            "subscriber connected",
            extra={
                "fields": {
                    "subscriber": subscriber.id,
                    "address": address,
                    "compress": request.compress,
                    "cursor": request.cursor,
                    "require_hello": request.require_hello,
                    **request.options.describe(),
                }
            },
        )
        replay: asyncio.Task[int] | None = None
        try:
            if not request.require_hello:
                replay = self._activate(subscriber)
            async for message in connection:
                if isinstance(message, bytes):
                    continue  # binary frames from clients are ignored (spec §6)
                try:
                    options = parse_client_message(message)
                except OptionsError as exc:
                    reason = _close_reason(str(exc))
                    subscriber.mark_closed(reason)
                    self.hub.remove(subscriber)
                    await connection.close(1000, reason)
                    break
                if options is None:
                    continue  # unknown message types are ignored
                if subscriber.state is State.HELLO:
                    subscriber.set_options(options)
                    replay = self._activate(subscriber)
                else:
                    self.hub.update_options(subscriber, options)
        except ConnectionClosed:
            pass
        finally:
            if replay is not None:
                replay.cancel()
            self.hub.remove(subscriber)
            self.connections.pop(subscriber.id, None)
            self.metrics.subscribers.dec()
            self._count_delivered(subscriber)
            reason = subscriber.close_reason or _describe_close(connection)
            subscriber.mark_closed(reason)
            log.info(
                "subscriber disconnected",
                extra={
                    "fields": {
                        "subscriber": subscriber.id,
                        "address": address,
                        "reason": reason,
                        "delivered": subscriber.delivered,
                        "seconds": round(time.monotonic() - subscriber.connected_at, 3),
                    }
                },
            )

    def _activate(self, subscriber: Subscriber) -> asyncio.Task[int] | None:
        """Start sending: replay from the cursor (then live), or live at once."""
        cursor = subscriber.cursor
        if cursor is not None and cursor <= self.backend.now_us():
            subscriber.state = State.REPLAY
            self.hub.add(subscriber)
            task = asyncio.get_running_loop().create_task(
                replay_then_live(subscriber, self.backend.read, cursor)
            )
            task.add_done_callback(lambda done: self._count_replay(done))
            return task
        subscriber.state = State.LIVE  # no cursor, or a future one: live tail
        self.hub.add(subscriber)
        return None

    def _count_replay(self, task: asyncio.Task[int]) -> None:
        if not task.cancelled() and task.exception() is None:
            self.metrics.replayed.inc(task.result())
        elif not task.cancelled():
            log.warning("replay failed", extra={"fields": {"error": repr(task.exception())}})

    def _dropped(self, subscriber: Subscriber, reason: str) -> None:
        self.hub.remove(subscriber)
        self.metrics.dropped.labels(reason).inc()
        log.warning(
            "subscriber dropped",
            extra={
                "fields": {
                    "subscriber": subscriber.id,
                    "address": subscriber.address,
                    "reason": reason,
                }
            },
        )

    # -- background work ---------------------------------------------------------------------

    async def _refresh_gauges(self) -> None:
        while True:
            self.metrics.relay_connected.set(1.0 if self.backend.upstream_connected else 0.0)
            await asyncio.sleep(1.0)

    def _start_followers(self) -> None:
        for index in range(1, self.config.fanout_processes):
            command = [
                sys.executable,
                "-m",
                "jetflow",
                "serve",
                *self.backend.follower_args(),
                "--listen",
                f"{self.config.listen[0]}:{self.port}",
                "--max-sub-rate",
                str(self.config.max_sub_rate),
                "--max-backlog-bytes",
                str(self.config.max_backlog_bytes),
            ]
            if self.config.metrics_listen is not None:
                host, port = self.config.metrics_listen
                command += ["--metrics-listen", f"{host}:{port + index if port else 0}"]
            else:
                command += ["--metrics-listen", "off"]
            if self.config.zstd_dictionary is not None:
                command += ["--zstd-dictionary", str(self.config.zstd_dictionary)]
            for network in self.config.trusted_proxies:
                command += ["--trusted-proxy", str(network)]
            self._followers.append(subprocess.Popen(command))


def _response(
    status: HTTPStatus, body: str, content_type: str = "text/plain; charset=utf-8"
) -> Response:
    data = body.encode()
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return Response(status.value, status.phrase, headers, data)


def _describe_close(connection: ServerConnection) -> str:
    code = connection.close_code
    if code is None or code == 1006:  # 1006: the socket closed without a close frame
        return "connection lost"
    reason = connection.close_reason
    return f"closed by client ({code}{': ' + reason if reason else ''})"
