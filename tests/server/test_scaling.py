"""Fan-out in several processes on one port, the per-address rate limit, and connections that
vanish without a close."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from jetflow.testing import FakeRelay
from tests.server.harness import expected_events, free_port, parsed, receive, start_serve


async def test_two_fanout_processes_share_the_port_and_hand_out_the_same_cursors(
    tmp_path: Path, synthetic_frames: list[bytes]
) -> None:
    first, live = synthetic_frames[:600], synthetic_frames[600:900]
    metrics_port = free_port()
    async with FakeRelay(first) as relay:
        server = await start_serve(
            relay.url,
            tmp_path / "data",
            "--fanout-processes",
            "2",
            "--listen",
            f"127.0.0.1:{free_port()}",
            metrics_port=metrics_port,
        )
        try:
            await server.wait_metric("consumer_events_persisted_total", len(expected_events(first)))
            await _wait_until_serving(metrics_port + 1)  # the follower process is up
            clients = [
                await connect(f"{server.url}/subscribe?cursor=1", max_size=None, close_timeout=0.2)
                for _ in range(16)
            ]
            per_process = [
                server.metric("jetstream_subscribers_connected"),
                _metric_at(metrics_port + 1, "jetstream_subscribers_connected"),
            ]
            for frame in live:
                await relay.publish(frame)
            results = await asyncio.gather(*(receive(client, idle=2.0) for client in clients))
            for client in clients:
                await client.close()
        finally:
            await server.stop()
    assert sum(per_process) == 16 and min(per_process) > 0, per_process
    expected = len(expected_events(synthetic_frames[:900]))
    assert all(result == results[0] for result in results) and len(results[0]) == expected


async def _wait_until_serving(metrics_port: int, timeout: float = 20) -> None:
    from tests.server.harness import http_get

    deadline = time.monotonic() + timeout
    while (await asyncio.to_thread(http_get, f"http://127.0.0.1:{metrics_port}/metrics"))[0] != 200:
        assert time.monotonic() < deadline, "the follower process did not start"
        await asyncio.sleep(0.1)


def _metric_at(port: int, name: str) -> float:
    from tests.server.harness import http_get

    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    line = next(line for line in body.decode().splitlines() if line.startswith(name + " "))
    return float(line.split()[1])


async def test_rate_limit_paces_replay_per_client_address(
    tmp_path: Path, synthetic_frames: list[bytes]
) -> None:
    frames = synthetic_frames[:400]
    async with FakeRelay(frames) as relay:
        server = await start_serve(relay.url, tmp_path / "data", "--max-sub-rate", "100")
        try:
            count = len(expected_events(frames))
            await server.wait_metric("consumer_events_persisted_total", count)
            started = time.monotonic()
            async with connect(f"{server.url}/subscribe?cursor=1", max_size=None) as websocket:
                received: list[Any] = await receive(websocket, count, idle=10)
            elapsed = time.monotonic() - started
        finally:
            await server.stop()
    assert len(received) == count
    # a burst of 100, then 100 per second: nothing is dropped, it just takes longer
    assert elapsed >= (count - 100) / 100 * 0.8


async def test_a_connection_that_vanishes_is_cleaned_up_without_hurting_others(
    tmp_path: Path, synthetic_frames: list[bytes]
) -> None:
    async with FakeRelay(synthetic_frames[:300]) as relay:
        server = await start_serve(relay.url, tmp_path / "data")
        try:
            await server.wait_metric(
                "consumer_events_persisted_total", len(expected_events(synthetic_frames[:300]))
            )
            async with connect(f"{server.url}/subscribe", close_timeout=0.2) as bystander:
                ghost = await connect(f"{server.url}/subscribe?cursor=1&requireHello=true")
                ghost.transport.abort()  # no close frame, the socket just goes away
                await asyncio.sleep(0.5)
                assert server.metric("jetstream_subscribers_connected") == 1
                for frame in synthetic_frames[300:320]:
                    await relay.publish(frame)
                got = parsed(await receive(bystander, idle=1.5))
        finally:
            await server.stop()
    assert len(got) == len(expected_events(synthetic_frames[300:320]))
    assert any(
        entry.get("reason") == "connection lost"
        for entry in server.logged("subscriber disconnected")
    )
