"""The C extension ``jetflow._speedups`` against the pure-Python references, outcome for outcome.

Every check runs both implementations on the same input and requires the same outcome: the same
value, or the same jetflow exception class. Inputs are the real corpus, hand-written cases for
each rule (which also pin the expected result), and hypothesis-generated or -mutated bytes.
``render_record`` is compared with both the reference function and its defining formula
``go_escape(orjson.dumps(decode_record(block)))`` (the reference also has a libipld fast path).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libipld
import orjson
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jetflow.codec import canonical, car, envelope, record, rfc3339
from jetflow.codec.capture import CaptureParser
from jetflow.codec.cbor import decode_record, encode
from jetflow.codec.cid import Link, compute_cid, encode_varint
from jetflow.codec.frame import Frame
from jetflow.codec.jsonfmt import go_escape
from jetflow.errors import InvalidRecordError, JetflowError, MalformedCARError

try:
    from jetflow import _speedups as C  # type: ignore[attr-defined]
except ImportError as exc:
    if os.environ.get("JETFLOW_REQUIRE_SPEEDUPS") == "1":
        pytest.fail(
            f"JETFLOW_REQUIRE_SPEEDUPS=1 but jetflow._speedups is missing: {exc}", pytrace=False
        )
    pytest.skip(
        f"jetflow._speedups is not built ({exc}); `pip install -e .` builds it",
        allow_module_level=True,
    )

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
CORPUS = SHARED / "jetstream" / "corpus" / "frames.bin.zst"
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---------------------------------------------------------------------------------------------
# Helpers


def outcome(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """("ok", result) or ("raises", exception class); anything but a jetflow error propagates."""
    try:
        return "ok", fn(*args, **kwargs)
    except JetflowError as exc:
        return "raises", type(exc)


def exact_render(block: bytes) -> bytes:
    """The definition of render_record, without the reference's libipld fast path."""
    return go_escape(orjson.dumps(decode_record(block)))


def same_render(block: bytes) -> tuple[str, Any]:
    """Render with C, the reference and the formula; all three must agree."""
    got = outcome(C.render_record, block)
    assert got == outcome(record.render_record, block), block.hex()
    assert got == outcome(exact_render, block), block.hex()
    return got


def same_check_car(data: bytes) -> tuple[str, Any]:
    got = outcome(C.check_car, data)
    assert got == outcome(car.check_car, data), data[:80].hex()
    return got


def same_canonical(data: bytes) -> bool:
    got = C.is_canonical_frame(data, None, None)
    assert got is canonical.is_canonical_frame(data, {}, {}), data[:80].hex()
    return bool(got)


def same_rfc3339(text: str) -> bool:
    got = C.is_rfc3339(text)
    assert got is rfc3339.is_rfc3339(text), text
    return bool(got)


