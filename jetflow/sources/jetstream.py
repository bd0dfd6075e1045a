"""``jetstream``: a client for any Jetstream v1 server (jetflow's own or a public one).

It reconnects with backoff and jitter and resumes from the last ``time_us`` it delivered minus
a few seconds (``rewind``), dropping the events it has already delivered; so a reconnect
neither loses nor repeats events. Compressed streams are decoded with the dictionary; filters
can change on a live connection (``options_update``). Long DID lists go in the hello message,
not in the URL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from jetflow.codec.zstd import Decompressor
from jetflow.errors import ConfigError, DecodeError
from jetflow.events import Event
from jetflow.filtering import EventFilter
from jetflow.flow import Overflow
from jetflow.sources._backoff import Backoff
from jetflow.sources._base import Source

log = logging.getLogger("jetflow.sources.jetstream")

DEFAULT_JETSTREAM = "wss://jetstream2.us-east.bsky.network"
_MAX_QUERY_CHARS = 2000  # above this, filters travel in the hello message instead of the URL


def subscribe_url(url: str, query: list[tuple[str, str]]) -> str:
    """``/subscribe`` URL for a Jetstream server given as ``wss://host`` or a full URL."""
    parts = urlsplit(url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise ConfigError(
            f"jetstream url: expected ws://, wss://, http:// or https://host, got {url!r}"
        )
    path = parts.path if parts.path not in ("", "/") else "/subscribe"
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


class JetstreamSource(Source[Event]):
    """Events from a Jetstream server; see :func:`jetstream`."""

    def __init__(
        self,
        url: str = DEFAULT_JETSTREAM,
        collections: Iterable[str] | None = None,
        dids: Iterable[str] | None = None,
        cursor: int | None = None,
        compress: bool = False,
        dictionary: str | Path | bytes | None = None,
        *,
        max_message_size: int = 0,
        rewind_us: int = 3_000_000,
        idle_timeout: float | None = None,
        open_timeout: float = 10.0,
        backoff: Backoff | None = None,
        buffer_size: int = 10_000,
        overflow: str | Overflow = Overflow.BLOCK,
    ) -> None:
        super().__init__(buffer_size=buffer_size, overflow=overflow)
        subscribe_url(url, [])
        self.url = url
        self._collections, self._dids = _validated(collections, dids)
        self._start_cursor = cursor
        self.compress = compress
        self._decompressor = Decompressor(dictionary) if compress else None
        self.max_message_size = max_message_size
        self.rewind_us = rewind_us
        self.idle_timeout = idle_timeout
        self.open_timeout = open_timeout
        self.backoff = backoff or Backoff()
        self.last_time_us: int | None = None
        self._websocket: ClientConnection | None = None

    @property
    def collections(self) -> list[str]:
        return list(self._collections)

    @property
    def dids(self) -> list[str]:
        return list(self._dids)

    def _query(self, cursor: int | None, hello: bool) -> list[tuple[str, str]]:
        query: list[tuple[str, str]] = []
        if not hello:
            query += [("wantedCollections", c) for c in self._collections]
            query += [("wantedDids", d) for d in self._dids]
            if self.max_message_size:
                query.append(("maxMessageSizeBytes", str(self.max_message_size)))
        if cursor is not None:
            query.append(("cursor", str(cursor)))
        if self.compress:
            query.append(("compress", "true"))
        if hello:
            query.append(("requireHello", "true"))
        return query

    def _options_update(self) -> bytes:
        return orjson.dumps(
            {
                "type": "options_update",
                "payload": {
                    "wantedCollections": self._collections,
                    "wantedDids": self._dids,
                    "maxMessageSizeBytes": self.max_message_size,
                },
            }
        )

    async def update(
        self,
        *,
        collections: Iterable[str] | None = None,
        dids: Iterable[str] | None = None,
        max_message_size: int | None = None,
    ) -> None:
        """Replace the filters (``None`` clears one), on the live connection and for reconnects."""
        self._collections, self._dids = _validated(collections, dids)
        if max_message_size is not None:
            self.max_message_size = max_message_size
        websocket = self._websocket
        if websocket is not None:
            await websocket.send(self._options_update().decode())

    def _resume_cursor(self) -> int | None:
        if self.last_time_us is None:
            return self._start_cursor
        return max(self.last_time_us - self.rewind_us, 1)

    async def _items(self) -> AsyncIterator[Event]:
        while True:
            cursor = self._resume_cursor()
            plain_query = self._query(cursor, hello=False)
            hello = len(urlencode(plain_query)) > _MAX_QUERY_CHARS
            url = subscribe_url(self.url, self._query(cursor, hello) if hello else plain_query)
            delivered_before = self.stats.delivered
            try:
                async with connect(
                    url,
                    compression=None,
                    max_size=16 << 20,
                    max_queue=min(self.buffer_size, 1024),
                    open_timeout=self.open_timeout,
                    user_agent_header="jetflow",
                    close_timeout=1.0,
                ) as websocket:
                    self._websocket = websocket
                    self.stats.connects += 1
                    if hello:
                        await websocket.send(self._options_update().decode())
                    log.info("connected to %s", url.split("?")[0])
                    async for event in self._session(websocket):
                        yield event
                log.info("jetstream server closed the connection")
            except (OSError, TimeoutError, WebSocketException) as exc:
                log.warning("connection to %s lost: %s", self.url, exc)
                self.stats.count_error(type(exc).__name__)
            finally:
                if self._websocket is not None:
                    self.stats.disconnects += 1
                self._websocket = None
            if self.stats.delivered > delivered_before:
                self.backoff.reset()
            await asyncio.sleep(self.backoff.next_delay())

    async def _session(self, websocket: ClientConnection) -> AsyncIterator[Event]:
        decompress = self._decompressor
        while True:
            try:
                if self.idle_timeout is None:
                    message = await websocket.recv()
                else:
                    message = await asyncio.wait_for(websocket.recv(), self.idle_timeout)
            except TimeoutError:
                self.stats.count_error("idle_timeout")
                log.warning("no event for %.0f s; reconnecting", self.idle_timeout)
                return
            try:
                if isinstance(message, bytes):
                    if decompress is None:
                        raise DecodeError("binary message on an uncompressed stream")
                    message = decompress(message)
                event = Event.from_json(message)
            except DecodeError as exc:
                self.stats.count_error("bad_message")
                log.warning("skipped a message that is not a Jetstream event: %s", exc)
                continue
            last = self.last_time_us
            if last is not None and event.time_us <= last:
                self.stats.count_error("repeated_event")
                continue
            self.last_time_us = event.time_us
            yield event


def _validated(
    collections: Iterable[str] | None, dids: Iterable[str] | None
) -> tuple[list[str], list[str]]:
    EventFilter(collections, dids)  # the server's own validation: fail here, not remotely
    return list(collections or []), list(dict.fromkeys(dids or []))


def jetstream(
    url: str = DEFAULT_JETSTREAM,
    collections: Iterable[str] | None = None,
    dids: Iterable[str] | None = None,
    cursor: int | None = None,
    compress: bool = False,
    dictionary: str | Path | bytes | None = None,
    **options: Any,
) -> JetstreamSource:
    """Events from a Jetstream v1 server, reconnecting and resuming by ``time_us``.

    Args:
        url: ``wss://host`` (``/subscribe`` is added) or a full URL.
        collections: wanted NSIDs or ``prefix.*`` patterns (server-side filter).
        dids: wanted repo DIDs (server-side filter; long lists are sent in a hello message).
        cursor: a ``time_us`` to replay from (inclusive); default live.
        compress: ask for zstd frames; ``dictionary`` is then the path to the server's dictionary
            (Jetstream's v1 dictionary for Bluesky's servers).
        **options: ``max_message_size``, ``rewind_us`` (default 3 s), ``idle_timeout``,
            ``open_timeout``, ``backoff``, ``buffer_size``, ``overflow``.

    Example:
        >>> likes = jf.sources.jetstream(collections=["app.bsky.feed.like"])
    """
    return JetstreamSource(url, collections, dids, cursor, compress, dictionary, **options)
