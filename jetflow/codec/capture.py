"""jetflow's capture format: records of a 4-byte little-endian length plus one raw frame.

It is the format of ``../shared/jetstream/corpus/frames.bin.zst`` (before zstd). The reader is
sans-I/O: feed it bytes as they arrive and it yields whole frames with their offsets.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from jetflow.errors import CaptureError

_LENGTH = struct.Struct("<I")
MAX_FRAME_BYTES = 64 << 20


def encode_record(frame: bytes) -> bytes:
    """One capture record: the frame's length (little-endian u32) and the frame."""
    return _LENGTH.pack(len(frame)) + frame


class CaptureParser:
    """Incremental parser: ``feed()`` bytes, get frames; ``close()`` checks nothing is left over."""

    def __init__(self, name: str = "<capture>") -> None:
        self.name = name
        self._buffer = bytearray()
        self._offset = 0  # file offset of the first byte in _buffer

    @property
    def offset(self) -> int:
        """File offset of the next record to be parsed."""
        return self._offset

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Add bytes; yield every frame now complete."""
        self._buffer += data
        buffer = self._buffer
        pos = 0
        try:
            while len(buffer) - pos >= 4:
                (length,) = _LENGTH.unpack_from(buffer, pos)
                if length > MAX_FRAME_BYTES:
                    raise CaptureError(
                        self.name, self._offset + pos, f"record length {length} is implausible"
                    )
                end = pos + 4 + length
                if end > len(buffer):
                    break
                frame = bytes(buffer[pos + 4 : end])
                pos = end
                yield frame
        finally:
            del buffer[:pos]
            self._offset += pos

    def close(self) -> None:
        """Raise CaptureError if the input ended inside a record."""
        if self._buffer:
            raise CaptureError(
                self.name, self._offset, f"truncated record ({len(self._buffer)} bytes left over)"
            )