def same_commit_json(*args: Any) -> tuple[str, Any]:
    def run(fn: Callable[..., bytes]) -> tuple[str, Any]:
        try:
            return "ok", fn(*args)
        except TypeError:  # orjson's JSONEncodeError is a TypeError
            return "raises", TypeError

    got = run(C.commit_json)
    assert got == run(envelope.commit_json), args
    return got


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Apply (kind, position, bytes) edits: 0 overwrite, 1 insert, 2 delete, 3 truncate, 4 xor."""
    out = bytearray(data)
    for kind, position, chunk in edits:
        at = position % (len(out) + 1)
        if kind == 0:
            out[at : at + len(chunk)] = chunk
        elif kind == 1:
            out[at:at] = chunk
        elif kind == 2:
            del out[at : at + len(chunk)]
        elif kind == 3:
            del out[at:]
        elif at < len(out):
            out[at] ^= chunk[0] or 1
    return bytes(out)


# Head bytes a mutation may usefully plant: wide/indefinite heads, floats, tags, simple values.
INTERESTING = [
    0x00,
    0x17,
    0x18,
    0x19,
    0x1A,
    0x1B,
    0x1C,
    0x1F,
    0x3B,
    0x40,
    0x5F,
    0x60,
    0x7F,
    0x80,
    0x9F,
    0xA0,
    0xBF,
    0xC0,
    0xD8,
    0x2A,
    0xF4,
    0xF5,
    0xF6,
    0xF7,
    0xF8,
    0xF9,
    0xFA,
    0xFB,
    0xFF,
    0x24,
]
EDITS = st.lists(
    st.tuples(
        st.integers(0, 4),
        st.integers(0, 1 << 20),
        st.one_of(
            st.binary(min_size=1, max_size=4),
            st.lists(st.sampled_from(INTERESTING), min_size=1, max_size=3).map(bytes),
        ),
    ),
    min_size=1,
    max_size=4,
)


def rec(value: Any) -> bytes:
    return encode(value)


def nested_maps(depth: int) -> bytes:
    """A record of ``depth`` maps, each the only value of the one before."""
    return encode(functools.reduce(lambda value, _: {"k": value}, range(depth), 7))


def nested(depth: int, leaf: Any = 1) -> bytes:
    """A record whose containers nest exactly ``depth`` deep (the record map counts as one)."""
    value = leaf
    for _ in range(depth - 1):
        value = [value]
    return encode({"a": value})


def sha_cid(data: bytes, codec: int = 0x71) -> bytes:
    return compute_cid(data, codec)


CID_V1 = sha_cid(b"record")
CID_RAW = sha_cid(b"image", 0x55)
CID_V0 = b"\x12\x20" + hashlib.sha256(b"v0").digest()
CID_IDENTITY = b"\x01\x71\x00\x03abc"
CID_DIGEST_64 = b"\x01\x71\x13\x40" + bytes(range(64))
CID_BIG_CODEC = b"\x01" + encode_varint((1 << 62) + 5) + b"\x12\x20" + bytes(32)
VALID_CIDS = [CID_V1, CID_RAW, CID_V0, CID_IDENTITY, CID_DIGEST_64, CID_BIG_CODEC]
CID_STRINGS = [libipld.encode_cid(cid) for cid in VALID_CIDS]


def tag42(payload: bytes) -> bytes:
    """A tag-42 item around ``payload`` (the 0x00 prefix is the caller's)."""
    return b"\xd8\x2a" + encode(payload)


def raw_map(*pairs: tuple[bytes, bytes]) -> bytes:
    """A map from already-encoded keys and values, in the order given (for non-canonical maps)."""
    assert len(pairs) < 24
    return bytes([0xA0 | len(pairs)]) + b"".join(k + v for k, v in pairs)


def key(text: str) -> bytes:
    return encode(text)


# ---------------------------------------------------------------------------------------------
# The switchboard


def test_accel_uses_the_extension() -> None:
    if os.environ.get("JETFLOW_PURE_PYTHON"):
        pytest.skip("JETFLOW_PURE_PYTHON is set, so accel keeps the references on purpose")
    from jetflow.codec import accel

    assert accel.USING_SPEEDUPS
    for name in (
        "render_record",
        "check_car",
        "find_block",
        "is_rfc3339",
        "commit_json",
        "is_canonical_frame",
    ):
        assert getattr(accel, name) is getattr(C, name), name


# ---------------------------------------------------------------------------------------------
# The corpus


@dataclass
class Corpus:
    frames: list[bytes]
    cars: list[tuple[bytes, list[bytes]]]  # (blocks, the ops' CIDs)
    records: list[bytes]


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    if not CORPUS.is_file():
        pytest.fail(f"corpus {CORPUS} is missing: tests need ../shared next to the checkout")
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(CORPUS.read_bytes())
    parser = CaptureParser(str(CORPUS))
    frames = list(parser.feed(raw))
    parser.close()
    cars, records = [], []
    for data in frames:
        frame = Frame(data)
        if frame.type != "#commit":
            continue
        body = frame.body
        cids = [op["cid"] for op in body["ops"] if op.get("cid")]
        cars.append((body["blocks"], cids))
        for cid in cids:
            block = car.find_block(body["blocks"], cid)
            if block is not None:
                records.append(block)
    assert len(frames) == 150 and len(records) >= 140
    return Corpus(frames, cars, records)


def test_corpus_frames_records_and_envelopes(corpus: Corpus) -> None:
    rendered = 0
    for data in corpus.frames:
        frame = Frame(data)
        header, body = frame.header, frame.body
        assert C.is_canonical_frame(data, header, body) is True
        assert canonical.is_canonical_frame(data, header, body) is True
        assert same_rfc3339(body["time"])
        if frame.type != "#commit":
            continue
        blocks = body["blocks"]
        assert same_check_car(blocks) == ("ok", None)
        for op in body["ops"]:
            collection, _, rkey = op["path"].partition("/")
            record_json, cid_text = None, None
            if op.get("cid"):
                block = C.find_block(blocks, op["cid"])
                assert block == car.find_block(blocks, op["cid"])
                if block is not None:
                    kind, record_json = same_render(block)
                    assert kind == "ok"
                    rendered += 1
                cid_text = libipld.encode_cid(op["cid"])
            same_commit_json(
                body["repo"],
                1_767_225_600_123_456,
                body["rev"],
                op["action"],
                collection,
                rkey,
                record_json,
                cid_text,
            )
    assert rendered == len(corpus.records)


def test_corpus_records_match_production_output(corpus: Corpus) -> None:
    """C output is the record JSON production Jetstream sent for these frames."""
    expected = (CORPUS.parent / "expected_v1.jsonl").read_bytes().splitlines()
    produced = {
        line[line.index(b'"record":') + 9 : line.rindex(b',"cid"')]
        for line in expected
        if b'"record":' in line
    }
    assert {C.render_record(block) for block in corpus.records} <= produced


# ---------------------------------------------------------------------------------------------
# render_record: one case per rule


VALID_RECORDS = {
    "plain": (rec({"a": 1}), b'{"a":1}'),
    "keys sorted bytewise": (
        rec({"bb": 1, "a": 2, "c": 3, "$type": "x"}),
        b'{"$type":"x","a":2,"bb":1,"c":3}',
    ),
    "keys sorted at depth": (
        rec({"z": [{"yy": 1, "x": {"b": 1, "aa": 2}}]}),
        b'{"z":[{"x":{"aa":2,"b":1},"yy":1}]}',
    ),
    "all scalars": (
        rec({"t": True, "f": False, "n": None, "s": "", "l": [], "m": {}}),
        b'{"f":false,"l":[],"m":{},"n":null,"s":"","t":true}',
    ),
    "byte strings": (
        rec({"a": b"", "b": b"\x00", "c": b"\xff\xfe", "d": b"abc", "e": b"\x00" * 4}),
        b'{"a":{"$bytes":""},"b":{"$bytes":"AA"},"c":{"$bytes":"//4"},'
        b'"d":{"$bytes":"YWJj"},"e":{"$bytes":"AAAAAA"}}',
    ),
    "byte string holding a CID stays bytes": (
        rec({"a": CID_V1}),
        b'{"a":{"$bytes":"' + base64.b64encode(CID_V1).rstrip(b"=") + b'"}}',
    ),
    "link v1": (rec({"a": Link(CID_V1)}), b'{"a":{"$link":"' + CID_STRINGS[0].encode() + b'"}}'),
    "link raw codec": (
        rec({"a": Link(CID_RAW)}),
        b'{"a":{"$link":"' + CID_STRINGS[1].encode() + b'"}}',
    ),
    "link v0": (rec({"a": Link(CID_V0)}), b'{"a":{"$link":"' + CID_STRINGS[2].encode() + b'"}}'),
    "link identity hash": (
        rec({"a": Link(CID_IDENTITY)}),
        b'{"a":{"$link":"' + CID_STRINGS[3].encode() + b'"}}',
    ),
    "link 64-byte digest": (
        rec({"a": Link(CID_DIGEST_64)}),
        b'{"a":{"$link":"' + CID_STRINGS[4].encode() + b'"}}',
    ),
    "link 9-byte codec varint": (
        rec({"a": Link(CID_BIG_CODEC)}),
        b'{"a":{"$link":"' + CID_STRINGS[5].encode() + b'"}}',
    ),
    "int64 max": (rec({"a": (1 << 63) - 1}), b'{"a":9223372036854775807}'),
    "int64 min": (rec({"a": -(1 << 63)}), b'{"a":-9223372036854775808}'),
    "head boundaries": (
        rec({"a": [23, 24, 255, 256, 65535, 65536, (1 << 32) - 1, 1 << 32, -24, -25]}),
        b'{"a":[23,24,255,256,65535,65536,4294967295,4294967296,-24,-25]}',
    ),
    "float 1.0": (rec({"a": 1.0}), b'{"a":1}'),
    "float -0.0": (rec({"a": -0.0}), b'{"a":0}'),
    "float 2**53": (rec({"a": 2.0**53}), b'{"a":9007199254740992}'),
    "float -2**63": (rec({"a": -(2.0**63)}), b'{"a":-9223372036854775808}'),
    "depth 128": (nested(128), b'{"a":' + b"[" * 127 + b"1" + b"]" * 127 + b"}"),
    "depth 128 with maps": (nested_maps(128), b'{"k":' * 128 + b"7" + b"}" * 128),
    "link at depth 128": (nested(128, Link(CID_V1)), None),
    "$type string": (
        rec({"$type": "app.bsky.feed.post", "text": "hi"}),
        b'{"$type":"app.bsky.feed.post","text":"hi"}',
    ),
    "blob": (
        rec({"img": {"$type": "blob", "ref": Link(CID_RAW), "mimeType": "image/jpeg", "size": 5}}),
        b'{"img":{"$type":"blob","ref":{"$link":"'
        + CID_STRINGS[1].encode()
        + b'"},"mimeType":"image/jpeg","size":5}}',
    ),
    "blob with literal $link ref and float size": (
        rec({"$type": "blob", "ref": {"$link": CID_STRINGS[0]}, "mimeType": "", "size": 7.0}),
        b'{"$type":"blob","ref":{"$link":"'
        + CID_STRINGS[0].encode()
        + b'"},"mimeType":"","size":7}',
    ),
    "blobs in an array": (
        rec({"a": [{"$type": "blob", "ref": Link(CID_V0), "mimeType": "x", "size": -1}]}),
        None,
    ),
    "literal $link v1": (rec({"a": {"$link": CID_STRINGS[0]}}), None),
    "literal $link v0": (rec({"a": {"$link": CID_STRINGS[2]}}), None),
    "literal $link upper-case base32": (
        rec({"a": {"$link": "B" + CID_STRINGS[0][1:].upper()}}),
        None,
    ),
    "literal $bytes": (rec({"a": {"$bytes": "AAAA"}}), b'{"a":{"$bytes":"AAAA"}}'),
    "literal $bytes unpadded": (rec({"a": {"$bytes": "AAA"}}), None),
    "legacy blob": (rec({"cid": CID_STRINGS[0], "mimeType": "image/png"}), None),
    "key of 8192 bytes": (rec({"k" * 8192: 1}), None),
    "array of 131072 items": (rec({"a": [0] * 131072}), None),
    "record of exactly 1 MiB": (rec({"a": "x" * ((1 << 20) - 8)}), None),
    "go escapes": (
        rec({"s": "".join(map(chr, range(0x20))) + '\x7f"\\/&<>\u2028\u2029é😀'}),
        b'{"s":"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\u0008\\t\\n\\u000b'
        b"\\u000c\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017"
        b'\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f\\"\\\\/\\u0026\\u003c'
        b'\\u003e\\u2028\\u2029\xc3\xa9\xf0\x9f\x98\x80"}',
    ),
    "go escapes in keys": (
        rec({"<&>\b": 1, "\\b": 2, "\\\b": 3}),
        b'{"\\u003c\\u0026\\u003e\\u0008":1,"\\\\\\u0008":3,"\\\\b":2}',
    ),
    "U+2027 and other E2 sequences stay raw": (
        rec({"s": "\u2027\u202a\u20ac"}),
        b'{"s":"\xe2\x80\xa7\xe2\x80\xaa\xe2\x82\xac"}',
    ),
}


@pytest.mark.parametrize("block, expected", VALID_RECORDS.values(), ids=VALID_RECORDS.keys())
def test_valid_records(block: bytes, expected: bytes | None) -> None:
    kind, json = same_render(block)
    assert kind == "ok"
    if expected is not None:
        assert json == expected
    assert orjson.loads(json) is not None


F64 = struct.Struct(">d").pack
INVALID_RECORDS = {
    "empty": b"",
    "top level array": rec([1]),
    "top level int": rec(1),
    "top level string": rec("a"),
    "top level link": tag42(b"\x00" + CID_V1),  # decodes to a {"$link"} dict: not a map
    "top level byte string": encode(b"\x00"),
    "trailing byte": rec({"a": 1}) + b"\x00",
    "truncated": rec({"a": "abc"})[:-1],
    "non-minimal int 1 byte": raw_map((key("a"), b"\x18\x17")),
    "non-minimal int 2 bytes": raw_map((key("a"), b"\x19\x00\xff")),
    "non-minimal int 4 bytes": raw_map((key("a"), b"\x1a\x00\x00\xff\xff")),
    "non-minimal int 8 bytes": raw_map((key("a"), b"\x1b\x00\x00\x00\x00\xff\xff\xff\xff")),
    "non-minimal negative int": raw_map((key("a"), b"\x38\x00")),
    "non-minimal string length": raw_map((key("a"), b"\x78\x01a")),
    "non-minimal key length": raw_map((b"\x78\x01a", b"\x01")),
    "non-minimal map length": b"\xb8\x01" + key("a") + b"\x01",
    "non-minimal array length": raw_map((key("a"), b"\x98\x01\x01")),
    "non-minimal byte string length": raw_map((key("a"), b"\x58\x01\x00")),
    "non-minimal tag": raw_map((key("a"), b"\xd9\x00\x2a" + encode(b"\x00" + CID_V1))),
    "indefinite map": b"\xbf" + key("a") + b"\x01\xff",
    "indefinite array": raw_map((key("a"), b"\x9f\x01\xff")),
    "indefinite string": raw_map((key("a"), b"\x7f\x61a\xff")),
    "indefinite bytes": raw_map((key("a"), b"\x5f\x41a\xff")),
    "reserved info 28": raw_map((key("a"), b"\x1c")),
    "reserved info 30": raw_map((key("a"), b"\x5e")),
    "break byte": raw_map((key("a"), b"\xff")),
    "unsorted keys": raw_map((key("b"), b"\x01"), (key("a"), b"\x02")),
    "bytewise but not length-first order": raw_map((key("aa"), b"\x01"), (key("b"), b"\x02")),
    "duplicate keys": raw_map((key("a"), b"\x01"), (key("a"), b"\x02")),
    "integer key": raw_map((b"\x01", b"\x01")),
    "byte string key": raw_map((encode(b"a"), b"\x01")),
    "invalid UTF-8 value": raw_map((key("a"), b"\x61\xff")),
    "invalid UTF-8 key": raw_map((b"\x61\xff", b"\x01")),
    "UTF-8 surrogate": raw_map((key("a"), b"\x63\xed\xa0\x80")),
    "overlong UTF-8": raw_map((key("a"), b"\x62\xc0\x80")),
    "UTF-8 above U+10FFFF": raw_map((key("a"), b"\x64\xf4\x90\x80\x80")),
    "truncated UTF-8": raw_map((key("a"), b"\x62a\xe2")),
    "tag 0": raw_map((key("a"), b"\xc0" + key("2026"))),
    "tag 43": raw_map((key("a"), b"\xd8\x2b" + encode(b"\x00" + CID_V1))),
    "tag 42 around text": raw_map((key("a"), b"\xd8\x2a" + key("x"))),
    "tag 42 without 0x00 prefix": raw_map((key("a"), tag42(b"\x01" + CID_V1))),
    "tag 42 of only the prefix": raw_map((key("a"), tag42(b"\x00"))),
    "tag 42 empty": raw_map((key("a"), tag42(b""))),
    "tag 42 trailing byte after CID": raw_map((key("a"), tag42(b"\x00" + CID_V1 + b"\x00"))),
    "tag 42 truncated CID": raw_map((key("a"), tag42(b"\x00" + CID_V1[:-1]))),
    "tag 42 v0 with trailing byte": raw_map((key("a"), tag42(b"\x00" + CID_V0 + b"\x00"))),
    "tag 42 version 2": raw_map((key("a"), tag42(b"\x00\x02" + CID_V1[1:]))),
    "tag 42 version 0 varint": raw_map((key("a"), tag42(b"\x00\x00" + CID_V1[1:]))),
    "tag 42 non-minimal codec varint": raw_map(
        (key("a"), tag42(b"\x00\x01\xf1\x00\x12\x20" + bytes(32)))
    ),
    "tag 42 10-byte codec varint": raw_map(
        (key("a"), tag42(b"\x00\x01" + b"\xff" * 9 + b"\x01\x12\x00"))
    ),
    "tag 42 digest of 65 bytes": raw_map((key("a"), tag42(b"\x00\x01\x71\x12\x41" + bytes(65)))),
    "tag 42 runs past the end": raw_map((key("a"), b"\xd8\x2a\x58\x25\x00")),
    "float 1.5": rec({"a": 1.5}),
    "float 2**63": rec({"a": 2.0**63}),
    "float -2**63 - 2048": rec({"a": -(2.0**63) - 2048}),
    "float 1e300": rec({"a": 1e300}),
    "float nan": raw_map((key("a"), b"\xfb" + F64(float("nan")))),
    "float inf": rec({"a": float("inf")}),
    "float -inf": rec({"a": float("-inf")}),
    "half float": raw_map((key("a"), b"\xf9\x3c\x00")),
    "single float": raw_map((key("a"), b"\xfa\x3f\x80\x00\x00")),
    "truncated float": raw_map((key("a"), b"\xfb\x3f\xf0")),
    "int64 max + 1": rec({"a": 1 << 63}),
    "uint64 max": rec({"a": (1 << 64) - 1}),
    "int64 min - 1": rec({"a": -(1 << 63) - 1}),
    "undefined": raw_map((key("a"), b"\xf7")),
    "simple 16": raw_map((key("a"), b"\xf0")),
    "simple 24 form": raw_map((key("a"), b"\xf8\x20")),
    "false in simple 24 form": raw_map((key("a"), b"\xf8\x14")),
    "reserved major 7": raw_map((key("a"), b"\xfc")),
    "depth 129": nested(129),
    "depth 129 with maps": nested_maps(129),
    "depth 129, innermost an empty array": nested(128, []),
    "key of 8193 bytes": rec({"k" * 8193: 1}),
    "array of 131073 items": rec({"a": [0] * 131073}),
    "array head of 131073 items, no items": raw_map((key("a"), b"\x9a\x00\x02\x00\x01")),
    "map head of 131073 entries, no entries": b"\xba\x00\x02\x00\x01",
    "array head of 2**64-1 items": raw_map((key("a"), b"\x9b" + b"\xff" * 8)),
    "string head past the end": raw_map((key("a"), b"\x7a\x00\x10\x00\x00")),
    "string head of 2**64-1 bytes": raw_map((key("a"), b"\x7b" + b"\xff" * 8)),
    "record of 1 MiB + 1": rec({"a": "x" * ((1 << 20) - 7)}),
    "$type empty": rec({"$type": ""}),
    "$type integer": rec({"$type": 1}),
    "$type null": rec({"$type": None}),
    "$type link": rec({"$type": Link(CID_V1)}),
    "blob missing size": rec({"$type": "blob", "ref": Link(CID_V1), "mimeType": "x"}),
    "blob extra key": rec(
        {"$type": "blob", "ref": Link(CID_V1), "mimeType": "x", "size": 1, "z": 0}
    ),
    "blob size float 1.5": rec(
        {"$type": "blob", "ref": Link(CID_V1), "mimeType": "x", "size": 1.5}
    ),
    "blob size string": rec({"$type": "blob", "ref": Link(CID_V1), "mimeType": "x", "size": "1"}),
    "blob size bool": rec({"$type": "blob", "ref": Link(CID_V1), "mimeType": "x", "size": True}),
    "blob size null": rec({"$type": "blob", "ref": Link(CID_V1), "mimeType": "x", "size": None}),
    "blob mimeType int": rec({"$type": "blob", "ref": Link(CID_V1), "mimeType": 1, "size": 1}),
    "blob ref string": rec({"$type": "blob", "ref": CID_STRINGS[0], "mimeType": "x", "size": 1}),
    "blob ref bytes": rec({"$type": "blob", "ref": CID_V1, "mimeType": "x", "size": 1}),
    "blob ref bad $link": rec(
        {"$type": "blob", "ref": {"$link": "nope"}, "mimeType": "x", "size": 1}
    ),
    "blob ref {$link, x}": rec(
        {"$type": "blob", "ref": {"$link": CID_STRINGS[0], "x": 1}, "mimeType": "x", "size": 1}
    ),
    "blob ref is a blob": rec(
        {
            "$type": "blob",
            "mimeType": "x",
            "size": 1,
            "ref": {"$type": "blob", "ref": Link(CID_V1), "mimeType": "x", "size": 1},
        }
    ),
    "blob nested in array": rec({"a": [{"$type": "blob", "ref": Link(CID_V1), "size": 1}]}),
    "$link not a CID": rec({"a": {"$link": "hello"}}),
    "$link empty": rec({"a": {"$link": ""}}),
    "$link integer": rec({"a": {"$link": 1}}),
    "$link as tag 42": rec({"a": {"$link": Link(CID_V1)}}),
    "$link with another key": rec({"a": {"$link": CID_STRINGS[0], "b": 1}}),
    "$link with $type": rec({"a": {"$link": CID_STRINGS[0], "$type": "x"}}),
    "$link truncated CID string": rec({"a": {"$link": CID_STRINGS[0][:-3]}}),
    "top-level $link with extra key": rec({"$link": CID_STRINGS[0], "a": 1}),
    "$bytes not base64": rec({"a": {"$bytes": "@@@@"}}),
    "$bytes one char too many": rec({"a": {"$bytes": "AAAAA"}}),
    "$bytes padding inside": rec({"a": {"$bytes": "A=AA"}}),
    "$bytes non-ASCII": rec({"a": {"$bytes": "AAé="}}),
    "$bytes integer": rec({"a": {"$bytes": 1}}),
    "$bytes as bytes": rec({"a": {"$bytes": b"x"}}),
    "$bytes with another key": rec({"a": {"$bytes": "AAAA", "b": 1}}),
}


@pytest.mark.parametrize("block", INVALID_RECORDS.values(), ids=INVALID_RECORDS.keys())
def test_invalid_records(block: bytes) -> None:
    assert same_render(block) == ("raises", InvalidRecordError)


def test_the_base64_rule_of_literal_bytes_maps_exhaustively() -> None:
    """Every string up to 6 characters over a small alphabet, as the value of a $bytes map."""
    texts = [
        "".join(chars) for size in range(7) for chars in itertools.product("A=/é", repeat=size)
    ]
    accepted = 0
    for text in texts:
        kind, _ = same_render(rec({"$bytes": text}))
        accepted += kind == "ok"
    assert 0 < accepted < len(texts)


# ---------------------------------------------------------------------------------------------
# render_record: fuzzing


@FUZZ
@given(index=st.integers(min_value=0), edits=EDITS)
def test_render_mutated_corpus_records(corpus: Corpus, index: int, edits: list[Any]) -> None:
    same_render(mutate(corpus.records[index % len(corpus.records)], edits))


KEYS = st.one_of(
    st.sampled_from(
        [
            "$type",
            "$link",
            "$bytes",
            "ref",
            "mimeType",
            "size",
            "cid",
            "a",
            "b",
            "aa",
            "text",
            "é",
            "<&>",
            "\u2028",
            "\\b",
        ]
    ),
    st.text(max_size=6),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 64), (1 << 64) - 1),
    st.sampled_from([(1 << 63) - 1, 1 << 63, -(1 << 63), -(1 << 63) - 1, 23, 24, 255, 256]),
    st.floats(),
    st.sampled_from([1.0, -0.0, 2.0**63, -(2.0**63), 1.5, 2.0**53, 1e300]),
    st.text(max_size=20),
    st.text(alphabet="AZaz09+/=é", max_size=9),
    st.sampled_from(["blob", "", *CID_STRINGS, CID_STRINGS[0].upper(), "Qm", "bafy"]),
    st.binary(max_size=40),
    st.sampled_from(VALID_CIDS).map(Link),
    st.binary(min_size=2, max_size=40).map(Link),  # usually an invalid CID
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    blob = st.fixed_dictionaries(
        {"$type": st.just("blob"), "ref": children, "mimeType": children, "size": children},
        optional={"extra": children},
    )
    return st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5), blob
    )


