"""Sinks: callbacks (sync and async, with backpressure), JSON-lines files, stdout, capture,
and websocket push to a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import pytest
import zstandard
from websockets.asyncio.server import ServerConnection, serve

from jetflow import operators as op
from jetflow import sinks
from jetflow.errors import ConfigError, SinkError
from jetflow.events import Event
from jetflow.sources import memory, replay
from jetflow.testing import CollectingSink


def events_of(lines: list[bytes]) -> list[Event]:
    return [Event.from_json(line) for line in lines]


async def test_sync_callback_gets_every_item_in_order(expected_v1: list[bytes]) -> None:
    seen: list[str] = []
    sink = sinks.callback(lambda event: seen.append(event.did))
    memory(events_of(expected_v1)).subscribe(sink)
    assert await sink.wait_async(10)
    assert len(seen) == 152 and sink.stats.delivered == 152


async def test_async_callback_pauses_the_source_instead_of_buffering_everything(
    expected_v1: list[bytes],
) -> None:
    most_pending = 0
    seen: list[int] = []

    async def slow(event: Event) -> None:
        nonlocal most_pending
        most_pending = max(most_pending, sink.pending)
        await asyncio.sleep(0.001)
        seen.append(event.time_us)

    sink = sinks.callback(slow, buffer_size=8)
    memory(events_of(expected_v1)).subscribe(sink)
    assert await sink.wait_async(20)
    assert len(seen) == 152 and sink.stats.dropped == 0
    assert most_pending <= 9  # the source waited whenever the callback fell 8 behind


async def test_async_callback_errors_are_counted_and_the_stream_goes_on(
    expected_v1: list[bytes],
) -> None:
    async def picky(event: Event) -> None:
        if event.kind != "commit":
            raise ValueError("not a commit")

    sink = sinks.callback(picky)
    memory(events_of(expected_v1)).subscribe(sink)
    assert await sink.wait_async(10)
    assert sink.stats.errors == {"ValueError": 2} and sink.stats.delivered == 150


async def test_async_callback_drop_policy_when_nothing_can_be_paused() -> None:
    async def never(_: int) -> None:
        await asyncio.sleep(10)

    sink = sinks.callback(never, buffer_size=3, overflow="drop_newest")
    for item in range(10):  # pushed directly: no source to pause
        sink.on_next(item)
    assert sink.pending <= 3 and sink.stats.dropped >= 6
    blocking = sinks.callback(never, buffer_size=2)
    with pytest.raises(SinkError, match="no way to slow the producer"):
        for item in range(10):
            blocking.on_next(item)


async def test_jsonl_file_writes_wire_json_lines(
    tmp_path: Path, corpus_path: Path, expected_v1: list[bytes]
) -> None:
    sink = sinks.jsonl(tmp_path / "out.jsonl")
    replay(corpus_path).pipe(op.decode()).subscribe(sink)
    assert await sink.wait_async(10)
    lines = (tmp_path / "out.jsonl").read_bytes().splitlines()
    assert len(lines) == 152 and [line[:40] for line in lines[:3]] == [
        line[:40] for line in expected_v1[:3]
    ]


async def test_jsonl_rotates_by_size_into_complete_zstd_files(
    tmp_path: Path, expected_v1: list[bytes]
) -> None:
    sink = sinks.jsonl(tmp_path / "archive" / "events.jsonl.zst", rotate_bytes=4000)
    memory(events_of(expected_v1)).subscribe(sink)
    assert await sink.wait_async(10)
    assert len(sink.files) > 3
    assert all(
        path.name.startswith("events-") and path.name.endswith(".jsonl.zst") for path in sink.files
    )
    lines: list[bytes] = []
    for path in sink.files:
        lines += (
            zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes()).splitlines()
        )
    assert lines == expected_v1


async def test_jsonl_rotates_by_time(tmp_path: Path, expected_v1: list[bytes]) -> None:
    sink = sinks.jsonl(tmp_path / "t.jsonl", rotate_seconds=0.05)
    sink.on_next(Event.from_json(expected_v1[0]))
    time.sleep(0.1)
    sink.on_next(Event.from_json(expected_v1[1]))
    sink.close()
    assert [path.read_bytes() for path in sink.files] == [
        expected_v1[0] + b"\n",
        expected_v1[1] + b"\n",
    ]


def test_jsonl_bad_options_and_closed_sink(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rotate_bytes"):
        sinks.jsonl(tmp_path / "x.jsonl", rotate_bytes=0)
    sink = sinks.jsonl(tmp_path / "x.jsonl")
    sink.close()
    with pytest.raises(SinkError, match="closed"):
        sink.on_next(b"{}")


def test_stdout_sink_writes_lines_and_survives_a_closed_pipe(expected_v1: list[bytes]) -> None:
    buffer = io.BytesIO()
    sink = sinks.StdoutSink(buffer)
    for event in events_of(expected_v1[:2]):
        sink.on_next(event)
    sink.close()
    assert buffer.getvalue() == expected_v1[0] + b"\n" + expected_v1[1] + b"\n"

    class ClosedPipe(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            raise BrokenPipeError

    broken = sinks.StdoutSink(ClosedPipe())
    broken.on_next(b"{}")
    broken.close()
    assert broken.broken and broken.done


async def test_capture_sink_writes_what_replay_reads(
    tmp_path: Path, corpus_path: Path, corpus_frames: list[bytes]
) -> None:
    sink = sinks.capture(tmp_path / "copy.bin.zst")
    replay(corpus_path).subscribe(sink)
    assert await sink.wait_async(10)
    again: CollectingSink[object] = CollectingSink()
    replay(tmp_path / "copy.bin.zst").subscribe(again)
    assert await again.wait_async(10)
    assert [frame.data for frame in again.items] == corpus_frames  # type: ignore[attr-defined]


async def test_websocket_sink_pushes_and_reconnects_when_the_endpoint_drops_it(
    corpus_path: Path, expected_v1: list[bytes]
) -> None:
    received: list[bytes] = []
    connections = 0

    async def handler(connection: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        first = connections == 1
        async for message in connection:
            assert isinstance(message, str)
            received.append(message.encode())
            if first and len(received) == 20:
                return  # the endpoint hangs up mid-stream

    server = await serve(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = sinks.websocket(f"ws://127.0.0.1:{port}/ingest")
    sink.backoff.base = 0.01
    replay(corpus_path, rate=1000).pipe(op.decode()).subscribe(sink)
    assert await sink.wait_async(20)
    server.close()
    await server.wait_closed()
    assert connections >= 2 and sink.connects >= 2
    wire = [orjson_without_time(line) for line in expected_v1]
    got = [orjson_without_time(line) for line in received]
    assert got[:20] == wire[:20] and got[-1] == wire[-1]
    # what arrives is in order; messages in flight when the connection broke may be lost
    positions = [wire.index(line) for line in got]
    assert positions == sorted(positions) and len(got) >= 140


def orjson_without_time(line: bytes) -> bytes:
    import orjson

    event = orjson.loads(line)
    event["time_us"] = 0
    return orjson.dumps(event)


def test_websocket_sink_rejects_a_non_websocket_url() -> None:
    with pytest.raises(ConfigError, match="ws://"):
        sinks.websocket("http://example.com")
