"""A strict DAG-CBOR reader and a canonical writer, in pure Python.

libipld is the fast decoder, but it returns CID links and byte strings both as ``bytes`` and
accepts a few non-canonical encodings. This module is the exact counterpart used where that
matters: :func:`decode_record` turns a record block into the JSON shape Jetstream sends
(``{"$link"}`` for tag 42, ``{"$bytes"}`` for byte strings) while enforcing every rule of spec §9
and §0.1; :func:`encode` writes canonical DAG-CBOR (used by the synthetic firehose and tests).
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from jetflow.codec.cid import Link, cid_to_str, is_cid_str, is_valid_cid
from jetflow.errors import InvalidRecordError

MAX_RECORD_BYTES = 1 << 20
MAX_STRING_BYTES = 1 << 20
MAX_CONTAINER_ITEMS = 131_072
MAX_KEY_BYTES = 8192
MAX_DEPTH = 128

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_FLOAT64 = struct.Struct(">d")


def _invalid(reason: str, pos: int) -> InvalidRecordError:
    return InvalidRecordError(f"{reason} at byte {pos}")


def _read_head(data: bytes, pos: int) -> tuple[int, int, int]:
    """Read an item head; return (major type, argument, next position), enforcing minimality."""
    if pos >= len(data):
        raise _invalid("unexpected end of data", pos)
    initial = data[pos]
    major = initial >> 5
    info = initial & 0x1F
    pos += 1
    if info < 24:
        return major, info, pos
    if major == 7:
        # Floats and simple values have no minimality rule; the caller handles them.
        return major, info, pos
    if info == 24:
        size, floor = 1, 24
    elif info == 25:
        size, floor = 2, 0x100
    elif info == 26:
        size, floor = 4, 0x1_0000
    elif info == 27:
        size, floor = 8, 0x1_0000_0000
    else:
        raise _invalid("indefinite length or reserved header", pos - 1)
    end = pos + size
    if end > len(data):
        raise _invalid("unexpected end of data", pos)
    arg = int.from_bytes(data[pos:end], "big")
    if arg < floor:
        raise _invalid("non-minimal integer or length encoding", pos - 1)
    return major, arg, end


def _key_order(key: bytes) -> tuple[int, bytes]:
    return (len(key), key)


def _read_value(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    major, arg, pos = _read_head(data, pos)
    if major == 0:
        if arg > _INT64_MAX:
            raise _invalid("integer out of int64 range", pos)
        return arg, pos
    if major == 1:
        value = -1 - arg
        if value < _INT64_MIN:
            raise _invalid("integer out of int64 range", pos)
        return value, pos
    if major == 2:
        end = pos + arg
        if end > len(data):
            raise _invalid("byte string runs past the end", pos)
        if arg > MAX_STRING_BYTES:
            raise _invalid("byte string longer than 1 MiB", pos)
        encoded = base64.b64encode(data[pos:end]).rstrip(b"=").decode("ascii")
        return {"$bytes": encoded}, end
    if major == 3:
        return _read_text(data, pos, arg)
    if major == 4:
        if depth >= MAX_DEPTH:
            raise _invalid(f"nested more than {MAX_DEPTH} levels", pos)
        if arg > MAX_CONTAINER_ITEMS:
            raise _invalid("array longer than 131072 items", pos)
        items = []
        for _ in range(arg):
            item, pos = _read_value(data, pos, depth + 1)
            items.append(item)
        return items, pos
    if major == 5:
        if depth >= MAX_DEPTH:
            raise _invalid(f"nested more than {MAX_DEPTH} levels", pos)
        return _read_map(data, pos, arg, depth)
    if major == 6:
        return _read_link(data, pos, arg)
    return _read_simple(data, pos, arg)


def _read_text(data: bytes, pos: int, length: int) -> tuple[str, int]:
    end = pos + length
    if end > len(data):
        raise _invalid("text string runs past the end", pos)
    if length > MAX_STRING_BYTES:
        raise _invalid("text string longer than 1 MiB", pos)
    try:
        return data[pos:end].decode("utf-8"), end
    except UnicodeDecodeError:
        raise _invalid("text string is not valid UTF-8", pos) from None


def _read_link(data: bytes, pos: int, tag: int) -> tuple[dict[str, str], int]:
    if tag != 42:
        raise _invalid(f"tag {tag} is not allowed in DAG-CBOR", pos)
    major, length, start = _read_head(data, pos)
    end = start + length
    if major != 2 or end > len(data):
        raise _invalid("tag 42 must wrap a byte string", pos)
    if length < 2 or data[start] != 0:
        raise _invalid("CID link without the 0x00 multibase prefix", pos)
    raw = data[start + 1 : end]
    if not is_valid_cid(raw):
        raise _invalid("tag 42 holds an invalid CID", pos)
    return {"$link": cid_to_str(raw)}, end


def _read_simple(data: bytes, pos: int, info: int) -> tuple[Any, int]:
    if info == 20:
        return False, pos
    if info == 21:
        return True, pos
    if info == 22:
        return None, pos
    if info == 27:
        end = pos + 8
        if end > len(data):
            raise _invalid("unexpected end of data", pos)
        (number,) = _FLOAT64.unpack_from(data, pos)
        # Jetstream (indigo atdata) keeps integer-valued floats as integers and refuses the rest.
        if not math.isfinite(number) or number != int(number):
            raise _invalid("non-integer float", pos)
        value = int(number)
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _invalid("float out of int64 range", pos)
        return value, end
    if info in (25, 26):
        raise _invalid("half or single precision float (DAG-CBOR uses 64-bit floats only)", pos)
    raise _invalid(f"simple value {info} is not allowed in DAG-CBOR", pos - 1)


def _read_map(data: bytes, pos: int, count: int, depth: int) -> tuple[dict[str, Any], int]:
    if count > MAX_CONTAINER_ITEMS:
        raise _invalid("map longer than 131072 entries", pos)
    entries: dict[str, Any] = {}
    previous: tuple[int, bytes] | None = None
    for _ in range(count):
        key_pos = pos
        major, length, pos = _read_head(data, pos)
        if major != 3:
            raise _invalid("map key is not a string", key_pos)
        if length > MAX_KEY_BYTES:
            raise _invalid("map key longer than 8192 bytes", key_pos)
        key, pos = _read_text(data, pos, length)
        order = _key_order(data[pos - length : pos])
        if previous is not None and order <= previous:
            raise _invalid("map keys are not in canonical order or repeat", key_pos)
        previous = order
        entries[key], pos = _read_value(data, pos, depth + 1)
    return _check_map(entries, pos), pos


def _check_map(entries: dict[str, Any], pos: int) -> dict[str, Any]:
    """Apply indigo atdata's rules for special maps; return the map in Jetstream's key order."""
    if "$type" in entries:
        type_name = entries["$type"]
        if not isinstance(type_name, str) or not type_name:
            raise _invalid("$type must be a non-empty string", pos)
        if type_name == "blob":
            return _check_blob(entries, pos)
    if "$link" in entries:
        link = entries["$link"]
        if len(entries) != 1 or not isinstance(link, str) or not is_cid_str(link):
            raise _invalid("a $link map must hold exactly one valid CID string", pos)
    if "$bytes" in entries:
        encoded = entries["$bytes"]
        if len(entries) != 1 or not isinstance(encoded, str) or not _is_base64(encoded):
            raise _invalid("a $bytes map must hold exactly one base64 string", pos)
    return dict(sorted(entries.items()))


def _check_blob(entries: dict[str, Any], pos: int) -> dict[str, Any]:
    if set(entries) != {"$type", "ref", "mimeType", "size"}:
        raise _invalid("a blob must have exactly $type, ref, mimeType and size", pos)
    ref = entries["ref"]
    if not isinstance(ref, dict) or list(ref) != ["$link"]:
        raise _invalid("blob ref must be a CID link", pos)
    size = entries["size"]
    if not isinstance(size, int) or isinstance(size, bool):
        raise _invalid("blob size must be a number", pos)
    if not isinstance(entries["mimeType"], str):
        raise _invalid("blob mimeType must be a string", pos)
    return {"$type": "blob", "ref": ref, "mimeType": entries["mimeType"], "size": size}


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        return False
    return True


def decode_record(data: bytes) -> dict[str, Any]:
    """Decode a record block into Jetstream's JSON shape, or raise InvalidRecordError.

    Keys come out sorted byte-wise (Go map order) except blobs, which keep Jetstream's fixed
    ``$type, ref, mimeType, size`` order; so ``orjson.dumps`` of the result, without key
    sorting, is the record exactly as Jetstream renders it.
    """
    if len(data) > MAX_RECORD_BYTES:
        raise InvalidRecordError(f"record is {len(data)} bytes, more than 1 MiB")
    value, end = _read_value(data, 0, 0)
    if end != len(data):
        raise _invalid("trailing bytes after the record", end)
    # A top-level link or byte string decodes to a dict too, but is not a map.
    if data[0] >> 5 != 5 or not isinstance(value, dict):
        raise InvalidRecordError("a record must be a map")
    return value


# ---------------------------------------------------------------------------------------------
# Canonical writer


def _head(major: int, arg: int) -> bytes:
    if arg < 24:
        return bytes([(major << 5) | arg])
    if arg < 0x100:
        return bytes([(major << 5) | 24, arg])
    if arg < 0x1_0000:
        return bytes([(major << 5) | 25]) + arg.to_bytes(2, "big")
    if arg < 0x1_0000_0000:
        return bytes([(major << 5) | 26]) + arg.to_bytes(4, "big")
    return bytes([(major << 5) | 27]) + arg.to_bytes(8, "big")


def _encode_into(out: bytearray, value: Any) -> None:
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, int):
        out += _head(0, value) if value >= 0 else _head(1, -1 - value)
    elif isinstance(value, float):
        out.append(0xFB)
        out += _FLOAT64.pack(value)
    elif isinstance(value, str):
        encoded = value.encode("utf-8")
        out += _head(3, len(encoded))
        out += encoded
    elif isinstance(value, bytes | bytearray):
        out += _head(2, len(value))
        out += value
    elif isinstance(value, Link):
        out += b"\xd8\x2a" + _head(2, len(value.raw) + 1) + b"\x00" + value.raw
    elif isinstance(value, Mapping):
        keyed = sorted(
            ((k.encode("utf-8"), v) for k, v in value.items()), key=lambda kv: _key_order(kv[0])
        )
        out += _head(5, len(keyed))
        for key, item in keyed:
            out += _head(3, len(key))
            out += key
            _encode_into(out, item)
    elif isinstance(value, Sequence):
        out += _head(4, len(value))
        for item in value:
            _encode_into(out, item)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as DAG-CBOR")


def encode(value: Any) -> bytes:
    """Encode ``value`` as canonical DAG-CBOR; :class:`Link` values become tag-42 links."""
    out = bytearray()
    _encode_into(out, value)
    return bytes(out)