VALUES = st.recursive(SCALARS, _containers, max_leaves=20)
RECORDS = st.dictionaries(KEYS, VALUES, max_size=6)


@FUZZ
@given(value=RECORDS)
def test_render_generated_records(value: dict[str, Any]) -> None:
    same_render(encode(value))


@FUZZ
@given(value=RECORDS, edits=EDITS)
def test_render_mutated_generated_records(value: dict[str, Any], edits: list[Any]) -> None:
    same_render(mutate(encode(value), edits))


# ---------------------------------------------------------------------------------------------
# is_canonical_frame

HEADER = encode({"op": 1, "t": "#commit"})
CANONICAL_FRAMES = {
    "plain": (HEADER + encode({"seq": 1}), True),
    "uint64 max": (HEADER + encode({"seq": (1 << 64) - 1}), True),
    "nint64 min": (HEADER + encode({"seq": -(1 << 64)}), True),
    "float 1.5": (HEADER + encode({"x": 1.5}), True),
    "link": (HEADER + encode({"commit": Link(CID_V1)}), True),
    "byte string holding a CID": (HEADER + encode({"blocks": CID_V1}), True),
    "byte string shaped like a CID": (HEADER + encode({"blocks": b"\x01\x00\x00\x00"}), True),
    "depth 128": (HEADER + nested(128), True),
    "depth 129": (HEADER + nested(129), False),
    "one item": (HEADER, False),
    "three items": (HEADER + encode({}) + encode({}), False),
    "trailing byte": (HEADER + encode({}) + b"\x00", False),
    "truncated": (HEADER + encode({"a": "bc"})[:-1], False),
    "link with a trailing byte": (
        HEADER + raw_map((key("c"), tag42(b"\x00" + CID_V1 + b"Z"))),
        False,
    ),
    "link with a 65-byte digest": (
        HEADER + raw_map((key("c"), tag42(b"\x00\x01\x71\x12\x41" + bytes(65)))),
        False,
    ),
    "non-minimal int in header": (raw_map((key("op"), b"\x18\x01")) + encode({}), False),
    "non-minimal length": (HEADER + raw_map((key("a"), b"\x58\x01\x00")), False),
    "single float": (HEADER + raw_map((key("a"), b"\xfa\x3f\x80\x00\x00")), False),
    "half float": (HEADER + raw_map((key("a"), b"\xf9\x3c\x00")), False),
    "nan": (HEADER + raw_map((key("a"), b"\xfb" + F64(float("nan")))), False),
    "negative zero (libipld refuses it)": (HEADER + encode({"a": -0.0}), False),
    "positive zero": (HEADER + encode({"a": 0.0}), True),
    "unsorted keys": (HEADER + raw_map((key("b"), b"\x01"), (key("a"), b"\x01")), False),
    "duplicate keys": (HEADER + raw_map((key("a"), b"\x01"), (key("a"), b"\x01")), False),
    "invalid UTF-8": (HEADER + raw_map((key("a"), b"\x61\xff")), False),
    "undefined": (HEADER + raw_map((key("a"), b"\xf7")), False),
    "tag 0": (HEADER + raw_map((key("a"), b"\xc0\x01")), False),
    "indefinite": (HEADER + b"\xbf\xff", False),
    "empty": (b"", False),
}


