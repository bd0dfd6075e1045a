"""JSON bytes exactly as Jetstream (Go, goccy/go-json) writes them.

orjson does the work; this module adds what Go does differently: HTML-safe escapes for
``& < >``, escaped U+2028/U+2029, and ``\\u0008``/``\\u000c`` instead of ``\\b``/``\\f``.
One ``bytes.translate`` pass (the fastest full scan CPython offers) tells whether any fix-up
can be needed, so the common case costs one scan and no regex.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

# translate() with this table keeps only the bytes that can start a fix-up.
_ALL_BUT_FIXUP_STARTS = bytes(b for b in range(256) if b not in b"&<>\\\xe2")
_FIXUPS = {
    b"&": b"\\u0026",
    b"<": b"\\u003c",
    b">": b"\\u003e",
    b"\xe2\x80\xa8": b"\\u2028",
    b"\xe2\x80\xa9": b"\\u2029",
}
# A backslash escape is a run of backslashes; only an odd run ending in b/f is a \b or \f escape.
_FIX_PATTERN = re.compile(rb"[&<>]|\xe2\x80[\xa8\xa9]|(?<!\\)(?:\\\\)*\\[bf]")


def _replace(match: re.Match[bytes]) -> bytes:
    text = match.group(0)
    fixed = _FIXUPS.get(text)
    if fixed is not None:
        return fixed
    # (\\\\)*\\b -> keep the escaped backslashes, rewrite the final escape.
    return text[:-2] + (b"\\u0008" if text[-1:] == b"b" else b"\\u000c")


def go_escape(encoded: bytes) -> bytes:
    """Rewrite orjson output so that its escapes match Go's encoder byte for byte."""
    starts = encoded.translate(None, _ALL_BUT_FIXUP_STARTS)
    if not starts:
        return encoded
    if (
        b"&" in starts
        or b"<" in starts
        or b">" in starts
        or (b"\xe2" in starts and (b"\xe2\x80\xa8" in encoded or b"\xe2\x80\xa9" in encoded))
        or (b"\\" in starts and (b"\\b" in encoded or b"\\f" in encoded))
    ):
        return _FIX_PATTERN.sub(_replace, encoded)
    return encoded


def dumps(value: Any) -> bytes:
    """Serialise ``value`` (keys in the order given) with Go's escaping."""
    return go_escape(orjson.dumps(value))


def canonical_record_order(value: Any) -> Any:
    """Put a JSON-shaped record in Jetstream's key order: sorted, except blob objects.

    Used for records that arrive as JSON (from a Jetstream server or a JSON-lines file); records
    decoded from CBOR already come out in this order.
    """
    if isinstance(value, dict):
        if value.get("$type") == "blob" and len(value) == 4 and "ref" in value:
            return {
                "$type": "blob",
                "ref": canonical_record_order(value["ref"]),
                "mimeType": value.get("mimeType"),
                "size": value.get("size"),
            }
        return {key: canonical_record_order(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical_record_order(item) for item in value]
    return value
