"""The synthetic firehose makes frames a relay could have sent: real CIDs, real CARs, real MSTs.

The checks here are independent of the generator: CAR files are split with a small reader of
their own, MSTs are walked from the commit's ``data`` root with libipld, and the expected
key → CID map of every repository is replayed from the ``ops`` of the frames themselves.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from pathlib import Path
from typing import Any

import libipld
import pytest
import zstandard

from jetflow.codec.capture import CaptureParser
from jetflow.codec.cbor import encode
from jetflow.codec.cid import Link, compute_cid
from jetflow.codec.firehose import FirehoseDecoder
from jetflow.events import Event
from jetflow.testing.synth import (
    DEFAULT_MIX,
    FAULT_SKIP_REASONS,
    MAX_RECORDS_PER_REPO,
    SyntheticFirehose,
    tid,
    write_capture,
)

FRAMES = 5000
SEED = 7
TID = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
DAG_CBOR_SHA256 = b"\x01\x71\x12\x20"


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    source = SyntheticFirehose(SEED, include_sync=True, include_info=True, start_seq=1000)
    return list(source.frames(FRAMES))


@pytest.fixture(scope="module")
def decoded(frames: list[bytes]) -> tuple[FirehoseDecoder, list[list[Event]]]:
    decoder = FirehoseDecoder()
    return decoder, [decoder.decode(frame) for frame in frames]


def split(frame: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    header, body = libipld.decode_dag_cbor_multi(frame)
    return header, body


# -- an independent CAR and MST reader ----------------------------------------------------------


def varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def car_blocks(car: bytes) -> tuple[list[bytes], dict[bytes, bytes]]:
    """Roots and raw blocks of a CAR whose CIDs are all 36-byte CIDv1 sha2-256."""
    header_len, pos = varint(car, 0)
    header = libipld.decode_dag_cbor(car[pos : pos + header_len])
    assert header["version"] == 1
    pos += header_len
    blocks: dict[bytes, bytes] = {}
    while pos < len(car):
        size, pos = varint(car, pos)
        cid, block = car[pos : pos + 36], car[pos + 36 : pos + size]
        assert cid[:4] in (DAG_CBOR_SHA256, b"\x01\x55\x12\x20")
        blocks[cid] = block
        pos += size
    assert pos == len(car)
    return header["roots"], blocks


def key_layer(key: bytes) -> int:
    bits = "".join(f"{byte:08b}" for byte in hashlib.sha256(key).digest())
    return (len(bits) - len(bits.lstrip("0"))) // 2


def common_prefix(a: bytes, b: bytes) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def as_links(node: dict[str, Any]) -> dict[str, Any]:
    """An MST node with its CIDs wrapped in Link, for jetflow's exact encoder."""

    def link(value: bytes | None) -> Link | None:
        return None if value is None else Link(value)

    entries = [{"p": e["p"], "k": e["k"], "v": Link(e["v"]), "t": link(e["t"])} for e in node["e"]]
    return {"l": link(node["l"]), "e": entries}


def walk_mst(root: bytes, store: dict[bytes, Any], raw: dict[bytes, bytes]) -> dict[str, bytes]:
    """Every key → value CID of the tree at ``root``, checking the atproto MST rules."""
    out: list[tuple[bytes, bytes]] = []

    def visit(cid: bytes, layer: int | None, is_root: bool) -> None:
        node = store[cid]
        assert set(node) == {"e", "l"}
        assert encode(as_links(node)) == raw[cid], "MST node is not canonical DAG-CBOR"
        entries = node["e"]
        if layer is None:  # the root sits at the layer of its keys
            if not entries:
                assert node["l"] is None, "the top of the tree must not be an empty node"
                return
            first = entries[0]["k"]
            layer = key_layer(first)
        if not entries:
            assert not is_root
            assert node["l"] is not None and layer > 0, "an empty node only bridges a layer"
        previous = b""
        if node["l"] is not None:
            assert layer > 0
            visit(node["l"], layer - 1, False)
        for entry in entries:
            assert set(entry) == {"k", "p", "t", "v"}
            key = previous[: entry["p"]] + entry["k"]
            assert entry["p"] == common_prefix(previous, key)
            assert key_layer(key) == layer, f"{key!r} is in a node of the wrong layer"
            out.append((key, entry["v"]))
            if entry["t"] is not None:
                assert layer > 0
                visit(entry["t"], layer - 1, False)
            previous = key

    visit(root, None, True)
    keys = [key for key, _ in out]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    return {key.decode(): value for key, value in out}