@pytest.mark.parametrize("data, expected", CANONICAL_FRAMES.values(), ids=CANONICAL_FRAMES.keys())
def test_canonical_frame_cases(data: bytes, expected: bool) -> None:
    assert same_canonical(data) is expected


def _compare_frame(data: bytes) -> None:
    try:
        parts = libipld.decode_dag_cbor_multi(data)
    except (ValueError, RecursionError, OverflowError):
        assert C.is_canonical_frame(data, None, None) in (True, False)  # garbage: only be safe
        return
    header, body = [*parts, None, None][:2]
    assert C.is_canonical_frame(data, header, body) is canonical.is_canonical_frame(
        data, header, body
    )


@FUZZ
@given(index=st.integers(min_value=0), edits=EDITS)
def test_canonical_mutated_corpus_frames(corpus: Corpus, index: int, edits: list[Any]) -> None:
    data = corpus.frames[index % len(corpus.frames)]
    # Aim most edits at the frame's head, where the structure is (the rest is the CAR).
    edits = [(kind, position % 400, chunk) for kind, position, chunk in edits]
    _compare_frame(mutate(data, edits))


@FUZZ
@given(
    header=st.dictionaries(KEYS, SCALARS, max_size=3),
    body=RECORDS,
    edits=st.one_of(st.just([]), EDITS),
)
def test_canonical_generated_frames(header: Any, body: Any, edits: list[Any]) -> None:
    _compare_frame(
        mutate(encode(header) + encode(body), edits) if edits else encode(header) + encode(body)
    )


