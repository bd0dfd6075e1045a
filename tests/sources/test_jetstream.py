"""The Jetstream client source against a real ``jetflow serve``."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest

from jetflow.events import Event
from jetflow.sources import jetstream
from jetflow.sources._backoff import Backoff
from jetflow.testing import FakeRelay
from tests.server.harness import ServeProcess, expected_events, free_port, start_serve

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def take(source: Any, count: int, timeout: float = 20) -> list[Event]:
    out: list[Event] = []

    async def consume() -> None:
        async for event in source:
            out.append(event)
            if len(out) >= count:
                return

    await asyncio.wait_for(consume(), timeout)
    return out


def key(event: dict[str, Any] | Event) -> tuple[Any, ...]:
    data = orjson.loads(event.json) if isinstance(event, Event) else event
    body = data[data["kind"]]
    return (data["did"], data["kind"], body.get("rev", body.get("seq")), body.get("rkey"))


async def test_replays_with_server_side_filters(
    ingested: ServeProcess, synthetic_events: list[dict[str, Any]]
) -> None:
    wanted = [
        e
        for e in synthetic_events
        if e["kind"] != "commit" or e["commit"]["collection"] == "app.bsky.feed.repost"
    ]
    source = jetstream(ingested.url, collections=["app.bsky.feed.repost"], cursor=1)
    events = await take(source, len(wanted))
    assert [key(e) for e in events] == [key(e) for e in wanted]
    assert all(a.time_us < b.time_us for a, b in itertools.pairwise(events))


async def test_compressed_stream_with_the_v1_dictionary(
    ingested: ServeProcess, synthetic_events: list[dict[str, Any]], dictionary_path: Path
) -> None:
    source = jetstream(ingested.url, cursor=1, compress=True, dictionary=dictionary_path)
    events = await take(source, 300)
    assert [key(e) for e in events] == [key(e) for e in synthetic_events[:300]]
    assert source.stats.errors == {}


async def test_long_did_lists_travel_in_the_hello_message(
    ingested: ServeProcess, synthetic_events: list[dict[str, Any]]
) -> None:
    real = sorted({e["did"] for e in synthetic_events})[:3]
    dids = [f"did:plc:{n:024d}" for n in range(300)] + real
    wanted = [e for e in synthetic_events if e["did"] in real]
    source = jetstream(ingested.url, dids=dids, cursor=1)
    events = await take(source, len(wanted))
    assert [key(e) for e in events] == [key(e) for e in wanted]


async def test_update_sends_options_update_on_the_live_connection(
    ingested: ServeProcess, synthetic_events: list[dict[str, Any]]
) -> None:
    source = jetstream(ingested.url, collections=["app.bsky.graph.block"], cursor=1)
    iterator = source.__aiter__()
    first = await asyncio.wait_for(iterator.__anext__(), 10)
    assert first.kind != "commit" or first.collection == "app.bsky.graph.block"
    await source.update(collections=["app.bsky.graph.listitem"], dids=[first.did])
    assert source.collections == ["app.bsky.graph.listitem"] and source.dids == [first.did]
    await iterator.aclose()  # type: ignore[attr-defined]


async def test_reconnects_after_a_restart_and_resumes_without_gap_or_duplicate(
    tmp_path: Path, synthetic_frames: list[bytes]
) -> None:
    first, second = synthetic_frames[:800], synthetic_frames[800:1600]
    expected = expected_events(synthetic_frames[:1600])
    port = free_port()
    async with FakeRelay(first) as relay:
        server = await start_serve(relay.url, tmp_path / "data", "--listen", f"127.0.0.1:{port}")
        await server.wait_metric("consumer_events_persisted_total", len(expected_events(first)))
        source = jetstream(f"ws://127.0.0.1:{port}", cursor=1, backoff=Backoff(base=0.05, cap=0.2))
        received: list[Event] = []

        async def consume() -> None:
            async for event in source:
                received.append(event)
                if len(received) >= len(expected):
                    return

        consumer = asyncio.create_task(consume())
        while len(received) < len(expected_events(first)) // 2:
            await asyncio.sleep(0.02)
        await server.stop()
        server = await start_serve(relay.url, tmp_path / "data", "--listen", f"127.0.0.1:{port}")
        try:
            for frame in second:
                await relay.publish(frame)
            await asyncio.wait_for(consumer, 60)
        finally:
            await server.stop()
    assert [key(e) for e in received] == [key(e) for e in expected]
    assert source.stats.connects >= 2
    assert source.stats.errors.get("repeated_event", 0) >= 1  # the rewind re-sent some; dropped
