"""End to end: relay → ``jetflow ingest`` → NATS → ``jetflow serve --store nats://`` nodes →
websocket clients, with real subprocesses and sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import signal
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import connect

from jetflow.broker.testing import NatsServer
from jetflow.testing import FakeRelay
from tests.broker.conftest import (
    start_ingest,
    start_nats_serve,
    stream_messages,
    wait_stream_count,
)
from tests.server.harness import expected_events, feed_relay, identity, parsed, receive


def strictly_increasing(events: list[dict[str, Any]]) -> bool:
    return all(a["time_us"] < b["time_us"] for a, b in itertools.pairwise(events))


async def test_a_client_switches_serve_nodes_mid_stream_and_gets_every_event_once(
    nats_server: NatsServer,
    tmp_path: Path,
    synthetic_frames: list[bytes],
    dictionary_path: Path,
) -> None:
    frames = synthetic_frames[:2000]
    stored_first, live = frames[:800], frames[800:]
    expected = expected_events(frames)
    async with FakeRelay(stored_first) as relay:
        ingest = await start_ingest(relay.url, nats_server.url)
        node_a = node_b = None
        try:
            await wait_stream_count(nats_server.url, len(expected_events(stored_first)))
            zstd = ("--zstd-dictionary", str(dictionary_path))
            node_a = await start_nats_serve(nats_server.url, tmp_path / "a", *zstd)
            node_b = await start_nats_serve(nats_server.url, tmp_path / "b", *zstd)
            feeding = asyncio.ensure_future(feed_relay(relay, live))
            # Replay from the start on node A, then live, then leave half-way through.
            async with connect(f"{node_a.url}/subscribe?cursor=0", max_size=None) as websocket:
                first = parsed(await receive(websocket, 1200, idle=5))
            cursor = first[-1]["time_us"] + 1
            async with connect(
                f"{node_b.url}/subscribe?cursor={cursor}", max_size=None
            ) as websocket:
                second = parsed(await receive(websocket, idle=3))
            # A compressed client, and a filtered one, on the other node.
            async with connect(
                f"{node_a.url}/subscribe?cursor={first[100]['time_us']}&compress=true",
                max_size=None,
            ) as websocket:
                compressed = parsed(await receive(websocket, idle=2), dictionary_path.read_bytes())
            async with connect(
                f"{node_b.url}/subscribe?cursor=0&wantedCollections=app.bsky.graph.*"
                "&wantedCollections=app.bsky.feed.like",
                max_size=None,
            ) as websocket:
                filtered = parsed(await receive(websocket, idle=2))
            await feeding
            messages = await wait_stream_count(nats_server.url, len(expected))
        finally:
            for node in (node_a, node_b):
                if node is not None:
                    await node.stop()
            await ingest.stop()
    stream = [orjson.loads(m.data) for m in messages]
    assert [identity(e) for e in stream] == [identity(e) for e in expected]
    assert strictly_increasing(stream)
    received = first + second
    assert received == stream, "every event once, in order, across the switch"
    assert len(first) == 1200 and second
    assert compressed == stream[100:]
    assert filtered == [
        e
        for e in stream
        if e["kind"] != "commit"
        or e["commit"]["collection"] == "app.bsky.feed.like"
        or e["commit"]["collection"].startswith("app.bsky.graph.")
    ]


async def test_two_redundant_ingest_nodes_store_each_event_once_even_when_one_is_killed(
    nats_server: NatsServer, synthetic_frames: list[bytes]
) -> None:
    frames = synthetic_frames
    expected = expected_events(frames)
    async with FakeRelay(frames, frames_per_second=2000) as relay:
        first = await start_ingest(relay.url, nats_server.url, "a")
        await first.wait_logged("active")
        second = await start_ingest(relay.url, nats_server.url, "b")
        try:
            await wait_stream_count(nats_server.url, 800)
            assert second.logged("active") == [], "one writer at a time"
            assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
            taking_over = await second.wait_logged("taking over", timeout=15)
            messages = await wait_stream_count(nats_server.url, len(expected), timeout=40)
            await asyncio.sleep(0.5)
            messages = await stream_messages(nats_server.url)
        finally:
            await first.stop()
            await second.stop()
    stream = [orjson.loads(m.data) for m in messages]
    assert [identity(e) for e in stream] == [identity(e) for e in expected], "one copy each"
    assert strictly_increasing(stream)
    assert taking_over["time_us_floor"] > 0 and taking_over["skip_through"] is not None


async def test_a_broker_restart_mid_stream_loses_nothing_and_repeats_nothing(
    nats_server: NatsServer, tmp_path: Path, synthetic_frames: list[bytes]
) -> None:
    frames = synthetic_frames[:1500]
    expected = expected_events(frames)
    async with FakeRelay(frames[:300]) as relay:
        ingest = await start_ingest(relay.url, nats_server.url)
        node = None
        try:
            await wait_stream_count(nats_server.url, len(expected_events(frames[:300])))
            node = await start_nats_serve(nats_server.url, tmp_path / "serve")
            async with connect(f"{node.url}/subscribe?cursor=0", max_size=None) as websocket:
                receiving = asyncio.ensure_future(receive(websocket, len(expected), idle=15))
                feeding = asyncio.ensure_future(feed_relay(relay, frames[300:], per_tick=10))
                await asyncio.sleep(0.6)
                await asyncio.to_thread(nats_server.restart, 0.5)
                await feeding
                got = parsed(await receiving)
            messages = await wait_stream_count(nats_server.url, len(expected))
        finally:
            if node is not None:
                await node.stop()
            await ingest.stop()
    stream = [orjson.loads(m.data) for m in messages]
    assert [identity(e) for e in stream] == [identity(e) for e in expected]
    assert strictly_increasing(stream)
    assert got == stream, "the subscriber stayed connected and got each event once"


async def test_serve_and_ingest_refuse_to_start_with_a_clear_error(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    from jetflow.broker.testing import free_port
    from tests.server.harness import JETFLOW

    closed = f"nats://127.0.0.1:{free_port()}"
    runs = {
        "unreachable": ["serve", "--store", closed, "--data-dir", str(tmp_path)],
        "missing stream": ["serve", "--store", nats_server.url + "?stream=ABSENT"],
        "bad url": ["ingest", "--to", "http://x:1"],
    }
    outcomes = {}
    for name, args in runs.items():
        process = await asyncio.create_subprocess_exec(
            *JETFLOW,
            *args,
            "--listen" if args[0] == "serve" else "--relay",
            "127.0.0.1:0" if args[0] == "serve" else "ws://127.0.0.1:9",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), 30)
        outcomes[name] = (process.returncode, err.decode().strip().splitlines()[-1])
    assert outcomes["unreachable"][0] == 1 and closed in outcomes["unreachable"][1]
    assert outcomes["missing stream"][0] == 1 and "'ABSENT'" in outcomes["missing stream"][1]
    assert outcomes["bad url"][0] == 2 and "http://x:1" in outcomes["bad url"][1]


async def test_a_clean_stop_hands_the_lease_over_at_once(
    nats_server: NatsServer, synthetic_frames: list[bytes]
) -> None:
    frames = synthetic_frames[:1200]
    expected = expected_events(frames)
    async with FakeRelay(frames, frames_per_second=1500) as relay:
        first = await start_ingest(relay.url, nats_server.url, "a", "--lease-ttl", "60s")
        await first.wait_logged("active")
        second = await start_ingest(relay.url, nats_server.url, "b", "--lease-ttl", "60s")
        try:
            await wait_stream_count(nats_server.url, 300)
            stopped_at = asyncio.get_running_loop().time()
            assert await first.stop() == 0
            await second.wait_logged("taking over", timeout=10)
            waited = asyncio.get_running_loop().time() - stopped_at
            await wait_stream_count(nats_server.url, len(expected), timeout=30)
            await asyncio.sleep(0.3)
            messages = await stream_messages(nats_server.url)
        finally:
            await second.stop()
    assert waited < 10, "not the 60 s lease expiry"
    stream = [orjson.loads(m.data) for m in messages]
    assert [identity(e) for e in stream] == [identity(e) for e in expected]
    assert strictly_increasing(stream)