# ---------------------------------------------------------------------------------------------
# check_car and find_block


def car_bytes(header: bytes, *blocks: bytes) -> bytes:
    """A CAR from an encoded header and already length-prefixed blocks."""
    return encode_varint(len(header)) + header + b"".join(blocks)


def entry(cid: bytes, data: bytes) -> bytes:
    return encode_varint(len(cid) + len(data)) + cid + data


GOOD_HEADER = encode({"roots": [Link(CID_V1)], "version": 1})
BLOCK = entry(sha_cid(b"hello"), b"hello")
CARS = {
    "usual": (car_bytes(GOOD_HEADER, BLOCK), True),
    "no blocks": (car_bytes(GOOD_HEADER), True),
    "no roots": (car_bytes(encode({"roots": [], "version": 1}), BLOCK), True),
    "roots of anything": (car_bytes(encode({"roots": [1, "x"], "version": 1})), True),
    "extra header key": (car_bytes(encode({"roots": [], "version": 1, "zz": {"a": 1.5}})), True),
    "non-minimal block length": (car_bytes(GOOD_HEADER, b"\x81\x00x"), True),
    "4-byte block length": (car_bytes(GOOD_HEADER, b"\x81\x80\x80\x00x"), True),
    "non-minimal header length": (b"\xba\x00" + GOOD_HEADER, True),  # CAR varints may be
    "empty": (b"", False),
    "header length 0": (b"\x00", False),
    "header runs past the end": (b"\x40" + GOOD_HEADER, False),
    "header not a map": (car_bytes(encode([1])), False),
    "version 2": (car_bytes(encode({"roots": [], "version": 2})), False),
    "version true": (car_bytes(raw_map((key("roots"), b"\x80"), (key("version"), b"\xf5"))), False),
    "version 1.0": (car_bytes(encode({"roots": [], "version": 1.0})), False),
    "version non-minimal": (
        car_bytes(raw_map((key("roots"), b"\x80"), (key("version"), b"\x18\x01"))),
        False,
    ),
    "version missing": (car_bytes(encode({"roots": []})), False),
    "roots missing": (car_bytes(encode({"version": 1})), False),
    "roots not an array": (car_bytes(encode({"roots": {}, "version": 1})), False),
    "negative zero in the header": (car_bytes(encode({"roots": [-0.0], "version": 1})), False),
    "root CID invalid (usual header shape)": (
        car_bytes(encode({"roots": [Link(b"\x07" + CID_V1[1:])], "version": 1}), BLOCK),
        False,
    ),
    "root CID with trailing byte": (
        car_bytes(encode({"roots": [Link(CID_V1 + b"\x00")], "version": 1})),
        False,
    ),
    "header keys unsorted": (
        car_bytes(raw_map((key("version"), b"\x01"), (key("roots"), b"\x80"))),
        False,
    ),
    "header with a trailing byte inside": (
        encode_varint(len(GOOD_HEADER) + 1) + GOOD_HEADER + b"\x00",
        False,
    ),
    "empty block": (car_bytes(GOOD_HEADER, b"\x00"), False),
    "empty block, 2-byte zero": (car_bytes(GOOD_HEADER, b"\x80\x00"), False),
    "empty block, 3-byte zero": (car_bytes(GOOD_HEADER, b"\x80\x80\x00"), False),
    "5-byte block length": (car_bytes(GOOD_HEADER, b"\x81\x80\x80\x80\x00x"), False),
    "block length truncated": (car_bytes(GOOD_HEADER, b"\x81"), False),
    "block runs past the end": (car_bytes(GOOD_HEADER, BLOCK[:-1]), False),
    "bytes after the last block": (car_bytes(GOOD_HEADER, BLOCK, b"\x05ab"), False),
}


