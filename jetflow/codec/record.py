"""Record block (DAG-CBOR) → record JSON, byte for byte as Jetstream renders it.

Two paths give the same bytes:

* **fast**: libipld decodes (C speed) and orjson writes with sorted keys. It is taken only when a
  cheap scan of the raw bytes proves the record holds nothing libipld would blur or a rule
  could refuse: no tag 42 (so every ``bytes`` value is a byte string), no float, no blob, no
  ``$link``/``$bytes`` map, no suspicious ``$type``, no 64-bit integer beyond int64, and no room
  for more than 128 levels of nesting. Canonical form is then proven by re-encoding.
* **exact**: :func:`jetflow.codec.cbor.decode_record`, a strict pure-Python decoder.

Most events (likes, follows, reposts, plain posts) take the fast path; posts with images or
link cards, profiles and records with byte strings take the exact one.
"""

from __future__ import annotations

import base64
import re

import libipld
import orjson

from jetflow.codec.cbor import MAX_DEPTH, decode_record
from jetflow.codec.jsonfmt import go_escape
from jetflow.errors import InvalidRecordError

# The screen that decides the path. False positives only cost time; there are no false negatives.
#
# One translate() pass keeps the bytes that matter: container heads (to bound the nesting
# depth) and single-byte signals: 0xd8 (tag 42 starts d8 2a), 0xf7-0xfb (undefined, simple
# values, floats), 0x1b / 0x3b (64-bit integers, which may exceed int64).
_CONTAINER_HEADS = bytes([*range(0x80, 0x9C), *range(0xA0, 0xBC)])
_SIGNALS = bytes([0xD8, 0xF7, 0xF8, 0xF9, 0xFA, 0xFB, 0x1B, 0x3B])
_ALL_BUT_HEADS_AND_SIGNALS = bytes(
    b for b in range(256) if b not in _CONTAINER_HEADS and b not in _SIGNALS
)
_ALL_BUT_SIGNALS = bytes(b for b in range(256) if b not in _SIGNALS)
_FLOAT_OR_SIMPLE = re.compile(rb"[\xf7-\xfb]")
# Regexes that start with a literal byte use CPython's fast substring search.
_WIDE_UINT = re.compile(rb"\x1b[\x80-\xff]")
_WIDE_NINT = re.compile(rb"\x3b[\x80-\xff]")
# A $type that is not a non-empty string, a blob ("$type": "blob"), a literal $link / $bytes key.
_DOLLAR_KEYS = re.compile(rb"\$(?:type(?:dblob|(?![\x61-\x7b]))|link|bytes)")
_FAST_PATH_MAX_BYTES = 8192  # below this no key, string or container can exceed a §9 limit


def _fast_path_is_exact(block: bytes) -> bool:
    """True when libipld + orjson render ``block`` exactly as the strict decoder would."""
    if len(block) > _FAST_PATH_MAX_BYTES or _DOLLAR_KEYS.search(block) is not None:
        return False
    kept = block.translate(None, _ALL_BUT_HEADS_AND_SIGNALS)
    signals = kept.translate(None, _ALL_BUT_SIGNALS)
    if signals:
        if b"\xd8" in signals and b"\xd8\x2a" in block:
            return False
        if _FLOAT_OR_SIMPLE.search(signals) is not None:
            return False
        if b"\x1b" in signals and _WIDE_UINT.search(block) is not None:
            return False
        if b"\x3b" in signals and _WIDE_NINT.search(block) is not None:
            return False
    # Nesting deeper than MAX_DEPTH needs more container heads than this upper bound.
    return len(kept) <= MAX_DEPTH


def _bytes_as_json(value: object) -> dict[str, str]:
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).rstrip(b"=").decode("ascii")}
    raise TypeError(f"unexpected {type(value).__name__} in record")


def render_record(block: bytes) -> bytes:
    """A record block as Jetstream's record JSON (Go escaping applied).

    Raises InvalidRecordError when Jetstream would skip the op (spec §9, §0.1).
    """
    if _fast_path_is_exact(block):
        json = _render_fast(block)
        if json is not None:
            return go_escape(json)
    return go_escape(orjson.dumps(decode_record(block)))


def _render_fast(block: bytes) -> bytes | None:
    """Render through libipld; None when only the exact path can decide."""
    try:
        value = libipld.decode_dag_cbor(block)
    except (ValueError, RecursionError) as exc:
        raise InvalidRecordError(f"not valid DAG-CBOR: {exc}") from None
    if type(value) is not dict:
        raise InvalidRecordError("a record must be a map")
    # A mismatch is a non-canonical encoding, or a byte string that libipld re-encodes as a
    # link because its content parses as a CID: the exact path tells the two apart.
    if libipld.encode_dag_cbor(value) != block:
        return None
    json: bytes = orjson.dumps(value, default=_bytes_as_json, option=orjson.OPT_SORT_KEYS)
    return json
