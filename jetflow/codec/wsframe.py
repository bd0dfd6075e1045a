"""Server-to-client websocket frames, built once per event and sent as is to every subscriber.

Frames from a server are not masked, so a whole frame is a 2–10 byte header and the payload;
building it once lets the server write many subscribers' frames with one ``transport.write``
each, and lets the store keep frames ready for replay.
"""

from __future__ import annotations

import struct

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
_FIN = 0x80


def frame(opcode: int, payload: bytes) -> bytes:
    """A complete unmasked final frame."""
    length = len(payload)
    if length < 126:
        return bytes((_FIN | opcode, length)) + payload
    if length < 1 << 16:
        return struct.pack("!BBH", _FIN | opcode, 126, length) + payload
    return struct.pack("!BBQ", _FIN | opcode, 127, length) + payload


def text_frame(payload: bytes) -> bytes:
    return frame(OPCODE_TEXT, payload)


def binary_frame(payload: bytes) -> bytes:
    return frame(OPCODE_BINARY, payload)


def header_length(payload_length: int) -> int:
    """Bytes of header in front of a payload of this length."""
    return 2 if payload_length < 126 else 4 if payload_length < 1 << 16 else 10


def frame_limit(max_payload: int) -> int:
    """The largest frame whose payload is at most ``max_payload`` bytes.

    Header length never shrinks as the payload grows, so ``len(frame) <= frame_limit(m)``
    exactly when the payload is at most ``m`` bytes: the store filters replay on this.
    """
    return max_payload + header_length(max_payload)


def payload_of(data: bytes) -> bytes:
    """The payload of a frame built by :func:`frame`."""
    marker = data[1] & 0x7F
    return data[2:] if marker < 126 else data[4:] if marker == 126 else data[10:]