@pytest.mark.parametrize("data, valid", CARS.values(), ids=CARS.keys())
def test_check_car_cases(data: bytes, valid: bool) -> None:
    assert same_check_car(data) == (("ok", None) if valid else ("raises", MalformedCARError))


def _compare_find(data: bytes, cid: bytes) -> bytes | None:
    got = C.find_block(data, cid)
    assert got == car.find_block(data, cid)
    return got  # type: ignore[no-any-return]


def test_find_block_cases() -> None:
    records = {
        codec: (sha_cid(b"data-" + bytes([codec]), codec), b"data-" + bytes([codec]))
        for codec in (0x71, 0x55)
    }
    v0_data = b"a v0 block"
    v0 = b"\x12\x20" + hashlib.sha256(v0_data).digest()
    big = b"x" * 300  # a two-byte length varint
    big_cid = sha_cid(big)
    blocks = [entry(*records[0x71]), entry(*records[0x55]), entry(v0, v0_data), entry(big_cid, big)]
    data = car_bytes(GOOD_HEADER, *blocks)
    for cid, block in [*records.values(), (v0, v0_data), (big_cid, big)]:
        assert _compare_find(data, cid) == block
    assert _compare_find(data, sha_cid(b"absent")) is None
    assert _compare_find(data, b"") is None  # the reference used to loop forever here
    assert _compare_find(data, records[0x71][0][:-1]) is None
    sha512 = b"\x01\x71\x13\x40" + hashlib.sha512(b"x").digest()
    assert _compare_find(car_bytes(GOOD_HEADER, entry(sha512, b"x")), sha512) is None
    mentioned = car_bytes(GOOD_HEADER, entry(sha_cid(b"m"), b"m" + records[0x71][0]))
    assert _compare_find(mentioned, records[0x71][0]) is None  # mentioned, not stored
    wrong = car_bytes(GOOD_HEADER, entry(records[0x71][0], b"tampered"))
    assert _compare_find(wrong, records[0x71][0]) is None
    assert _compare_find(records[0x71][0] + b"x", records[0x71][0]) is None  # at offset 0


