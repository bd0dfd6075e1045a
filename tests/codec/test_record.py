"""Record block → record JSON: exact ``$link``/``$bytes``, Go order and escaping, §9 rules."""

from __future__ import annotations

from typing import Any

import pytest

from jetflow.codec.cbor import encode
from jetflow.codec.cid import Link, compute_cid
from jetflow.codec.record import render_record
from jetflow.errors import InvalidRecordError

CID = compute_cid(b"some block")
CID_TEXT = "bafyreiex7rtt7m7qhngbvmbmduvzqz5h7wyitmjgsqdaqqdeoqfbizr5vm"


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth - 1):
        value = [value]
    return value


def test_cid_link_and_byte_string_are_told_apart_exactly() -> None:
    # libipld returns both as bytes; here the byte string even holds a valid binary CID.
    block = encode({"$type": "x.y.z", "link": Link(CID), "raw": CID})
    rendered = render_record(block)
    assert rendered.startswith(b'{"$type":"x.y.z","link":{"$link":"bafyrei')
    assert b'"raw":{"$bytes":"AXESI' in rendered
    assert b"=" not in rendered  # base64 without padding


def test_plain_byte_strings_render_as_unpadded_base64() -> None:
    assert render_record(encode({"b": b"\x00\x01\x02\x03"})) == b'{"b":{"$bytes":"AAECAw"}}'


def test_keys_are_sorted_bytewise_except_blob_fields() -> None:
    blob = {"$type": "blob", "ref": Link(CID), "mimeType": "image/png", "size": 10}
    rendered = render_record(
        encode({"zz": 1, "aa": {"b": 1, "a": 2}, "img": blob, "$type": "x.y.z"})
    )
    assert rendered == (
        b'{"$type":"x.y.z","aa":{"a":2,"b":1},"img":{"$type":"blob","ref":{"$link":"'
        + str(Link(CID)).encode()
        + b'"},"mimeType":"image/png","size":10},"zz":1}'
    )


def test_go_escapes_are_applied_to_record_strings() -> None:
    rendered = render_record(encode({"text": "a&b <i> \u2028\u2029 \b\f\x01 \x7f é 🦋"}))
    assert rendered == (
        b'{"text":"a\\u0026b \\u003ci\\u003e \\u2028\\u2029 \\u0008\\u000c\\u0001 '
        b'\x7f \xc3\xa9 \xf0\x9f\xa6\x8b"}'
    )


def test_null_values_are_kept_and_integral_floats_become_integers() -> None:
    assert render_record(encode({"d": None, "f": 3.0, "n": -1})) == b'{"d":null,"f":3,"n":-1}'


@pytest.mark.parametrize(
    "value",
    [
        {"f": 1.5},
        {"f": float("inf")},
        {"$type": ""},
        {"$type": 5},
        {"$type": "blob", "ref": Link(CID), "mimeType": "image/png"},
        {"$type": "blob", "ref": "not a link", "mimeType": "image/png", "size": 1},
        {"$link": "not a cid"},
        {"$link": CID_TEXT, "extra": 1},
        {"$bytes": "!!"},
        {"n": 1 << 63},
        {"deep": _nested(129)},
    ],
)
def test_records_jetstream_refuses_raise_invalid_record(value: dict[str, Any]) -> None:
    with pytest.raises(InvalidRecordError):
        render_record(encode(value))


def test_nesting_up_to_128_levels_is_accepted() -> None:
    # the record map plus 127 nested arrays: exactly 128 levels
    assert render_record(encode({"deep": _nested(128)})).startswith(b'{"deep":[[[')


@pytest.mark.parametrize(
    "block",
    [
        bytes.fromhex("a16161") + b"\x18\x05",  # non-minimal integer
        bytes.fromhex("a16161") + b"\xfa\x3f\x80\x00\x00",  # single-precision float
        bytes.fromhex("a2616201616102"),  # keys out of canonical order
        bytes.fromhex("a16161") + b"\x01" + b"\x00",  # trailing byte
        bytes.fromhex("81") + b"\x01",  # not a map
        bytes.fromhex("a1616162ff"),  # invalid UTF-8
        bytes.fromhex("a16161c101"),  # tag other than 42
        bytes.fromhex("a16161d82a4101"),  # tag 42 without the 0x00 prefix
        bytes.fromhex("a161615fff"),  # indefinite-length byte string
        bytes.fromhex("a16161f7"),  # undefined
    ],
)
def test_non_canonical_or_non_dag_cbor_blocks_are_invalid(block: bytes) -> None:
    with pytest.raises(InvalidRecordError):
        render_record(block)


def test_literal_link_map_is_rendered_like_a_link() -> None:
    assert (
        render_record(encode({"r": {"$link": CID_TEXT}}))
        == b'{"r":{"$link":"%s"}}' % CID_TEXT.encode()
    )


def test_link_to_cidv0_renders_base58() -> None:
    v0 = b"\x12\x20" + bytes(32)
    assert (
        render_record(encode({"r": Link(v0)}))
        == b'{"r":{"$link":"QmNLei78zWmzUdbeRB3CiUfAizWUrbeeZh5K1rhAQKCh51"}}'
    )
