"""The relay client against a real websocket relay on 127.0.0.1 (jetflow.testing.FakeRelay)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from jetflow import operators as op
from jetflow.codec.frame import Frame
from jetflow.errors import ConfigError
from jetflow.sources import firehose
from jetflow.sources._backoff import Backoff
from jetflow.sources.firehose import subscribe_repos_url
from jetflow.testing import CollectingSink, FakeRelay

FAST = {"backoff": Backoff(base=0.01, cap=0.05)}


def seqs(frames: list[Frame]) -> list[int]:
    return [seq for frame in frames if (seq := frame.seq) is not None]


async def collect(source: object, count: int, timeout: float = 20) -> list[Frame]:
    sink: CollectingSink[Frame] = CollectingSink()
    subscription = source.subscribe(sink)  # type: ignore[attr-defined]
    try:
        return await sink.wait_for_async(count, timeout)
    finally:
        subscription.dispose()


def test_url_gets_the_subscribe_repos_path_and_cursor() -> None:
    assert (
        subscribe_repos_url("wss://bsky.network")
        == "wss://bsky.network/xrpc/com.atproto.sync.subscribeRepos"
    )
    assert subscribe_repos_url("https://pds.example", 5).endswith(
        "com.atproto.sync.subscribeRepos?cursor=5"
    )
    with pytest.raises(ConfigError, match="relay url"):
        firehose("ftp://nope")


async def test_dropped_connections_resume_from_the_last_seq_without_gap_or_duplicate(
    corpus_frames: list[bytes],
) -> None:
    async with FakeRelay(corpus_frames) as relay:
        relay.drop_after(40)
        relay.drop_after(25)
        source = firehose(relay.url, **FAST)
        frames = await collect(source, 150)
    expected = seqs([Frame(f) for f in corpus_frames])
    assert seqs(frames) == expected
    assert [c.cursor for c in relay.connections] == [None, expected[39], expected[64]]
    assert source.stats.connects == 3


async def test_consumer_too_slow_error_frame_reconnects_with_the_cursor(
    corpus_frames: list[bytes],
) -> None:
    async with FakeRelay(corpus_frames) as relay:
        relay.error_after(10, "ConsumerTooSlow", "you are slow")
        source = firehose(relay.url, **FAST)
        frames = await collect(source, 150)
    assert seqs(frames) == seqs([Frame(f) for f in corpus_frames])
    assert source.stats.errors["ConsumerTooSlow"] == 1
    assert relay.connections[1].cursor == seqs(frames)[9]


async def test_future_cursor_resumes_live(corpus_frames: list[bytes]) -> None:
    async with FakeRelay(corpus_frames, serve_history_without_cursor=False) as relay:
        source = firehose(relay.url, cursor=10**12, **FAST)
        sink: CollectingSink[Frame] = CollectingSink()
        subscription = source.subscribe(sink)
        for _ in range(200):
            if len(relay.connections) >= 2:
                break
            await asyncio.sleep(0.01)
        await relay.publish(corpus_frames[0])
        received = await sink.wait_for_async(1, 5)
        subscription.dispose()
    assert [c.cursor for c in relay.connections] == [10**12, None]
    assert seqs(received) == seqs([Frame(corpus_frames[0])])
    assert source.stats.errors["FutureCursor"] == 1


async def test_outdated_cursor_info_is_passed_on_and_counted(corpus_frames: list[bytes]) -> None:
    first = Frame(corpus_frames[0]).seq
    assert first is not None
    async with FakeRelay(corpus_frames) as relay:
        source = firehose(relay.url, cursor=first - 1000, **FAST)
        frames = await collect(source, 151)
    assert frames[0].type == "#info" and frames[0].body["name"] == "OutdatedCursor"
    assert len(seqs(frames)) == 150
    assert source.stats.errors["OutdatedCursor"] == 1


async def test_a_silent_socket_is_treated_as_dead(corpus_frames: list[bytes]) -> None:
    async with FakeRelay(corpus_frames) as relay:
        relay.silence_after(5)
        source = firehose(relay.url, idle_timeout=0.3, **FAST)
        frames = await collect(source, 150)
    assert seqs(frames) == seqs([Frame(f) for f in corpus_frames])
    assert source.stats.errors["idle_timeout"] == 1


async def test_checkpoint_is_saved_and_a_new_source_resumes_from_it(
    corpus_frames: list[bytes], tmp_path: Path
) -> None:
    checkpoint = tmp_path / "seq.json"
    async with FakeRelay(corpus_frames) as relay:
        source = firehose(relay.url, checkpoint=checkpoint, **FAST)
        iterator = source.__aiter__()
        first = [await iterator.__anext__() for _ in range(30)]
        await iterator.aclose()  # type: ignore[attr-defined]
        saved = json.loads(checkpoint.read_text())["cursor"]
        resumed = firehose(relay.url, checkpoint=checkpoint, **FAST)
        rest = await collect(resumed, 120)
    # At least once: the last frame handed out was never confirmed (no next item was asked
    # for), so the checkpoint holds the one before it and the resumed source repeats it.
    assert saved == seqs(first)[-2]
    assert relay.connections[-1].cursor == saved
    assert seqs(first)[:-1] + seqs(rest) == seqs([Frame(f) for f in corpus_frames])


async def test_async_iteration_with_drop_oldest_counts_what_a_slow_consumer_loses(
    corpus_frames: list[bytes],
) -> None:
    async with FakeRelay(corpus_frames) as relay:
        source = firehose(relay.url, buffer_size=10, overflow="drop_oldest", **FAST)
        received = []
        async for frame in source:
            received.append(frame)
            await asyncio.sleep(0.02)  # a consumer far slower than the relay
            if received[-1].seq == seqs([Frame(corpus_frames[-1])])[0]:
                break
    assert source.stats.dropped > 0
    assert len(received) + source.stats.dropped == 150


def test_subscribing_outside_an_event_loop_runs_in_a_thread(corpus_frames: list[bytes]) -> None:
    async def serve_until(done: asyncio.Event, started: asyncio.Future[str]) -> None:
        async with FakeRelay(corpus_frames) as relay:
            started.set_result(relay.url)
            await done.wait()

    import threading

    loop = asyncio.new_event_loop()
    done = asyncio.Event()
    started: asyncio.Future[str] = loop.create_future()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve_until(done, started),))
    thread.start()
    try:
        while not started.done():
            pass
        sink: CollectingSink[object] = CollectingSink()
        subscription = firehose(started.result(), **FAST).pipe(op.decode()).subscribe(sink)
        events = sink.wait_for(152, timeout=20)
        subscription.dispose()
    finally:
        loop.call_soon_threadsafe(done.set)
        thread.join()
        loop.close()
    assert len(events) == 152
