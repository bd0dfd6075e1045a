"""CAR v1 files as commits carry them: check the framing, fetch blocks by CID, write CARs.

A commit's ``blocks`` field holds the commit block, the MST nodes on the changed paths and the
new records. Jetstream needs only the records, so nothing else is decoded (hot-path rule 3):
:func:`check_car` walks the length prefixes once, and :func:`find_block` locates a record by
searching for its CID and proves the match by hashing the block (content addressing makes the
hash, not the position, the proof).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import libipld

from jetflow.codec.canonical import is_canonical
from jetflow.codec.cbor import encode
from jetflow.codec.cid import (
    Link,
    cid_length,
    compute_cid,
    digest_matches,
    encode_varint,
    is_valid_cid,
)
from jetflow.errors import MalformedCARError


def _varint_at(data: bytes, pos: int) -> tuple[int, int]:
    """Read a block-length varint (up to 4 bytes, i.e. < 256 MiB)."""
    value = 0
    for shift in (0, 7, 14, 21):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
    raise MalformedCARError("block length varint too long")


# The header nearly every commit CAR has: {"roots": [<one 36-byte CID>], "version": 1}.
_USUAL_HEADER_START = b"\x3a\xa2\x65roots\x81\xd8\x2a\x58\x25\x00"
_USUAL_HEADER_END = b"\x67version\x01"


def _check_header(car: bytes) -> int:
    """Validate the CAR header; return the offset of the first block."""
    if (
        car.startswith(_USUAL_HEADER_START)
        and car[51:59] == _USUAL_HEADER_END
        and is_valid_cid(car[15:51])
    ):
        return 59
    header_len, pos = _varint_at(car, 0)
    end = pos + header_len
    if header_len == 0 or end > len(car):
        raise MalformedCARError("truncated CAR header")
    if not is_canonical(car[pos:end]):
        raise MalformedCARError("CAR header is not canonical DAG-CBOR")
    try:
        header = libipld.decode_dag_cbor(car[pos:end])
    except ValueError as exc:
        raise MalformedCARError(f"unreadable CAR header: {exc}") from None
    version = header.get("version") if isinstance(header, dict) else None
    if type(version) is not int or version != 1:  # not True, not 1.0
        raise MalformedCARError("CAR header is not version 1")
    if not isinstance(header.get("roots"), list):
        raise MalformedCARError("CAR header has no roots")
    return end


def check_car(car: bytes) -> None:
    """Raise MalformedCARError unless ``car`` is a CAR v1 whose blocks exactly fill it."""
    size = len(car)
    try:
        pos = _check_header(car)
        while pos < size:
            # Inline fast path for the one- and two-byte lengths nearly every block has.
            byte = car[pos]
            if byte < 0x80:
                if not byte:
                    raise MalformedCARError(f"empty block at byte {pos}")
                pos += byte + 1
            else:
                if car[pos + 1] < 0x80:
                    length, pos = (byte & 0x7F) | (car[pos + 1] << 7), pos + 2
                else:
                    length, pos = _varint_at(car, pos)
                if not length:  # a zero written with a needless continuation byte
                    raise MalformedCARError(f"empty block at byte {pos}")
                pos += length
    except IndexError:
        raise MalformedCARError("truncated CAR") from None
    if pos != size:
        raise MalformedCARError("CAR ends inside a block")


def find_block(car: bytes, cid: bytes) -> bytes | None:
    """Return the block stored under ``cid`` if it is present and hashes to it, else None.

    Call :func:`check_car` first; this only locates and verifies. The search runs backwards
    because records follow the MST nodes that also mention their CIDs.
    """
    cid_len = len(cid)
    if not cid_len:  # rfind would find b"" at every position, forever
        return None
    start = car.rfind(cid)
    while start > 0:
        # A block entry is <varint total length><cid><data>: read the varints that end here.
        byte = car[start - 1]
        if byte < 0x80:
            total, width = byte, 1
            while True:
                end = start + total
                if total > cid_len and end <= len(car):
                    block = car[start + cid_len : end]
                    if digest_matches(cid, block):
                        return block
                if width == 4 or start - width - 1 < 0:
                    break
                byte = car[start - width - 1]
                if byte < 0x80:
                    break
                total = (total << 7) | (byte & 0x7F)
                width += 1
        start = car.rfind(cid, 0, start)
    return None


def iter_blocks(car: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield (cid, block) for every block; for tools and tests, not the hot path."""
    check_car(car)
    header_len, pos = _varint_at(car, 0)
    pos += header_len
    while pos < len(car):
        length, pos = _varint_at(car, pos)
        end = pos + length
        try:
            cid_len = cid_length(car, pos)
        except (ValueError, IndexError) as exc:
            raise MalformedCARError(f"bad CID at byte {pos}: {exc}") from None
        yield car[pos : pos + cid_len], car[pos + cid_len : end]
        pos = end


def read_roots(car: bytes) -> list[bytes]:
    """The root CIDs named in a CAR header."""
    header_len, pos = _varint_at(car, 0)
    header = libipld.decode_dag_cbor(car[pos : pos + header_len])
    return list(header["roots"])


def write_car(roots: Iterable[bytes], blocks: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Build a CAR v1 from root CIDs and (cid, block) pairs."""
    header = encode({"roots": [Link(root) for root in roots], "version": 1})
    out = bytearray(encode_varint(len(header)))
    out += header
    for cid, block in blocks:
        out += encode_varint(len(cid) + len(block))
        out += cid
        out += block
    return bytes(out)


def block_with_cid(value: object) -> tuple[bytes, bytes]:
    """Encode ``value`` as a DAG-CBOR block and return (cid, block)."""
    block = encode(value)
    return compute_cid(block), block
