"""decode / filter / encode / compress / decompress / parse through reactivex pipe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import reactivex as rx
import zstandard
from reactivex import operators as rx_ops

from jetflow import operators as op
from jetflow.codec.firehose import DecodeStats
from jetflow.codec.zstd import V1_DICTIONARY_ID, frame_dictionary_id
from jetflow.events import Event
from jetflow.operators.decode import DecodedStream
from tests.builders import commit_frame, like, message_frame


def collect(observable: rx.Observable[Any]) -> list[Any]:
    out: list[Any] = []
    observable.subscribe(out.append, on_error=lambda e: (_ for _ in ()).throw(e))
    return out


def test_decode_then_filter_fuses_and_filters_before_records(corpus_frames: list[bytes]) -> None:
    stats = DecodeStats()
    stream = rx.from_iterable(corpus_frames).pipe(
        op.decode(stats=stats), op.filter(collections=["app.bsky.feed.*"], operations=["create"])
    )
    assert isinstance(stream, DecodedStream) and stream.event_filter is not None
    events = collect(stream)
    assert {e.collection for e in events} <= {
        "app.bsky.feed.like",
        "app.bsky.feed.post",
        "app.bsky.feed.repost",
    }
    assert all(e.operation == "create" for e in events)
    assert len(events) + stats.filtered == 152


def test_fused_and_unfused_filters_agree(corpus_frames: list[bytes]) -> None:
    criteria = {"collections": ["app.bsky.graph.*"], "kinds": ["commit", "identity"]}
    fused = collect(rx.from_iterable(corpus_frames).pipe(op.decode(), op.filter(**criteria)))
    unfused = collect(
        rx.from_iterable(corpus_frames).pipe(
            op.decode(), rx_ops.map(lambda e: e), op.filter(**criteria)
        )
    )
    assert [e.rkey for e in fused] == [e.rkey for e in unfused] and fused


def test_predicate_sees_the_record() -> None:
    frames = [
        commit_frame([("create", "app.bsky.feed.like/a", like("at://x/app.bsky.feed.post/keep"))]),
        commit_frame([("create", "app.bsky.feed.like/b", like("at://x/app.bsky.feed.post/drop"))]),
    ]
    events = collect(
        rx.from_iterable(frames).pipe(
            op.decode(), op.filter(predicate=lambda e: e.record["subject"]["uri"].endswith("keep"))
        )
    )
    assert [e.rkey for e in events] == ["a"]


def test_decode_passes_already_decoded_events_through(golden_v1: list[bytes]) -> None:
    events = [Event.from_json(line) for line in golden_v1]
    out = collect(rx.from_iterable(events).pipe(op.decode(), op.filter(kinds=["identity"])))
    assert [e.kind for e in out] == ["identity"]


def test_encode_emits_wire_json_and_skips_non_wire_kinds(
    corpus_frames: list[bytes], expected_v1: list[bytes]
) -> None:
    info = message_frame("#info", {"name": "OutdatedCursor"})
    lines = collect(rx.from_iterable([*corpus_frames, info]).pipe(op.decode(), op.encode()))
    assert len(lines) == 152
    for line, expected in zip(lines, expected_v1, strict=True):
        parsed, wanted = orjson.loads(line), orjson.loads(expected)
        parsed["time_us"] = wanted["time_us"] = 0
        assert parsed == wanted
    assert collect(rx.from_iterable([info]).pipe(op.decode(), op.encode(wire_only=False)))[
        0
    ].startswith(b'{"did":"","time_us":')


def test_compress_and_decompress_round_trip_with_the_v1_dictionary(
    corpus_frames: list[bytes], dictionary_path: Path
) -> None:
    frames = collect(
        rx.from_iterable(corpus_frames).pipe(op.decode(), op.compress(dictionary=dictionary_path))
    )
    assert all(frame_dictionary_id(frame) == V1_DICTIONARY_ID for frame in frames)
    plain = zstandard.ZstdDecompressor(
        dict_data=zstandard.ZstdCompressionDict(dictionary_path.read_bytes())
    )
    events = collect(
        rx.from_iterable(frames).pipe(op.decompress(dictionary=dictionary_path), op.parse())
    )
    assert len(events) == 152
    assert plain.decompressobj().decompress(frames[0]) == events[0].json


def test_compress_without_dictionary_and_bytes_input() -> None:
    frames = collect(rx.from_iterable([b'{"a":1}']).pipe(op.compress()))
    assert frame_dictionary_id(frames[0]) == 0
    assert zstandard.ZstdDecompressor().decompressobj().decompress(frames[0]) == b'{"a":1}'


def test_decompress_and_parse_skip_bad_messages() -> None:
    errors: list[bytes] = []
    good = (
        b'{"did":"did:plc:a","time_us":1,"kind":"identity",'
        b'"identity":{"did":"did:plc:a","seq":1,"time":"t"}}'
    )
    frames = [zstandard.ZstdCompressor().compress(good), b"junk"]
    events = collect(
        rx.from_iterable(frames).pipe(
            op.decompress(), op.parse(on_error=lambda raw, exc: errors.append(raw))
        )
    )
    assert [e.kind for e in events] == ["identity"] and errors == []
    assert (
        collect(
            rx.from_iterable([b"{nope"]).pipe(
                op.parse(on_error=lambda raw, exc: errors.append(raw))
            )
        )
        == []
    )
    assert errors == [b"{nope"]


def test_decode_time_relay_and_bad_time_option(corpus_frames: list[bytes]) -> None:
    import pytest

    from jetflow.errors import ConfigError

    events = collect(rx.from_iterable(corpus_frames).pipe(op.decode(time="relay")))
    assert events[0].time_us == 1_783_175_887_517_000
    with pytest.raises(ConfigError, match="time: 'utc'"):
        op.decode(time="utc")  # type: ignore[arg-type]
