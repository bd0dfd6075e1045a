"""A third-party Jetstream client from the npm registry (@skyware/jetstream, on Node with the
``ws`` package) against a real ``jetflow serve``: it connects, filters, receives the expected
events, and reconnects with a cursor when the server restarts."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

from jetflow.testing import FakeRelay
from tests.server.harness import expected_events, free_port, start_serve

INTEROP = Path(__file__).resolve().parents[1] / "interop"


_KEY = ("did", "rev", "operation", "collection", "rkey")


def _expected_keys(frames: list[bytes], collections: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return [
        (event["did"], *(event["commit"][field] for field in _KEY[1:]))
        for event in expected_events(frames)
        if event["kind"] == "commit" and event["commit"]["collection"] in collections
    ]


def _received_keys(lines: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(line[field] for field in _KEY) for line in lines if line["kind"] == "commit"]


async def _lines(stream: asyncio.StreamReader, out: list[dict[str, Any]]) -> None:
    async for raw in stream:
        out.append(json.loads(raw))


async def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        await asyncio.sleep(0.05)


async def test_skyware_client_filters_and_resumes_with_a_cursor_across_a_restart(
    tmp_path: Path, synthetic_frames: list[bytes]
) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed for the interop test"
    assert (INTEROP / "node_modules" / "@skyware" / "jetstream").is_dir(), (
        "run `npm ci --prefix tests/interop` (the CI does)"
    )
    first, second = synthetic_frames[:1500], synthetic_frames[1500:]
    wanted = ("app.bsky.feed.like", "app.bsky.graph.follow")
    expected = _expected_keys(synthetic_frames, wanted)
    expected_first = _expected_keys(first, wanted)
    port = free_port()
    lines: list[dict[str, Any]] = []
    async with FakeRelay(first) as relay:
        server = await start_serve(relay.url, tmp_path / "data", "--listen", f"127.0.0.1:{port}")
        await server.wait_metric("consumer_events_persisted_total", len(expected_events(first)))
        client = await asyncio.create_subprocess_exec(
            node,
            str(INTEROP / "skyware_client.mjs"),
            f"ws://127.0.0.1:{port}/subscribe",
            ",".join(wanted),
            "1",
            cwd=INTEROP,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert client.stdout is not None
        reader = asyncio.create_task(_lines(client.stdout, lines))
        try:
            await _wait_for(
                lambda: len(_received_keys(lines)) >= len(expected_first), 30, "the replay"
            )
            await server.stop()
            server = await start_serve(
                relay.url, tmp_path / "data", "--listen", f"127.0.0.1:{port}"
            )
            for frame in second:
                await relay.publish(frame)
            await _wait_for(
                lambda: len(set(_received_keys(lines))) >= len(expected),
                60,
                "every wanted event after the reconnect",
            )
        finally:
            client.terminate()
            await client.wait()
            await reader
            await server.stop()
    commits = [line for line in lines if line["kind"] == "commit"]
    received = _received_keys(lines)
    assert all(line["collection"] in wanted for line in commits)
    assert list(dict.fromkeys(received)) == expected  # every wanted event, in order
    assert len(received) - len(set(received)) <= 1  # inclusive cursor: at most the last one again
    opens = [line for line in lines if line["kind"] == "open"]
    assert len(opens) >= 2 and opens[-1]["cursor"] >= commits[0]["time_us"]