@FUZZ
@given(index=st.integers(min_value=0), edits=EDITS, cid_edits=st.one_of(st.just([]), EDITS))
def test_car_mutated_corpus(
    corpus: Corpus, index: int, edits: list[Any], cid_edits: list[Any]
) -> None:
    data, cids = corpus.cars[index % len(corpus.cars)]
    # Half the edits land in the header and first blocks, where check_car looks closest.
    edits = [
        (kind, position % 200 if position % 2 else position, chunk)
        for kind, position, chunk in edits
    ]
    mutated = mutate(data, edits)
    same_check_car(mutated)
    for cid in cids:
        _compare_find(mutated, cid)
        if cid_edits:
            _compare_find(data, mutate(cid, cid_edits))


@FUZZ
@given(
    header=st.one_of(
        RECORDS,
        st.fixed_dictionaries(
            {"roots": st.lists(VALUES, max_size=3), "version": SCALARS}, optional={"x": VALUES}
        ),
    ),
    blocks=st.lists(st.binary(max_size=60), max_size=4),
)
def test_car_generated(header: Any, blocks: list[bytes]) -> None:
    data = car_bytes(encode(header), *(encode_varint(len(b)) + b for b in blocks))
    same_check_car(data)
    for block in blocks:
        _compare_find(data, sha_cid(block))


# ---------------------------------------------------------------------------------------------
# SHA-256


