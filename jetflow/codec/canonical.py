"""Canonical DAG-CBOR check for whole frames and CAR headers (spec §0.1), by walking the bytes.

Re-encoding with libipld cannot decide this: libipld hands links and byte strings to Python
alike as ``bytes``, keeps any bytes after a link's CID, and writes back as a link every byte
string that happens to parse as a CID. So the bytes are walked, with the head rules of
:mod:`jetflow.codec.cbor` and no record rules: any 64-bit integer and any finite float is fine,
except -0.0, which libipld refuses to decode.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from jetflow.codec.cbor import MAX_DEPTH, _read_head
from jetflow.codec.cid import is_valid_cid

_FLOAT64 = struct.Struct(">d")
_NEGATIVE_ZERO = _FLOAT64.pack(-0.0)


def _skip_item(data: bytes, pos: int, depth: int) -> int:
    """Return the end of the canonical item at ``pos``; raise ValueError if there is none."""
    major, arg, pos = _read_head(data, pos)
    if major <= 1:
        return pos
    if major == 2 or major == 3:
        end = pos + arg
        if end > len(data):
            raise ValueError("string runs past the end")
        if major == 3:
            data[pos:end].decode("utf-8")
        return end
    if major == 6:
        return _skip_link(data, pos, arg)
    if major == 7:
        return _skip_simple(data, pos, arg)
    if depth >= MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} levels")
    if major == 4:
        for _ in range(arg):
            pos = _skip_item(data, pos, depth + 1)
        return pos
    previous: tuple[int, bytes] | None = None
    for _ in range(arg):
        major, length, pos = _read_head(data, pos)
        end = pos + length
        if major != 3 or end > len(data):
            raise ValueError("map key is not a string")
        key = data[pos:end]
        key.decode("utf-8")
        if previous is not None and (length, key) <= previous:
            raise ValueError("map keys are not in canonical order or repeat")
        previous = (length, key)
        pos = _skip_item(data, end, depth + 1)
    return pos


def _skip_link(data: bytes, pos: int, tag: int) -> int:
    major, length, start = _read_head(data, pos)
    end = start + length
    if tag != 42 or major != 2 or end > len(data) or length < 2 or data[start] != 0:
        raise ValueError("not a tag-42 CID link")
    if not is_valid_cid(data[start + 1 : end]):
        raise ValueError("tag 42 holds an invalid CID")
    return end


def _skip_simple(data: bytes, pos: int, info: int) -> int:
    if info in (20, 21, 22):
        return pos
    end = pos + 8
    if (
        info == 27
        and end <= len(data)
        and data[pos:end] != _NEGATIVE_ZERO
        and math.isfinite(_FLOAT64.unpack_from(data, pos)[0])
    ):
        return end
    raise ValueError("not false, true, null or a finite 64-bit float other than -0.0")


def is_canonical(data: bytes, count: int = 1) -> bool:
    """True if ``data`` is exactly ``count`` canonical DAG-CBOR items back to back."""
    pos = 0
    try:
        for _ in range(count):
            pos = _skip_item(data, pos, 0)
    except ValueError:  # InvalidRecordError from _read_head, UnicodeDecodeError
        return False
    return pos == len(data)


def is_canonical_frame(data: bytes, header: dict[str, Any], body: dict[str, Any]) -> bool:
    """True if ``data`` is exactly two canonical DAG-CBOR items (``header`` and ``body``).

    ``header`` and ``body`` are libipld's decoding of ``data``; only the bytes are checked.
    """
    return is_canonical(data, 2)
