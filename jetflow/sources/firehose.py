"""``firehose``: a relay or PDS ``com.atproto.sync.subscribeRepos`` client that never gives up.

It reconnects with exponential backoff and jitter, resumes from the last ``seq`` it delivered
(dropping any frame the relay repeats), persists that ``seq`` to a checkpoint file if asked,
treats a socket that stays silent past ``idle_timeout`` as dead, and handles the relay's error
frames: ``FutureCursor`` (resume live), ``ConsumerTooSlow`` and others (reconnect), and the
``#info OutdatedCursor`` notice (logged: events between the cursor and the relay's oldest were
missed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from jetflow.codec.frame import Frame
from jetflow.errors import ConfigError, MalformedFrameError
from jetflow.flow import Overflow
from jetflow.sources._backoff import Backoff
from jetflow.sources._base import Source
from jetflow.sources._checkpoint import CheckpointFile

log = logging.getLogger("jetflow.sources.firehose")

DEFAULT_RELAY = "wss://bsky.network"
SUBSCRIBE_REPOS_PATH = "/xrpc/com.atproto.sync.subscribeRepos"


def subscribe_repos_url(url: str, cursor: int | None = None) -> str:
    """The full subscribeRepos URL for a relay or PDS given as ``wss://host`` or a full URL."""
    parts = urlsplit(url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise ConfigError(
            f"relay url: expected ws://, wss://, http:// or https://host, got {url!r}"
        )
    path = parts.path if parts.path not in ("", "/") else SUBSCRIBE_REPOS_PATH
    query = urlencode({"cursor": cursor}) if cursor is not None else ""
    return urlunsplit((scheme, parts.netloc, path, query, ""))


class _Reconnect(Exception):
    """Leave the current connection; ``immediately`` skips the backoff delay."""

    def __init__(self, reason: str, immediately: bool = False) -> None:
        super().__init__(reason)
        self.immediately = immediately


class FirehoseSource(Source[Frame]):
    """Raw firehose frames from a relay; see :func:`firehose`."""

    def __init__(
        self,
        url: str = DEFAULT_RELAY,
        cursor: int | None = None,
        checkpoint: str | Path | None = None,
        *,
        idle_timeout: float | None = 60.0,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        max_frame_bytes: int = 16 << 20,
        backoff: Backoff | None = None,
        buffer_size: int = 10_000,
        overflow: str | Overflow = Overflow.BLOCK,
    ) -> None:
        super().__init__(buffer_size=buffer_size, overflow=overflow)
        subscribe_repos_url(url)  # validate early, with a clear message
        self.url = url
        self.checkpoint = CheckpointFile(checkpoint) if checkpoint is not None else None
        saved = self.checkpoint.load() if self.checkpoint is not None else None
        self._cursor: int | None = cursor if cursor is not None else saved
        self._last_seq: int | None = None
        self.idle_timeout = idle_timeout
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.max_frame_bytes = max_frame_bytes
        self.backoff = backoff or Backoff()
        self.connected = False

    @property
    def cursor(self) -> int | None:
        """The ``seq`` the next connection resumes after (the last one delivered)."""
        return self._cursor

    def resume_after(self, seq: int) -> None:
        """Make the next connection start after ``seq`` (e.g. a pipeline's own checkpoint)."""
        self._cursor = seq

    async def _items(self) -> AsyncIterator[Frame]:
        try:
            while True:
                url = subscribe_repos_url(self.url, self._cursor)
                delivered_before = self.stats.delivered
                immediately = False
                try:
                    async with connect(
                        url,
                        compression=None,
                        max_size=self.max_frame_bytes,
                        max_queue=min(self.buffer_size, 1024),
                        open_timeout=self.open_timeout,
                        ping_interval=self.ping_interval,
                        ping_timeout=self.ping_interval,
                        user_agent_header="jetflow",
                        close_timeout=1.0,
                    ) as websocket:
                        self.connected = True
                        self.stats.connects += 1
                        log.info("connected to %s", url)
                        async for frame, seq in self._session(websocket):
                            yield frame
                            if seq is not None:
                                self._cursor = seq
                                if self.checkpoint is not None:
                                    self.checkpoint.maybe_save(seq)
                    log.info("relay closed the connection")
                except _Reconnect as reason:
                    log.warning("reconnecting: %s", reason)
                    immediately = reason.immediately
                except (OSError, TimeoutError, WebSocketException) as exc:
                    if isinstance(exc, InvalidURI | InvalidHandshake) and self.stats.connects == 0:
                        log.warning("cannot connect to %s: %s", url, exc)
                    else:
                        log.warning("connection to %s lost: %s", url, exc)
                    self.stats.count_error(type(exc).__name__)
                finally:
                    if self.connected:
                        self.stats.disconnects += 1
                    self.connected = False
                if self.stats.delivered > delivered_before:
                    self.backoff.reset()
                if not immediately:
                    await asyncio.sleep(self.backoff.next_delay())
        finally:
            if self.checkpoint is not None and self._cursor is not None:
                self.checkpoint.save(self._cursor)

    async def _session(
        self, websocket: ClientConnection
    ) -> AsyncIterator[tuple[Frame, int | None]]:
        """(frame, seq) pairs of one connection, minus error frames and repeats; watches for
        silence."""
        loop = asyncio.get_running_loop()
        last_activity = [loop.time()]
        watchdog = (
            loop.create_task(self._watch_idle(websocket, last_activity))
            if self.idle_timeout is not None
            else None
        )
        try:
            async for message in websocket:
                last_activity[0] = loop.time()
                if isinstance(message, str):
                    self.stats.count_error("text_frame")
                    continue
                frame = Frame(message)
                try:
                    frame.header  # noqa: B018 - parse once; decode() reuses it
                except MalformedFrameError:
                    yield frame, None  # the decoder counts it; the stream goes on
                    continue
                if frame.is_error:
                    self._handle_error_frame(frame)
                message_type = frame.type
                if message_type == "#info" and frame.body.get("name") == "OutdatedCursor":
                    self.stats.count_error("OutdatedCursor")
                    log.warning(
                        "relay says cursor %s is outdated: events before its oldest are lost (%s)",
                        self._cursor,
                        frame.body.get("message"),
                    )
                seq = frame.seq
                if seq is not None:
                    if self._last_seq is not None and seq <= self._last_seq:
                        self.stats.count_error("repeated_seq")
                        continue
                    self._last_seq = seq
                yield frame, seq
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def _handle_error_frame(self, frame: Frame) -> None:
        name, message = frame.error
        self.stats.count_error(name)
        if name == "FutureCursor":
            log.warning(
                "cursor %s is ahead of the relay (%s); resuming live", self._cursor, message
            )
            self._cursor = None
            raise _Reconnect("FutureCursor", immediately=True)
        raise _Reconnect(f"relay error frame {name}: {message}")

    async def _watch_idle(self, websocket: ClientConnection, last_activity: list[float]) -> None:
        assert self.idle_timeout is not None
        loop = asyncio.get_running_loop()
        while True:
            silent_for = loop.time() - last_activity[0]
            if silent_for >= self.idle_timeout:
                log.warning("no frame for %.0f s; treating the connection as dead", silent_for)
                self.stats.count_error("idle_timeout")
                websocket.transport.abort()
                return
            await asyncio.sleep(self.idle_timeout - silent_for + 0.01)


def firehose(
    url: str = DEFAULT_RELAY,
    cursor: int | None = None,
    checkpoint: str | Path | None = None,
    **options: object,
) -> FirehoseSource:
    """Raw frames from a relay or PDS, reconnecting and resuming forever.

    Args:
        url: ``wss://host`` (the subscribeRepos path is added) or a full URL.
        cursor: start after this ``seq`` (default: live, or the checkpoint's ``seq``).
        checkpoint: a file where the last delivered ``seq`` is saved (atomically, at most once
            a second, and on close) and read back on start.
        **options: ``idle_timeout``, ``open_timeout``, ``ping_interval``, ``max_frame_bytes``,
            ``backoff``, ``buffer_size``, ``overflow`` (see :class:`FirehoseSource`).

    Example:
        >>> jf.sources.firehose("wss://bsky.network").pipe(op.decode()).subscribe(print)
    """
    return FirehoseSource(url, cursor, checkpoint, **options)  # type: ignore[arg-type]
