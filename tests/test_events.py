"""The hot-path Event: cached JSON and compressed bytes, parsing, typed views."""

from __future__ import annotations

from pathlib import Path

import pytest

from jetflow.codec.zstd import Compressor, Decompressor
from jetflow.errors import DecodeError
from jetflow.events import Event


def test_json_is_built_once_and_cached(golden_v1: list[bytes]) -> None:
    event = Event.from_dict(__import__("orjson").loads(golden_v1[0]))
    first = event.json
    assert event.json is first


def test_compressed_bytes_are_cached_per_compressor(
    golden_v1: list[bytes], dictionary_path: Path
) -> None:
    event = Event.from_json(golden_v1[1])
    compressor = Compressor(dictionary_path)
    frame = event.compressed(compressor)
    assert event.compressed(compressor) is frame
    assert Decompressor(dictionary_path)(frame) == golden_v1[1]
    other = Compressor()
    assert event.compressed(other) is not frame
    assert Decompressor()(event.compressed(other)) == golden_v1[1]


def test_from_json_keeps_the_input_bytes_and_exposes_fields(golden_v1: list[bytes]) -> None:
    event = Event.from_json(golden_v1[1])
    assert event.json is not None and event.json == golden_v1[1]
    assert (event.kind, event.operation, event.collection) == (
        "commit",
        "create",
        "app.bsky.feed.post",
    )
    assert event.record is not None and event.record["text"] == "Try RSV for a good time !!"
    assert event.uri.startswith("at://did:plc:q235v55g5unth4zjjdpacfdr/app.bsky.feed.post/")


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"kind":"commit","did":"x"}',
        b'{"kind":"commit","did":"x","time_us":1}',
        b'{"kind":"commit","did":"x","time_us":1,"commit":{"rev":5}}',
        b'{"kind":"weird","did":"x","time_us":1,"weird":{}}',
    ],
)
def test_malformed_events_raise_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        Event.from_json(data)


def test_typed_views(golden_v1: list[bytes]) -> None:
    like = Event.from_json(golden_v1[0])
    model = like.model()
    assert model.kind == "commit" and model.commit.collection == "app.bsky.feed.like"
    typed = like.typed_record()
    assert typed is not None and typed.subject.uri.startswith("at://")  # type: ignore[attr-defined]
    identity = Event.from_json(golden_v1[7])
    assert identity.model().kind == "identity" and identity.typed_record() is None


def test_str_is_the_wire_json(golden_v1: list[bytes]) -> None:
    assert str(Event.from_json(golden_v1[5])) == golden_v1[5].decode()
