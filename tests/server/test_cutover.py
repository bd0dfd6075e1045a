"""Replay → live while events keep arriving; slow consumers; restarts and ``kill -9``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import socket
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from jetflow.testing import FakeRelay, SyntheticFirehose
from tests.server.harness import (
    ServeProcess,
    expected_events,
    feed_relay,
    identity,
    parsed,
    receive,
    start_serve,
)


async def replay_all(server: ServeProcess, cursor: int = 0) -> list[str]:
    async with connect(f"{server.url}/subscribe?cursor={cursor}", max_size=None) as websocket:
        messages = await receive(websocket, idle=1.5)
    return [m for m in messages if isinstance(m, str)]


async def test_cutover_is_gapless_and_duplicate_free_while_events_arrive(
    tmp_path: Path, synthetic_frames: list[bytes]
) -> None:
    stored_first, live = synthetic_frames[:1200], synthetic_frames[1200:]
    async with FakeRelay(stored_first) as relay:
        server = await start_serve(relay.url, tmp_path / "data")
        try:
            await server.wait_metric(
                "consumer_events_persisted_total", len(expected_events(stored_first))
            )
            before = await replay_all(server)
            cursor = parsed(before[400:401])[0]["time_us"]

            async def late_subscriber(delay: float) -> list[str]:
                await asyncio.sleep(delay)
                async with connect(
                    f"{server.url}/subscribe?cursor={cursor}", max_size=None
                ) as websocket:
                    messages = await receive(websocket, idle=2.0)
                return [m for m in messages if isinstance(m, str)]

            feeding = asyncio.create_task(feed_relay(relay, live))
            clients = [
                asyncio.create_task(late_subscriber(delay)) for delay in (0.0, 0.1, 0.25, 0.5, 0.8)
            ]
            await feeding
            results = await asyncio.gather(*clients)
            await server.wait_metric(
                "consumer_events_persisted_total", len(expected_events(synthetic_frames))
            )
            truth = await replay_all(server, cursor)
        finally:
            await server.stop()
    assert len(truth) == len(expected_events(synthetic_frames)) - 400
    for received in results:
        stamps = [event["time_us"] for event in parsed(received)]
        assert all(a < b for a, b in itertools.pairwise(stamps)), "time_us must strictly increase"
        assert received == truth, "every event from the cursor on, exactly once, in order"


def _small_receive_buffer_socket(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


async def test_a_slow_consumer_is_dropped_with_1008_and_a_fast_one_keeps_everything(
    tmp_path: Path,
) -> None:
    frames = list(SyntheticFirehose(seed=11, repos=200).frames(9000))

    async def read_slowly(websocket: ClientConnection) -> int:
        """About a thousand messages a second, far behind the five thousand being sent."""
        count = 0
        with contextlib.suppress(ConnectionClosed):
            async for _ in websocket:
                count += 1
                if count % 10 == 0:
                    await asyncio.sleep(0.01)
        return count

    async with FakeRelay([]) as relay:
        server = await start_serve(relay.url, tmp_path / "data", "--max-backlog-bytes", "1000000")
        try:
            sock = _small_receive_buffer_socket(server.listen_port)
            async with connect(f"{server.url}/subscribe", sock=sock, max_queue=1) as slow:
                slow_reader = asyncio.create_task(read_slowly(slow))
                async with connect(f"{server.url}/subscribe", max_size=None) as fast:
                    receiving = asyncio.create_task(receive(fast, idle=3.0))
                    await feed_relay(relay, frames, per_tick=100, tick=0.02)
                    fast_messages = await receiving
                slow_count = await asyncio.wait_for(slow_reader, 20)
            await server.wait_metric(
                "consumer_events_persisted_total", len(expected_events(frames))
            )
            truth = await replay_all(server)
        finally:
            await server.stop()
    dropped = server.logged("subscriber dropped")
    assert len(dropped) == 1 and dropped[0]["reason"] == "consumer too slow"
    assert (slow.close_code, slow.close_reason) == (1008, "consumer too slow")
    assert slow_count < len(truth)
    assert fast_messages == truth and len(truth) == len(expected_events(frames))


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL])
async def test_restart_from_the_same_data_dir_loses_nothing_and_repeats_nothing(
    tmp_path: Path, synthetic_frames: list[bytes], stop_signal: int
) -> None:
    expected = expected_events(synthetic_frames)
    async with FakeRelay(synthetic_frames, frames_per_second=1500) as relay:
        first = await start_serve(relay.url, tmp_path / "data")
        await first.wait_metric("consumer_events_persisted_total", 600)
        await asyncio.sleep(0.3)
        code = await first.stop(stop_signal)
        assert code == (-signal.SIGKILL if stop_signal == signal.SIGKILL else 0)
        resumed_at = relay.connections[-1]
        second = await start_serve(relay.url, tmp_path / "data")
        try:
            await second.wait_metric("consumer_last_seq", len(synthetic_frames))
            await asyncio.sleep(0.5)
            stored = parsed(await replay_all(second))
        finally:
            await second.stop()
    assert relay.connections[-1].cursor is not None and relay.connections[-1].cursor > 0
    assert resumed_at.cursor is None
    assert [identity(event) for event in stored] == [identity(event) for event in expected]
    stamps = [event["time_us"] for event in stored]
    assert all(a < b for a, b in itertools.pairwise(stamps))


async def test_subscribers_stay_connected_while_the_relay_drops_and_comes_back(
    tmp_path: Path, synthetic_frames: list[bytes]
) -> None:
    async with FakeRelay(synthetic_frames[:500]) as relay:
        relay.drop_after(200)
        server = await start_serve(relay.url, tmp_path / "data", "--liveness-ttl", "2s")
        try:
            async with connect(f"{server.url}/subscribe?cursor=0", max_size=None) as websocket:
                await server.wait_metric("consumer_last_seq", 500)
                for frame in synthetic_frames[500:700]:
                    await relay.publish(frame)
                got = [m for m in await receive(websocket, idle=2.0) if isinstance(m, str)]
        finally:
            await server.stop()
    assert [identity(e) for e in parsed(got)] == [
        identity(e) for e in expected_events(synthetic_frames[:700])
    ]
    assert len(relay.connections) >= 2
