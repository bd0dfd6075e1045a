"""``replay``: a recorded capture (raw frames) or a JSON-lines file of Jetstream events.

jetflow's capture format is records of a 4-byte little-endian length followed by one raw
frame (the format of ``../shared/jetstream/corpus/frames.bin.zst``). Either kind of file may be
zstd-compressed (``.zst``); it is then decompressed as a stream, never whole.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Literal

import zstandard

from jetflow.codec.capture import CaptureParser
from jetflow.codec.frame import Frame
from jetflow.errors import CaptureError, ConfigError, DecodeError
from jetflow.events import Event
from jetflow.flow import Overflow
from jetflow.sources._base import Source

log = logging.getLogger("jetflow.sources.replay")

Format = Literal["auto", "capture", "jsonl"]
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 16


def open_maybe_zstd(path: Path) -> IO[bytes]:
    """Open ``path`` for reading, through a streaming zstd decoder if it is compressed."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    if handle.peek(4)[:4] == _ZSTD_MAGIC:
        reader = zstandard.ZstdDecompressor().stream_reader(handle, closefd=True)
        return io.BufferedReader(reader, buffer_size=_CHUNK)
    return handle


def detect_format(path: Path) -> Literal["capture", "jsonl"]:
    """``jsonl`` if the (decompressed) file starts with a JSON object, else ``capture``."""
    with open_maybe_zstd(path) as handle:
        head = handle.read(64).lstrip()
    return "jsonl" if head[:1] == b"{" else "capture"


class ReplaySource(Source[Frame | Event]):
    """Frames (from a capture) or events (from JSON lines) read from a file; see :func:`replay`."""

    def __init__(
        self,
        path: str | Path,
        *,
        format: Format = "auto",
        rate: float | None = None,
        buffer_size: int = 10_000,
        overflow: str | Overflow = Overflow.BLOCK,
    ) -> None:
        super().__init__(buffer_size=buffer_size, overflow=overflow)
        self.path = Path(path)
        if not self.path.exists():
            raise ConfigError(f"replay: {self.path} does not exist")
        if format not in ("auto", "capture", "jsonl"):
            raise ConfigError(f"replay format: {format!r} is not one of auto, capture, jsonl")
        self.format: Literal["capture", "jsonl"] = (
            detect_format(self.path) if format == "auto" else format
        )
        if rate is not None and rate <= 0:
            raise ConfigError(f"replay rate: must be positive, got {rate}")
        self.rate = rate
        self.bad_lines = 0

    async def _items(self) -> AsyncIterator[Frame | Event]:
        items = self._frames() if self.format == "capture" else self._events()
        if self.rate is None:
            async for item in items:
                yield item
            return
        loop = asyncio.get_running_loop()
        start = loop.time()
        count = 0
        async for item in items:
            count += 1
            ahead = start + count / self.rate - loop.time()
            if ahead > 0:
                await asyncio.sleep(ahead)
            yield item

    async def _frames(self) -> AsyncIterator[Frame | Event]:
        parser = CaptureParser(str(self.path))
        with open_maybe_zstd(self.path) as handle:
            while True:
                try:
                    chunk = handle.read(_CHUNK)
                except zstandard.ZstdError as exc:
                    raise CaptureError(
                        str(self.path), parser.offset, f"corrupt zstd data: {exc}"
                    ) from None
                if not chunk:
                    break
                for data in parser.feed(chunk):
                    yield Frame(data)
                await asyncio.sleep(0)  # let other tasks run between chunks
        parser.close()

    async def _events(self) -> AsyncIterator[Frame | Event]:
        with open_maybe_zstd(self.path) as handle:
            for number, line in enumerate(handle, start=1):
                line = line.strip()
                if not line:
                    continue
                try:
                    yield Event.from_json(line)
                except DecodeError as exc:
                    self.bad_lines += 1
                    self.stats.count_error("bad_line")
                    if self.bad_lines == 1:
                        log.warning(
                            "%s:%d: skipped, not a Jetstream event: %s", self.path, number, exc
                        )
                if number % 1000 == 0:
                    await asyncio.sleep(0)


def replay(
    path: str | Path, *, format: Format = "auto", rate: float | None = None, **options: object
) -> ReplaySource:
    """Replay a capture (frames) or a JSON-lines file (events), optionally zstd-compressed.

    A capture that ends inside a record raises :class:`~jetflow.errors.CaptureError` naming the
    file and offset, after every complete frame before it has been emitted. A JSON line that is
    not a Jetstream event is counted (``stats.errors["bad_line"]``) and skipped.

    Args:
        path: the file.
        format: ``capture``, ``jsonl`` or ``auto`` (sniff the content).
        rate: emit at most this many items per second (default: as fast as consumed).

    Example:
        >>> jf.sources.replay("capture.bin.zst").pipe(op.decode()).run()
    """
    return ReplaySource(path, format=format, rate=rate, **options)  # type: ignore[arg-type]
