"""The nats sink and source against a real nats-server: exact bytes, deduplication, server-side
filters, exact cursors, durable work sharing, a broker restart, and clear start-up errors."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import jetflow as jf
from jetflow.broker.checkpoint import KvCheckpoint
from jetflow.broker.connection import BrokerURL, connect, ensure_stream
from jetflow.broker.testing import NatsServer, free_port
from jetflow.codec.clock import MonotonicClock
from jetflow.codec.firehose import FirehoseDecoder
from jetflow.errors import ConnectError, StoreError
from jetflow.events import WIRE_KINDS, Event
from jetflow.sinks.nats import NatsSink
from jetflow.sources.nats import NatsSource
from tests.broker.conftest import stream_messages


def decoded(frames: list[bytes]) -> list[Event]:
    decoder = FirehoseDecoder(clock=MonotonicClock())
    return [e for frame in frames for e in decoder.decode(frame) if e.kind in WIRE_KINDS]


async def publish_all(url: str, events: list[Event], **options: Any) -> NatsSink:
    sink = jf.sinks.nats(url, **options)
    for event in events:
        sink.on_next(event)
        while sink.pending >= sink.buffer_size:  # no source to pause here: keep within bounds
            await asyncio.sleep(0.001)
    sink.on_completed()
    assert await sink.wait_async(30)
    assert sink.error is None, sink.error
    return sink


async def read(source: NatsSource, count: int, timeout: float = 10) -> list[Event]:
    out: list[Event] = []

    async def take() -> None:
        async with contextlib.aclosing(source.__aiter__()) as events:
            async for event in events:
                out.append(event)
                if len(out) >= count:
                    return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(take(), timeout)
    return out


async def test_sink_publishes_exact_json_once_and_the_source_reads_it_back(
    nats_server: NatsServer, synthetic_frames: list[bytes]
) -> None:
    events = decoded(synthetic_frames[:400])
    sink = await publish_all(nats_server.url, events)
    assert sink.publisher is None or sink.publisher.stats.acked == len(events)
    again = await publish_all(nats_server.url, events[:100])  # a second ingest, same events
    assert again.stats.errors == {}
    messages = await stream_messages(nats_server.url)
    assert [m.data for m in messages] == [e.json for e in events]
    assert all(
        m.headers["Nats-Msg-Id"] == f"{e.seq}:{e.op_index}"
        for m, e in zip(messages, events, strict=True)
    )
    got = await read(jf.sources.nats(nats_server.url, start="all"), len(events) + 1, timeout=3)
    assert [e.json for e in got] == [e.json for e in events]
    assert [(e.seq, e.op_index) for e in got] == [(e.seq, e.op_index) for e in events]


async def test_source_filters_collections_on_the_server_and_dids_here(
    nats_server: NatsServer, synthetic_frames: list[bytes]
) -> None:
    events = decoded(synthetic_frames[:600])
    await publish_all(nats_server.url, events)
    wanted = {"app.bsky.feed.like"}
    some_did = next(e.did for e in events if e.collection == "app.bsky.feed.post")
    source = jf.sources.nats(
        nats_server.url, collections=["app.bsky.feed.like", "app.bsky.graph.*"], start="all"
    )
    expected = [
        e
        for e in events
        if e.kind != "commit"
        or e.collection in wanted
        or e.collection.startswith("app.bsky.graph.")
    ]
    got = await read(source, len(expected) + 1, timeout=3)
    assert [e.json for e in got] == [e.json for e in expected]
    assert source.filter_subjects[:2] == [
        "jetflow.evt.commit.app.bsky.graph.>",
        "jetflow.evt.commit.app.bsky.feed.like",
    ]
    by_did = await read(jf.sources.nats(nats_server.url, dids=[some_did], start="all"), 10_000, 3)
    assert [e.json for e in by_did] == [e.json for e in events if e.did == some_did]


async def test_a_time_us_cursor_is_exact_and_new_means_only_what_comes_next(
    nats_server: NatsServer, synthetic_frames: list[bytes]
) -> None:
    events = decoded(synthetic_frames[:300])
    await publish_all(nats_server.url, events)
    for index in (0, 1, 137, len(events) - 1):
        got = await read(jf.sources.nats(nats_server.url, start=events[index].time_us), 5, 3)
        assert [e.time_us for e in got] == [e.time_us for e in events[index : index + 5]]
    beyond = await read(jf.sources.nats(nats_server.url, start=events[-1].time_us + 1), 1, 1)
    assert beyond == []
    newer = decoded(synthetic_frames[300:340])
    for event in newer:
        event.time_us += events[-1].time_us
    source = jf.sources.nats(nats_server.url, start="new")
    reading = asyncio.ensure_future(read(source, len(newer), timeout=5))
    await asyncio.sleep(0.5)
    await publish_all(nats_server.url, newer)
    assert [e.json for e in await reading] == [e.json for e in newer]


async def test_a_durable_consumer_splits_the_events_between_two_workers(
    nats_server: NatsServer, synthetic_frames: list[bytes]
) -> None:
    events = decoded(synthetic_frames[:800])
    await publish_all(nats_server.url, events)
    seen: list[list[Event]] = [[], []]

    async def worker(index: int) -> None:
        source = jf.sources.nats(nats_server.url, start="all", durable="split-test", batch=20)
        async with contextlib.aclosing(source.__aiter__()) as stream:
            async for event in stream:
                seen[index].append(event)
                await asyncio.sleep(0.0005)  # some work, so both workers get a share

    tasks = [asyncio.ensure_future(worker(0)), asyncio.ensure_future(worker(1))]
    deadline = time.monotonic() + 20
    while sum(map(len, seen)) < len(events) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    ids = [(e.seq, e.op_index) for e in itertools.chain(*seen)]
    assert sorted(ids) == sorted((e.seq, e.op_index) for e in events), "each event exactly once"
    assert len(set(ids)) == len(ids)
    assert min(map(len, seen)) > 0, "both workers got a share"


async def test_the_sink_waits_out_a_broker_restart_and_loses_nothing(
    nats_server: NatsServer, synthetic_frames: list[bytes]
) -> None:
    events = decoded(synthetic_frames[:900])
    sink = jf.sinks.nats(nats_server.url, max_pending=100, ack_timeout=1.0)
    await sink.open()
    for event in events[:300]:
        sink.on_next(event)
    await asyncio.sleep(0.3)
    nats_server.stop()
    for event in events[300:600]:
        sink.on_next(event)
    await asyncio.sleep(1.5)
    assert sink.publisher is not None and sink.publisher.pending <= 100, "bounded in flight"
    assert sink.pending >= 100, "the rest waits in the sink's buffer"
    nats_server.start()
    for event in events[600:]:
        sink.on_next(event)
    sink.on_completed()
    assert await sink.wait_async(30)
    messages = await stream_messages(nats_server.url)
    assert [m.data for m in messages] == [e.json for e in events]


async def test_start_up_errors_name_the_url_and_the_stream(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    closed = f"nats://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ConnectError, match=closed):
        await jf.sinks.nats(closed).open()
    assert time.monotonic() - started < 10
    with pytest.raises(StoreError, match=r"'NOPE'.*does not exist"):
        await read(jf.sources.nats(nats_server.url, stream="NOPE"), 1)
    (tmp_path / "auth").mkdir()
    guarded = NatsServer(tmp_path / "auth", extra=("--auth", "s3cret")).start()
    try:
        with pytest.raises(ConnectError, match="Authorization"):
            await connect(BrokerURL.parse(f"nats://wrong@127.0.0.1:{guarded.port}"))
        client = await connect(BrokerURL.parse(f"nats://s3cret@127.0.0.1:{guarded.port}"))
        await client.close()
    finally:
        guarded.stop()


async def test_checkpoints_in_kv_survive_the_process_that_wrote_them(
    nats_server: NatsServer, synthetic_frames: list[bytes]
) -> None:
    first = KvCheckpoint(nats_server.url, "pipelines.likes")
    assert await asyncio.to_thread(first.load) is None
    await asyncio.to_thread(first.save, 1234)
    await asyncio.to_thread(first.close)
    second = KvCheckpoint(nats_server.url, "pipelines.likes")
    assert await asyncio.to_thread(second.load) == 1234
    await asyncio.to_thread(second.close)

    events = decoded(synthetic_frames[:200])
    await publish_all(nats_server.url, events)
    reader = jf.sources.nats(nats_server.url, start="all", checkpoint="worker-1")
    got = await read(reader, 50)
    # The worker stops while handling its 50th event; another (a new process, on any machine)
    # resumes after the last one it finished: the 50th comes again (at-least-once), then on.
    resumed = await read(jf.sources.nats(nats_server.url, start="all", checkpoint="worker-1"), 5)
    assert got[-1].time_us == events[49].time_us
    assert [e.time_us for e in resumed] == [e.time_us for e in events[49:54]]


async def test_a_fenced_writer_cannot_append_after_a_newer_epoch(
    nats_server: NatsServer, broker_client: Any, synthetic_frames: list[bytes]
) -> None:
    from jetflow.broker.messages import encode
    from jetflow.broker.publisher import Fence, Fenced, Publisher
    from jetflow.broker.subjects import Subjects

    url = BrokerURL.parse(nats_server.url)
    subjects = Subjects()
    js = broker_client.jetstream()
    await ensure_stream(js, url, create=True)
    events = decoded(synthetic_frames[:60])
    epoch = await js.publish(subjects.writer, b"a")
    old = Publisher(broker_client, url, fence=Fence(subjects.writer, epoch.seq), ack_timeout=1.0)
    await old.start()
    for event in events[:20]:
        await old.publish(*encode(subjects, event))
    await old.flush(5)
    await js.publish(subjects.writer, b"b")  # a successor claims the stream
    with pytest.raises(Fenced):
        for event in events[20:]:
            await old.publish(*encode(subjects, event))
        await old.flush(10)
    await old.close()
    messages = await stream_messages(nats_server.url)
    assert [m.data for m in messages] == [e.json for e in events[:20]]


async def test_a_sink_that_cannot_reach_its_broker_fails_the_pipeline_once(
    synthetic_frames: list[bytes],
) -> None:
    """Not one connection attempt per event: the first failure ends the sink and the run."""
    closed = f"nats://127.0.0.1:{free_port()}"
    events = decoded(synthetic_frames[:300])
    sink = jf.sinks.nats(closed)
    pipeline = jf.Pipeline(jf.sources.memory(events), sinks=[sink])
    started = time.monotonic()
    with pytest.raises(ConnectError, match=closed):
        await pipeline.run_async(timeout=30)
    assert time.monotonic() - started < 15
    assert sink.error is not None and sink.stats.errors == {"ConnectError": 1}
    assert sink.stats.delivered == 0
    assert sink.stats.dropped + 1 == sink.stats.received  # every other event is counted


# -- pipelines: acknowledgements and checkpoints wait for what the sinks made safe ----------


async def consumer(url: str, name: str) -> Any:
    client = await connect(BrokerURL.parse(url))
    try:
        return await client.jetstream().consumer_info("JETFLOW", name)
    finally:
        await client.close()


async def test_a_stopped_pipeline_acknowledges_exactly_what_its_sinks_flushed(
    nats_server: NatsServer, synthetic_frames: list[bytes], tmp_path: Path
) -> None:
    events = decoded(synthetic_frames[:300])
    await publish_all(nats_server.url, events)
    first_out = tmp_path / "first.jsonl"

    def worker(out: Path) -> jf.Pipeline:
        source = jf.sources.nats(nats_server.url, start="all", durable="acks", ack_wait=1)
        return jf.Pipeline(source, sinks=[jf.sinks.jsonl(out)], checkpoint_interval=60)

    result = await worker(first_out).run_async(max_events=100)  # no checkpoint before the end
    assert result.reason == "max_events"
    written = first_out.read_bytes().splitlines()
    info = await consumer(nats_server.url, "acks")
    # Everything written is acknowledged at the stop; what was handed out beyond it is not.
    assert info.ack_floor.stream_seq == len(written) >= 100
    assert info.num_ack_pending == info.delivered.stream_seq - len(written)
    second_out = tmp_path / "second.jsonl"
    await worker(second_out).run_async(max_events=len(events) - len(written), timeout=20)
    lines = written + second_out.read_bytes().splitlines()
    assert lines == [e.json for e in events]  # the rest, after ack_wait: no loss, no repeat


async def test_messages_a_durable_worker_filters_out_are_acknowledged_at_once(
    nats_server: NatsServer, synthetic_frames: list[bytes]
) -> None:
    events = decoded(synthetic_frames[:300])
    await publish_all(nats_server.url, events)
    did = events[0].did
    source = jf.sources.nats(nats_server.url, dids=[did], start="all", durable="one-did")
    pipeline = jf.Pipeline(source, checkpoint_interval=0.1)
    result = await pipeline.run_async(timeout=3)
    assert [e.json for e in result.items] == [e.json for e in events if e.did == did]
    info = await consumer(nats_server.url, "one-did")
    assert info.num_ack_pending == 0 and info.ack_floor.stream_seq == len(events)


async def test_a_checkpoint_waits_for_the_broker_to_confirm_what_a_nats_sink_published(
    nats_server: NatsServer, synthetic_frames: list[bytes], tmp_path: Path
) -> None:
    events = decoded(synthetic_frames[:1200])

    async def slowly() -> AsyncIterator[Event]:
        for event in events:
            yield event
            await asyncio.sleep(0.002)

    checkpoint = tmp_path / "cursor.json"
    sink = jf.sinks.nats(nats_server.url, ack_timeout=1.0)
    pipeline = jf.Pipeline(slowly(), sinks=[sink], checkpoint=checkpoint, checkpoint_interval=0.1)
    running = asyncio.ensure_future(pipeline.run_async())

    def saved() -> int:
        return int(json.loads(checkpoint.read_text())["cursor"])

    while not checkpoint.exists():
        await asyncio.sleep(0.05)
    nats_server.stop()
    await asyncio.sleep(0.5)  # a checkpoint begun before the stop may still land
    while_down = saved()
    await asyncio.sleep(1.0)  # events keep coming; the broker confirms none of them
    assert saved() == while_down, "no checkpoint past what the broker confirmed"
    assert sink.stats.received > 0
    nats_server.start()
    result = await asyncio.wait_for(running, 60)
    assert result.cursor == events[-1].time_us
    stored = [m.data for m in await stream_messages(nats_server.url)]
    assert sorted(stored) == sorted(e.json for e in events)  # all, once (order: ordered=True)
