"""``capture``: raw frames into jetflow's capture format (what ``jetflow record`` writes)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import zstandard

from jetflow.codec.capture import encode_record
from jetflow.codec.frame import Frame
from jetflow.errors import SinkError
from jetflow.sinks._base import Sink


class CaptureSink(Sink[Frame | bytes]):
    """Appends each frame as ``<u32 little-endian length><frame>``; zstd for a ``.zst`` path."""

    def __init__(self, path: str | Path, *, level: int = 3) -> None:
        super().__init__()
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._raw: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise SinkError(f"{self.path}: {exc.strerror or exc}") from None
        self._out: BinaryIO = self._raw
        if self.path.suffix == ".zst":
            self._out = zstandard.ZstdCompressor(level=level).stream_writer(
                self._raw, closefd=False
            )

    def write(self, value: Frame | bytes) -> None:
        data = value.data if isinstance(value, Frame) else value
        try:
            self._out.write(encode_record(data))
        except (OSError, ValueError) as exc:
            raise SinkError(f"{self.path}: {exc}") from None
        self.stats.delivered += 1

    def close(self) -> None:
        if not self.done:
            if self._out is not self._raw:
                self._out.close()
            self._raw.close()
        super().close()


def capture(path: str | Path, *, level: int = 3) -> CaptureSink:
    """Record raw frames to a capture file that :func:`jetflow.sources.replay` reads back.

    Example:
        >>> jf.sources.firehose().subscribe(jf.sinks.capture("firehose.bin.zst"))
    """
    return CaptureSink(path, level=level)