def lookup(root: bytes, store: dict[bytes, Any], wanted: str) -> bytes | None:
    """Find one key by descending only the nodes on its path."""
    target = wanted.encode()
    cid: bytes | None = root
    while cid is not None:
        node = store[cid]
        previous = b""
        next_cid = node["l"]
        for entry in node["e"]:
            key = previous[: entry["p"]] + entry["k"]
            if key == target:
                value: bytes = entry["v"]
                return value
            if key > target:
                break
            next_cid = entry["t"]
            previous = key
        cid = next_cid
    return None


# -- tests --------------------------------------------------------------------------------------


def test_every_frame_decodes_without_a_single_skip(
    frames: list[bytes], decoded: tuple[FirehoseDecoder, list[list[Event]]]
) -> None:
    decoder, events = decoded
    assert decoder.stats.counts == {}
    assert decoder.stats.frames == FRAMES
    assert all(events_of_frame for events_of_frame in events)
    kinds = Counter(event.kind for batch in events for event in batch)
    assert set(kinds) == {"commit", "identity", "account", "sync", "info"}


def frame_kind(frame: bytes) -> str:
    header, body = split(frame)
    if header["t"] != "#commit":
        return str(header["t"][1:])
    last = body["ops"][-1]
    if last["action"] == "delete":
        return "delete"
    collection = last["path"].split("/")[0]
    named = {
        "app.bsky.feed.like": "like",
        "app.bsky.graph.follow": "follow",
        "app.bsky.feed.repost": "repost",
        "app.bsky.feed.post": "post",
        "app.bsky.actor.profile": "profile",
        "app.bsky.graph.block": "block",
        "app.bsky.graph.listitem": "listitem",
    }
    if collection in named:
        return named[collection]
    assert not collection.startswith("app.bsky.")
    return "custom"


def test_the_mix_follows_the_weights(frames: list[bytes]) -> None:
    counts = Counter(frame_kind(frame) for frame in frames)
    total = sum(DEFAULT_MIX.values())
    for kind, weight in DEFAULT_MIX.items():
        expected = weight / total
        sigma = (expected * (1 - expected) / FRAMES) ** 0.5
        assert abs(counts[kind] / FRAMES - expected) < 4 * sigma + 0.005, (kind, counts)


def test_a_custom_mix_is_honoured_and_bad_options_are_refused() -> None:
    source = SyntheticFirehose(1, mix={"follow": 1.0, "identity": 1.0})
    assert {frame_kind(f) for f in source.frames(200)} == {"follow", "identity"}
    for bad in (
        {"mix": {"likes": 1.0}},
        {"mix": {"like": -1.0}},
        {"mix": {"like": 0.0}},
        {"repos": 0},
        {"events_per_second": 0.0},
        {"malformed_rate": 1.5},
        {"fault_kinds": ["bit_rot"]},
    ):
        with pytest.raises(ValueError):
            SyntheticFirehose(1, **bad)


def check_commits(frames: list[bytes], first_seq: int) -> Counter[str]:
    """Check every commit against an MST replayed from the ops; count what was seen."""
    state: dict[str, dict[str, bytes]] = {}  # did -> key -> record CID, replayed from ops
    stores: dict[str, dict[bytes, Any]] = {}  # did -> every block seen so far
    raws: dict[str, dict[bytes, bytes]] = {}
    last: dict[str, tuple[str, bytes]] = {}  # did -> (rev, data root) of its latest commit
    seq = first_seq - 1
    time = ""
    seen: Counter[str] = Counter()
    for frame in frames:
        header, body = split(frame)
        if header["t"] == "#info":
            continue
        assert body["seq"] == seq + 1
        seq = body["seq"]
        assert TIME.fullmatch(body["time"]) and body["time"] >= time
        time = body["time"]
        if header["t"] == "#sync":
            roots, blocks = car_blocks(body["blocks"])
            assert list(blocks) == roots
            commit = libipld.decode_dag_cbor(blocks[roots[0]])
            assert commit["did"] == body["did"] and commit["rev"] == body["rev"]
            last[body["did"]] = (commit["rev"], commit["data"])
            continue
        if header["t"] != "#commit":
            continue
        seen["commits"] += 1
        did = body["repo"]
        assert set(body) == {
            "seq", "rebase", "tooBig", "repo", "commit", "rev", "since", "blocks", "ops",
            "blobs", "time", "prevData",
        }  # fmt: skip
        assert body["rebase"] is False and body["tooBig"] is False and body["blobs"] == []
        roots, blocks = car_blocks(body["blocks"])
        assert roots == [body["commit"]]
        for cid, block in blocks.items():
            assert cid == DAG_CBOR_SHA256 + hashlib.sha256(block).digest() == compute_cid(block)
        _, decoded_car = libipld.decode_car(body["blocks"])
        assert set(decoded_car) == set(blocks)
        commit = decoded_car[body["commit"]]
        assert set(commit) == {"did", "version", "data", "rev", "prev", "sig"}
        assert commit["did"] == did and commit["version"] == 3 and commit["prev"] is None
        assert commit["rev"] == body["rev"] and TID.fullmatch(body["rev"])
        assert isinstance(commit["sig"], bytes) and len(commit["sig"]) == 64
        previous = last.get(did)
        assert body["since"] == (previous[0] if previous else None)
        assert body["prevData"] == (previous[1] if previous else None)
        if previous:
            assert body["rev"] > previous[0]
        last[did] = (body["rev"], commit["data"])

        expected = state.setdefault(did, {})
        seen["multi_op"] += len(body["ops"]) > 1
        for op in body["ops"]:
            collection, _, rkey = op["path"].partition("/")
            assert collection and rkey
            if op["action"] == "delete":
                seen["deletes"] += 1
                assert set(op) == {"action", "path", "cid", "prev"} and op["cid"] is None
                assert op["prev"] == expected.pop(op["path"])
                assert op["prev"] not in blocks, "a delete's CAR holds no record block"
                continue
            assert op["cid"] in blocks, "the record block travels with its op"
            if op["action"] == "update":
                assert op["prev"] == expected[op["path"]]
            else:
                assert op["action"] == "create" and "prev" not in op
                assert op["path"] not in expected
                assert rkey == "self" or TID.fullmatch(rkey)
            expected[op["path"]] = op["cid"]
        assert len(expected) <= MAX_RECORDS_PER_REPO

        # The changed paths are in this CAR alone; the full tree is in the repo's CARs so far.
        for op in body["ops"]:
            if op["action"] != "delete":
                assert lookup(commit["data"], decoded_car, op["path"]) == op["cid"]
        stores.setdefault(did, {}).update(decoded_car)
        raws.setdefault(did, {}).update(blocks)
        assert walk_mst(commit["data"], stores[did], raws[did]) == expected
    return seen


