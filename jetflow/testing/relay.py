"""A relay on 127.0.0.1 that serves a capture the way ``subscribeRepos`` does.

``cursor=N`` resumes after ``seq`` N; a cursor beyond the newest frame gets a ``FutureCursor``
error frame and a close, one older than the oldest gets an ``#info OutdatedCursor`` frame
first. Tests inject faults on demand: drop the next connection after some frames (without a
close frame), send an error frame, go silent, or publish new frames live.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

import libipld
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from jetflow.codec.frame import encode_frame, error_frame

log = logging.getLogger("jetflow.testing.relay")


@dataclass
class RelayConnection:
    """What one client asked for and what it was sent."""

    cursor: int | None
    sent: int = 0
    closed_by_fault: str | None = None


@dataclass
class _Fault:
    kind: str  # "drop", "error", "silence"
    after: int
    name: str = ""
    message: str | None = None


@dataclass
class FakeRelay:
    """Serve ``frames`` (raw firehose frames, each with a ``seq``) on 127.0.0.1.

    Args:
        frames: the initial frames, in seq order.
        port: 0 picks a free port; read ``url`` after ``start()``.
        serve_history_without_cursor: a client without a cursor gets every frame from the start
            (handy for tests); False makes it a pure live tail, as a real relay.
        frames_per_second: pace the sending (None: as fast as the client reads).
    """

    frames: list[bytes] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    serve_history_without_cursor: bool = True
    frames_per_second: float | None = None
    connections: list[RelayConnection] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.frames = list(self.frames)
        self._seqs = [_seq_of(frame) for frame in self.frames]
        self._faults: list[_Fault] = []
        self._server: Server | None = None
        self._changed = asyncio.Condition()

    @classmethod
    def from_capture(cls, path: str | Path, **options: object) -> FakeRelay:
        """A relay serving the frames of a capture file (plain or ``.zst``)."""
        from jetflow.codec.capture import CaptureParser
        from jetflow.sources.replay import open_maybe_zstd

        parser = CaptureParser(str(path))
        frames: list[bytes] = []
        with open_maybe_zstd(Path(path)) as handle:
            while chunk := handle.read(1 << 16):
                frames.extend(parser.feed(chunk))
        parser.close()
        return cls(frames, **options)  # type: ignore[arg-type]

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> FakeRelay:
        self._server = await serve(
            self._handle, self.host, self.port, compression=None, max_size=1 << 20
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeRelay:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def last_seq(self) -> int | None:
        return self._seqs[-1] if self._seqs else None

    # -- control ------------------------------------------------------------------------------

    async def publish(self, frame: bytes) -> None:
        """Append a frame; connected live clients receive it."""
        self.frames.append(frame)
        self._seqs.append(_seq_of(frame))
        async with self._changed:
            self._changed.notify_all()

    def drop_after(self, sent: int) -> None:
        """The next connection is cut (no close frame) after sending ``sent`` frames."""
        self._faults.append(_Fault("drop", sent))

    def error_after(self, sent: int, name: str, message: str | None = None) -> None:
        """The next connection gets an error frame after ``sent`` frames, then a close."""
        self._faults.append(_Fault("error", sent, name, message))

    def silence_after(self, sent: int) -> None:
        """The next connection stays open but sends nothing after ``sent`` frames."""
        self._faults.append(_Fault("silence", sent))

    # -- serving ------------------------------------------------------------------------------

    async def _handle(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        query = parse_qs(urlsplit(websocket.request.path).query)
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        connection = RelayConnection(cursor)
        self.connections.append(connection)
        fault = self._faults.pop(0) if self._faults else None
        try:
            position = await self._start_position(websocket, cursor)
            if position is None:
                return
            await self._send_from(websocket, position, connection, fault)
        except ConnectionClosed:
            pass

    async def _start_position(self, websocket: ServerConnection, cursor: int | None) -> int | None:
        if cursor is None:
            return 0 if self.serve_history_without_cursor else len(self.frames)
        newest = self.last_seq
        if newest is not None and cursor > newest:
            await websocket.send(error_frame("FutureCursor", "Cursor in the future."))
            await websocket.close()
            return None
        known = [seq for seq in self._seqs if seq is not None]
        if known and cursor < known[0] - 1:
            info = encode_frame(
                {"op": 1, "t": "#info"},
                {
                    "name": "OutdatedCursor",
                    "message": "Requested cursor exceeded limit. Possibly missing events",
                },
            )
            await websocket.send(info)
            return 0
        return bisect.bisect_right(_filled(self._seqs), cursor)

    async def _send_from(
        self,
        websocket: ServerConnection,
        position: int,
        connection: RelayConnection,
        fault: _Fault | None,
    ) -> None:
        delay = 1 / self.frames_per_second if self.frames_per_second else 0.0
        while True:
            while position < len(self.frames):
                if fault is not None and connection.sent >= fault.after:
                    await self._apply(websocket, fault, connection)
                    return
                await websocket.send(self.frames[position])
                position += 1
                connection.sent += 1
                if delay:
                    await asyncio.sleep(delay)
            if fault is not None and connection.sent >= fault.after:
                await self._apply(websocket, fault, connection)
                return
            if not await self._more_frames_or_closed(websocket, position):
                return

    async def _more_frames_or_closed(self, websocket: ServerConnection, position: int) -> bool:
        """Wait until a frame beyond ``position`` is published (True) or the client left."""

        async def published() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: position < len(self.frames))

        waiters = {
            asyncio.ensure_future(published()),
            asyncio.ensure_future(websocket.wait_closed()),
        }
        _done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return position < len(self.frames) and websocket.close_code is None

    async def _apply(
        self, websocket: ServerConnection, fault: _Fault, connection: RelayConnection
    ) -> None:
        connection.closed_by_fault = fault.kind
        if fault.kind == "drop":
            websocket.transport.abort()
        elif fault.kind == "error":
            await websocket.send(error_frame(fault.name, fault.message))
            await websocket.close()
        else:  # silence: keep the socket open until the client gives up
            await websocket.wait_closed()


def _seq_of(frame: bytes) -> int | None:
    try:
        _header, body = libipld.decode_dag_cbor_multi(frame)
    except ValueError:
        return None
    seq = body.get("seq") if isinstance(body, dict) else None
    return seq if type(seq) is int else None


def _filled(seqs: Iterable[int | None]) -> list[int]:
    """Seqs with gaps (frames without one) filled from the previous frame, for bisecting."""
    out: list[int] = []
    last = -1
    for seq in seqs:
        last = seq if seq is not None else last
        out.append(last)
    return out
