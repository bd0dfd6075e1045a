"""CIDs as the firehose carries them: raw binary CIDs in, base32 strings out.

libipld hands tag-42 links to Python as the CID's raw bytes (multibase prefix removed) and
renders them with :func:`cid_to_str`. It is lenient about bytes after the digest, so
:func:`is_valid_cid` checks the exact length before a CID is accepted (spec §0.1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import libipld

DAG_CBOR = 0x71
RAW = 0x55
SHA2_256 = 0x12

# The shape of nearly every CID on the network: CIDv1, dag-cbor, sha2-256, 32-byte digest.
_DAG_CBOR_SHA256_PREFIX = b"\x01\x71\x12\x20"
_RAW_SHA256_PREFIX = b"\x01\x55\x12\x20"
# libipld (like the Rust multihash it wraps) refuses longer digests, so such a CID cannot be
# rendered as a string: it is invalid here too.
MAX_DIGEST_BYTES = 64


@dataclass(frozen=True, slots=True)
class Link:
    """A CID link (DAG-CBOR tag 42) in values handed to :func:`jetflow.codec.cbor.encode`."""

    raw: bytes

    def __str__(self) -> str:
        return cid_to_str(self.raw)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read an unsigned LEB128 varint (at most 9 bytes); return (value, next position)."""
    value = 0
    shift = 0
    for i in range(pos, min(pos + 9, len(data))):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and i > pos:
                raise ValueError("non-minimal varint")
            return value, i + 1
        shift += 7
    raise ValueError("truncated or oversized varint")


def encode_varint(value: int) -> bytes:
    """Encode an unsigned LEB128 varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def cid_length(data: bytes, pos: int = 0) -> int:
    """Length in bytes of the binary CID starting at ``pos``; raise ValueError if malformed."""
    if data[pos : pos + 2] == b"\x12\x20":  # CIDv0: a bare sha2-256 multihash
        end = pos + 34
    else:
        version, p = _read_varint(data, pos)
        if version != 1:
            raise ValueError(f"unsupported CID version {version}")
        _codec, p = _read_varint(data, p)
        _hash_code, p = _read_varint(data, p)
        size, p = _read_varint(data, p)
        if size > MAX_DIGEST_BYTES:
            raise ValueError("multihash digest longer than 64 bytes")
        end = p + size
    if end > len(data):
        raise ValueError("truncated CID")
    return end - pos


def is_valid_cid(raw: bytes) -> bool:
    """True if ``raw`` is exactly one binary CID, with nothing after the digest."""
    if len(raw) == 36 and (raw[:4] == _DAG_CBOR_SHA256_PREFIX or raw[:4] == _RAW_SHA256_PREFIX):
        return True
    try:
        return cid_length(raw) == len(raw)
    except (ValueError, IndexError):
        return False


def cid_to_str(raw: bytes) -> str:
    """Render a binary CID the way Jetstream does: base32 ``b…`` for v1, base58 ``Qm…`` for v0."""
    text: str = libipld.encode_cid(raw)
    return text


def cid_from_str(text: str) -> bytes:
    """Parse a CID string into its binary form; raise ValueError if it is not a CID."""
    try:
        parsed = libipld.decode_cid(text)
    except ValueError as exc:
        raise ValueError(f"not a CID: {text!r}") from exc
    digest: bytes = parsed["hash"]["digest"]
    multihash = encode_varint(parsed["hash"]["code"]) + encode_varint(len(digest)) + digest
    if parsed["version"] == 0:
        return multihash
    return encode_varint(1) + encode_varint(parsed["codec"]) + multihash


def is_cid_str(text: str) -> bool:
    """True if ``text`` parses as a CID string."""
    try:
        cid_from_str(text)
    except ValueError:
        return False
    return True


def compute_cid(data: bytes, codec: int = DAG_CBOR) -> bytes:
    """The CIDv1 (sha2-256) of a block, as raw bytes."""
    return b"\x01" + encode_varint(codec) + b"\x12\x20" + hashlib.sha256(data).digest()


def digest_matches(raw_cid: bytes, block: bytes) -> bool:
    """True if ``block`` hashes to ``raw_cid`` (sha2-256 CIDs only; others cannot be checked)."""
    if raw_cid[:4] == _DAG_CBOR_SHA256_PREFIX or raw_cid[:4] == _RAW_SHA256_PREFIX:
        return hashlib.sha256(block).digest() == raw_cid[4:]
    if raw_cid[:2] == b"\x12\x20":
        return hashlib.sha256(block).digest() == raw_cid[2:]
    return False