# Both block functions: this CPU's fastest (SHA-NI where present) and the portable one.
@pytest.mark.parametrize("portable", [False, True], ids=["fastest", "portable"])
@pytest.mark.parametrize("size", [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 1 << 20])
def test_sha256_against_hashlib(size: int, portable: bool) -> None:
    data = (bytes(range(251)) * (size // 251 + 1))[:size]
    assert C._sha256(data, portable=portable) == hashlib.sha256(data).digest()


@FUZZ
@given(data=st.binary(max_size=300), portable=st.booleans())
def test_sha256_fuzzed(data: bytes, portable: bool) -> None:
    assert C._sha256(data, portable=portable) == hashlib.sha256(data).digest()


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="reads the CPU flags from Linux")
def test_sha256_uses_the_cpu_sha_extensions_when_present() -> None:
    with open("/proc/cpuinfo") as cpuinfo:
        flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
    has_sha_ni = {"sha_ni", "ssse3", "sse4_1"} <= set(flags)
    chosen = C.SHA256_IMPLEMENTATION
    assert chosen == ("sha-ni" if has_sha_ni else "portable")


# ---------------------------------------------------------------------------------------------
# is_rfc3339 (cases are what Go's time.Parse(time.RFC3339, s) does)

RFC3339 = {
    "2026-07-04T14:38:07.517Z": True,
    "2026-07-04T14:38:07Z": True,
    "2026-07-04T14:38:07.123456789123Z": True,
    "2026-07-04T14:38:07+05:30": True,
    "2026-07-04T14:38:07-00:00": True,
    "2024-02-29T00:00:00Z": True,
    "2000-02-29T00:00:00Z": True,
    "0000-02-29T00:00:00Z": True,  # year 0: in range for Go, and a leap year
    "9999-12-31T23:59:59Z": True,
    "2026-01-01T1:02:03Z": True,  # Go's fallback parser takes a one-digit hour
    "2026-01-01T01:02:03,5Z": True,  # ... a comma before the fraction
    "2026-01-01T01:02:03+24:00": True,  # ... and zone offsets up to 24:60
    "2026-01-01T01:02:03-23:60": True,
    "2026-01-01T01:02:03+24:61": False,
    "2026-01-01T01:02:03+25:00": False,
    "2026-02-29T00:00:00Z": False,
    "1900-02-29T00:00:00Z": False,
    "2026-04-31T00:00:00Z": False,
    "2026-00-01T00:00:00Z": False,
    "2026-13-01T00:00:00Z": False,
    "2026-01-00T00:00:00Z": False,
    "2026-01-01T24:00:00Z": False,
    "2026-01-01T00:60:00Z": False,
    "2026-01-01T00:00:60Z": False,
    "2026-01-01T001:00:00Z": False,
    "2026-01-01T:00:00Z": False,
    "2026-01-01T00:00:00": False,
    "2026-01-01T00:00:00.Z": False,
    "2026-01-01T00:00:00.5": False,
    "2026-01-01T00:00:00+0100": False,
    "2026-01-01T00:00:00+01": False,
    "2026-01-01T00:00:00z": False,
    "2026-01-01t00:00:00Z": False,
    "2026-01-01 00:00:00Z": False,
    "2026-1-01T00:00:00Z": False,
    "26-01-01T00:00:00Z": False,
    "+2026-01-01T00:00:00Z": False,
    "2026-01-01T00:00:00Z\n": False,
    "2026-01-01T00:00:00ZZ": False,
    "٢٠٢٦-01-01T00:00:00Z": False,  # Arabic-Indic digits: Python's \d takes them, Go does not
    "2026-01-01T00:00:00.٥Z": False,
    "2026-01-01T00:00:00\ud800": False,
    "": False,
}


@pytest.mark.parametrize("text, expected", RFC3339.items(), ids=[repr(t) for t in RFC3339])
def test_rfc3339_cases(text: str, expected: bool) -> None:
    assert same_rfc3339(text) is expected


def test_rfc3339_refuses_non_strings() -> None:
    for value in (b"2026-01-01T00:00:00Z", None, 1):
        with pytest.raises(TypeError):
            C.is_rfc3339(value)
        with pytest.raises(TypeError):
            rfc3339.is_rfc3339(value)  # type: ignore[arg-type]


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """Near-valid timestamps: fields slightly out of range, optional fraction and zone forms."""
    n = draw(st.integers(0, 10_000))
    year = draw(st.sampled_from([f"{n % 10000:04d}", "0000", "2000", "1900", "2024", str(n)]))
    month, day, minute, second = (draw(st.integers(0, 61)) for _ in range(4))
    hour = draw(st.sampled_from([f"{draw(st.integers(0, 25)):02d}", str(draw(st.integers(0, 9)))]))
    fraction = draw(st.sampled_from(["", ".5", ",123", ".", ".123456789012"]))
    zone = draw(
        st.sampled_from(
            [
                "Z",
                "z",
                "",
                f"+{draw(st.integers(0, 26)):02d}:{draw(st.integers(0, 62)):02d}",
                "-07:00",
                "+0700",
            ]
        )
    )
    return f"{year}-{month:02d}-{day:02d}T{hour}:{minute:02d}:{second:02d}{fraction}{zone}"


@FUZZ
@given(
    text=st.one_of(timestamps(), st.text(alphabet="0123456789-:TZ+., ٢", max_size=30)),
    edits=st.one_of(st.just([]), EDITS),
)
def test_rfc3339_fuzzed(text: str, edits: list[Any]) -> None:
    if edits:
        text = mutate(text.encode(), edits).decode("utf-8", "replace")
    same_rfc3339(text)


# ---------------------------------------------------------------------------------------------
# commit_json

CID_TEXT = CID_STRINGS[0]
COMMITS = {
    "create": ("did:plc:x", 1, "3mabc", "create", "app.bsky.feed.post", "3l", b'{"a":1}', CID_TEXT),
    "delete": ("did:plc:x", 1, "3mabc", "delete", "app.bsky.feed.post", "3l", None, None),
    "all empty": ("", 0, "", "", "", "", None, ""),
    "empty record bytes kept": ("d", 1, "", "", "", "", b"", None),
    "escapes in strings": (
        'did:<&>\u2028\b\f\x01"\\',
        -1,
        "r&",
        "o<",
        "c>",
        "k\u2029",
        None,
        "c\b",
    ),
    "go escape applied to the record": (
        "d",
        1,
        "r",
        "o",
        "c",
        "k",
        b'{"a":"&<>\\b\\f\\\\b\\\\\\f\xe2\x80\xa8\xe2\x80\xa9\\u0008"}',
        None,
    ),
    "int64 bounds": ("d", -(1 << 63), "", "", "", "", None, None),
    "uint64 max": ("d", (1 << 64) - 1, "", "", "", "", None, None),
    "bool time_us": ("d", True, "", "", "", "", None, None),
    "beyond 64 bits": ("d", 1 << 64, "", "", "", "", None, None),
    "below int64": ("d", -(1 << 63) - 1, "", "", "", "", None, None),
    "surrogate in did": ("\ud800", 1, "", "", "", "", None, None),
    "surrogate in cid": ("d", 1, "", "", "", "", None, "\udfff"),
    "unicode": ("did:é😀", 1, "ü", "", "", "", None, None),
}


@pytest.mark.parametrize("args", COMMITS.values(), ids=COMMITS.keys())
def test_commit_json_cases(args: tuple[Any, ...]) -> None:
    kind, json = same_commit_json(*args)
    if kind == "ok" and args[6] != b"":
        assert orjson.loads(json)["kind"] == "commit"


def test_commit_json_accepts_keywords() -> None:
    kwargs = {
        "did": "d",
        "time_us": 5,
        "rev": "r",
        "operation": "create",
        "collection": "c",
        "rkey": "k",
        "record_json": b"{}",
        "cid": "x",
    }
    assert C.commit_json(**kwargs) == envelope.commit_json(**kwargs)  # type: ignore[arg-type]


FRAGMENT_PIECES = st.sampled_from(
    [
        b"\\",
        b"b",
        b"f",
        b"&",
        b"<",
        b">",
        b"\xe2\x80\xa8",
        b"\xe2\x80\xa9",
        b"\xe2",
        b"\x80",
        b"x",
        b'"',
        b"u",
    ]
)


@FUZZ
@given(
    strings=st.lists(st.text(max_size=12), min_size=6, max_size=6),
    time_us=st.integers(-(1 << 64), 1 << 65),
    record_json=st.one_of(
        st.none(), st.binary(max_size=30), st.lists(FRAGMENT_PIECES, max_size=12).map(b"".join)
    ),
    cid=st.one_of(st.none(), st.text(max_size=10)),
)
def test_commit_json_fuzzed(
    strings: list[str], time_us: int, record_json: bytes | None, cid: str | None
) -> None:
    did, rev, operation, collection, rkey, _ = strings
    same_commit_json(did, time_us, rev, operation, collection, rkey, record_json, cid)