def test_cars_hold_real_blocks_and_msts_that_replay_the_ops(frames: list[bytes]) -> None:
    seen = check_commits(frames, 1000)
    assert seen["commits"] > 0.9 * FRAMES and seen["deletes"] > 0.05 * FRAMES


def test_a_full_repository_evicts_its_oldest_record_in_the_same_commit() -> None:
    frames = list(SyntheticFirehose(2, repos=2, include_sync=True).frames(600))
    seen = check_commits(frames, 1)
    assert seen["multi_op"] > 100


def test_records_follow_the_lexicons_and_render_bytes_and_blobs(
    decoded: tuple[FirehoseDecoder, list[list[Event]]],
) -> None:
    _, batches = decoded
    seen: Counter[str] = Counter()
    for event in (event for batch in batches for event in batch):
        if event.kind != "commit" or event.operation == "delete":
            continue
        record = event.record
        assert record is not None and event.record_json is not None
        assert record["$type"] == event.collection
        seen[event.collection] += 1
        # Every blob renders in Jetstream's fixed order with a raw (bafkrei...) CID.
        for blob in re.findall(rb'\{"\$type":"blob"[^}]*\}[^}]*\}', event.record_json):
            assert re.fullmatch(
                rb'\{"\$type":"blob","ref":\{"\$link":"bafkrei[a-z2-7]+"\},'
                rb'"mimeType":"image/(jpeg|png|webp)","size":\d+\}',
                blob,
            ), blob
            seen["blob"] += 1
        if event.collection == "com.example.sensor.reading":
            payload = record["payload"]["$bytes"]
            checksum = base64.b64decode(record["checksum"]["$bytes"] + "==")
            assert (
                checksum
                == b"\x01\x55\x12\x20"
                + hashlib.sha256(base64.b64decode(payload + "=" * (-len(payload) % 4))).digest()
            ), "a byte string that parses as a CID still renders as $bytes"
            assert list(record["device"]["firmware"]["digest"]) == ["$bytes"]
            assert "=" not in payload, "standard base64 without padding"
            seen["bytes"] += 1
        if event.collection == "app.bsky.feed.post":
            text = record["text"].encode()
            for facet in record.get("facets", []):
                span = text[facet["index"]["byteStart"] : facet["index"]["byteEnd"]].decode()
                feature = facet["features"][0]
                kind = feature["$type"].rpartition("#")[2]
                if kind == "mention":
                    assert span.startswith("@")
                elif kind == "link":
                    assert span == feature["uri"]
                else:
                    assert kind == "tag" and span == "#" + feature["tag"]
                seen["facet#" + kind] += 1
            for key in ("reply", "embed"):
                if key in record:
                    seen[f"post.{key}"] += 1
            if "embed" in record:
                seen[record["embed"]["$type"]] += 1
            if any(ord(char) > 0x2FFF for char in record["text"]):
                seen["cjk_or_emoji"] += 1
            if re.search(r"[&<>]", record["text"]):
                seen["html_chars"] += 1
                assert re.search(rb"\\u00(26|3c|3e)", event.json)
        if event.collection == "app.bsky.actor.profile":
            assert record["avatar"]["$type"] == "blob"
        if event.collection in ("app.bsky.feed.like", "app.bsky.feed.repost"):
            assert set(record["subject"]) == {"cid", "uri"}
    for wanted in (
        "app.bsky.feed.like", "app.bsky.graph.follow", "app.bsky.feed.repost",
        "app.bsky.feed.post", "app.bsky.actor.profile", "app.bsky.graph.block",
        "app.bsky.graph.listitem", "com.example.sensor.reading", "fm.teal.alpha.feed.play",
        "blob", "facet#mention", "facet#link", "facet#tag", "post.reply", "post.embed",
        "app.bsky.embed.images", "app.bsky.embed.external", "app.bsky.embed.record",
        "app.bsky.embed.recordWithMedia", "cjk_or_emoji", "html_chars", "bytes",
    ):  # fmt: skip
        assert seen[wanted] > 0, wanted


