"""Replaying captures and JSON lines, compressed or not."""

from __future__ import annotations

from pathlib import Path

import pytest
import zstandard

from jetflow import operators as op
from jetflow.codec.capture import encode_record
from jetflow.errors import CaptureError, ConfigError
from jetflow.events import Event
from jetflow.sources import memory, replay
from jetflow.testing import CollectingSink


async def run(source: object) -> CollectingSink[object]:
    sink: CollectingSink[object] = CollectingSink()
    source.subscribe(sink)  # type: ignore[attr-defined]
    await sink.wait_async(20)
    return sink


async def test_zstd_capture_replays_every_frame(
    corpus_path: Path, corpus_frames: list[bytes]
) -> None:
    sink = await run(replay(corpus_path))
    assert [frame.data for frame in sink.items] == corpus_frames  # type: ignore[attr-defined]
    assert sink.error is None


async def test_plain_capture_and_decode(tmp_path: Path, corpus_frames: list[bytes]) -> None:
    path = tmp_path / "capture.bin"
    path.write_bytes(b"".join(encode_record(frame) for frame in corpus_frames))
    sink = await run(replay(path).pipe(op.decode()))
    assert len(sink.items) == 152


async def test_truncated_capture_emits_everything_before_then_names_file_and_offset(
    tmp_path: Path, corpus_frames: list[bytes]
) -> None:
    data = b"".join(encode_record(frame) for frame in corpus_frames[:3])
    path = tmp_path / "cut.bin.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(data[:-10]))
    sink = await run(replay(path))
    assert len(sink.items) == 2
    assert isinstance(sink.error, CaptureError)
    assert sink.error.path == str(path)
    assert sink.error.offset == len(encode_record(corpus_frames[0])) + len(
        encode_record(corpus_frames[1])
    )


async def test_json_lines_replay_as_events_and_bad_lines_are_counted(
    tmp_path: Path, expected_v1: list[bytes]
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join([expected_v1[0], b"{broken", b"", expected_v1[1]]) + b"\n")
    source = replay(path)
    sink = await run(source.pipe(op.decode(), op.filter(kinds=["commit"])))
    assert [event.json for event in sink.items] == expected_v1[:2]  # type: ignore[attr-defined]
    assert source.stats.errors == {"bad_line": 1}


async def test_compressed_json_lines_are_detected(tmp_path: Path, expected_v1: list[bytes]) -> None:
    path = tmp_path / "events.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(expected_v1)))
    sink = await run(replay(path))
    assert all(isinstance(item, Event) for item in sink.items) and len(sink.items) == 152


async def test_rate_paces_the_replay(expected_v1: list[bytes], tmp_path: Path) -> None:
    import time

    path = tmp_path / "few.jsonl"
    path.write_bytes(b"\n".join(expected_v1[:5]))
    started = time.monotonic()
    sink = await run(replay(path, rate=25))
    assert len(sink.items) == 5 and time.monotonic() - started >= 0.15


def test_missing_file_and_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        replay(tmp_path / "absent.bin")
    (tmp_path / "x.bin").write_bytes(b"")
    with pytest.raises(ConfigError, match="format"):
        replay(tmp_path / "x.bin", format="csv")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="rate"):
        replay(tmp_path / "x.bin", rate=0)


async def test_memory_source_iterates_and_subscribes() -> None:
    collected = [item async for item in memory([1, 2, 3])]
    sink = await run(memory([4, 5]))
    assert collected == [1, 2, 3] and sink.items == [4, 5]