def test_identity_and_account_frames_carry_the_relay_fields(frames: list[bytes]) -> None:
    statuses: Counter[object] = Counter()
    for frame in frames:
        header, body = split(frame)
        if header["t"] == "#identity":
            assert set(body) <= {"did", "seq", "time", "handle"}
            assert body["did"].startswith("did:plc:")
        elif header["t"] == "#account":
            assert set(body) <= {"did", "seq", "time", "active", "status"}
            assert isinstance(body["active"], bool)
            assert ("status" in body) is (not body["active"])
            statuses[body.get("status")] += 1
        elif header["t"] == "#info":
            assert body == {
                "name": "OutdatedCursor",
                "message": "Requested cursor exceeded limit. Possibly missing events",
            }
    assert statuses[None] > 0 and len(statuses) > 1


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> None:
    first = list(SyntheticFirehose(3, repos=50).frames(300))
    second = SyntheticFirehose(3, repos=50)
    assert list(second.frames(120)) + list(second.frames(180)) == first
    assert list(SyntheticFirehose(4, repos=50).frames(300)) != first


def test_start_seq_start_time_and_rate_shape_the_stream() -> None:
    from datetime import datetime

    source = SyntheticFirehose(
        0, start_seq=42, start_time=datetime(2030, 5, 6, 7, 8, 9), events_per_second=10.0
    )
    bodies = [split(frame)[1] for frame in source.frames(200)]
    assert bodies[0]["seq"] == 42 and bodies[0]["time"].startswith("2030-05-06T07:08:")
    # 200 events at 10/s span about 20 s.
    assert bodies[-1]["time"][:16] in ("2030-05-06T07:08", "2030-05-06T07:09")
    assert tid(0, 0) == "2222222222222" and tid((1 << 53) - 1, 1023) == "bzzzzzzzzzzzz"


@pytest.mark.parametrize("kind", sorted(FAULT_SKIP_REASONS))
def test_each_fault_kind_is_counted_under_its_documented_skip_reason(kind: str) -> None:
    # One repository, so the last 50 faulty commits also carry an evicting delete.
    source = SyntheticFirehose(11, repos=1, malformed_rate=1.0, fault_kinds=[kind])
    decoder = FirehoseDecoder()
    for frame in source.frames(150):
        decoder.decode(frame)
    assert decoder.stats.counts == {FAULT_SKIP_REASONS[kind]: 150}


def test_a_malformed_rate_corrupts_about_that_share_of_frames() -> None:
    source = SyntheticFirehose(5, malformed_rate=0.1)
    decoder = FirehoseDecoder()
    for frame in source.frames(2000):
        decoder.decode(frame)
    assert set(decoder.stats.counts) == set(FAULT_SKIP_REASONS.values())
    assert 140 < decoder.stats.skipped < 260


@pytest.mark.parametrize("name", ["capture.bin", "capture.bin.zst"])
def test_write_capture_round_trips_through_the_capture_parser(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    reported: list[int] = []
    written = write_capture(path, 2500, seed=9, progress=reported.append, repos=40)
    assert written == 2500 and reported == [1000, 2000, 2500]
    data = path.read_bytes()
    if name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().stream_reader(data).read()
    parser = CaptureParser(str(path))
    frames = [f for at in range(0, len(data), 65_536) for f in parser.feed(data[at : at + 65_536])]
    parser.close()
    assert frames == list(SyntheticFirehose(9, repos=40).frames(2500))
