"""``pipelines/broker_likes.yaml`` for real: two ``jetflow run`` workers share one durable
consumer of the stream, and every like is written by exactly one of them."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats.js.errors
import orjson
import pytest
import yaml
import zstandard

from jetflow.broker.connection import BrokerURL, connect
from jetflow.broker.testing import NatsServer
from jetflow.codec.clock import MonotonicClock
from jetflow.codec.firehose import FirehoseDecoder
from jetflow.events import WIRE_KINDS
from tests.broker.test_sink_source import publish_all

ROOT = Path(__file__).resolve().parents[2]


def read_jsonl_zst(directory: Path) -> list[dict[str, object]]:
    out = []
    for path in sorted(directory.glob("*.jsonl.zst")):
        raw = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
        out += [orjson.loads(line) for line in raw.splitlines() if line]
    return out


async def wait_for_consumer(
    js: Any, ready: Callable[[Any], bool], timeout: float = 30, name: str = "likes-archiver"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            if ready(await js.consumer_info("JETFLOW", name)):
                return
        await asyncio.sleep(0.05)
    raise TimeoutError("the durable consumer did not get there")


async def test_two_pipeline_workers_on_one_durable_consumer_process_each_like_once(
    nats_server: NatsServer, tmp_path: Path, synthetic_frames: list[bytes]
) -> None:
    decoder = FirehoseDecoder(clock=MonotonicClock())
    events = [e for f in synthetic_frames[:1500] for e in decoder.decode(f) if e.kind in WIRE_KINDS]
    await publish_all(nats_server.url, events[:1])  # the stream exists before workers start
    spec = yaml.safe_load((ROOT / "pipelines" / "broker_likes.yaml").read_text())
    spec["source"]["nats"]["url"] = nats_server.url
    workers = []
    for index in range(2):
        spec["sinks"][0]["jsonl"]["path"] = str(tmp_path / f"out{index}" / "likes.jsonl.zst")
        path = tmp_path / f"worker{index}.yaml"
        path.write_text(yaml.safe_dump(spec))
        workers.append(await run_worker(path, tmp_path))
    client = await connect(BrokerURL.parse(nats_server.url))
    try:
        js = client.jetstream()
        await wait_for_consumer(js, lambda info: (info.num_waiting or 0) >= 2)  # both pulling
        await publish_all(nats_server.url, events[1:])
        await wait_for_consumer(
            js,
            lambda info: (
                info.num_pending == 0
                and info.num_ack_pending == 0
                and info.delivered.stream_seq >= len(events)
            ),
        )
    finally:
        await client.close()
    for worker in workers:
        worker.send_signal(signal.SIGINT)
    codes = [await asyncio.wait_for(worker.wait(), 20) for worker in workers]
    assert codes == [0, 0]
    shares = [read_jsonl_zst(tmp_path / f"out{index}") for index in range(2)]
    written = [(e["did"], e["time_us"]) for share in shares for e in share]
    expected = [
        (e.did, e.time_us)
        for e in events
        if e.kind == "commit" and e.collection == "app.bsky.feed.like" and e.operation == "create"
    ]
    assert sorted(written) == sorted(expected) and len(set(written)) == len(written)
    assert all(shares), "both workers took part"


def worker_file(tmp_path: Path, name: str, source: dict[str, Any], extra: dict[str, Any]) -> Path:
    """A pipeline file: the given NATS source, every event to ``<name>/out.jsonl``."""
    spec = {
        "name": name,
        "source": {"nats": source},
        "sinks": [{"jsonl": {"path": str(tmp_path / name / "out.jsonl")}}],
        **extra,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def written_lines(directory: Path) -> list[dict[str, Any]]:
    """Every complete line a worker wrote (a killed worker may leave half a line)."""
    out = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_bytes().split(b"\n"):
            with contextlib.suppress(orjson.JSONDecodeError):
                out.append(orjson.loads(line))
    return out


async def run_worker(path: Path, cwd: Path) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jetflow",
        "run",
        str(path),
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    _started.append(process)
    return process


_started: list[asyncio.subprocess.Process] = []


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test() -> Iterator[None]:
    yield
    while _started:
        process = _started.pop()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()


async def wait_for_lines(directory: Path, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(written_lines(directory)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{directory} has {len(written_lines(directory))} lines")
        await asyncio.sleep(0.05)


async def test_a_worker_killed_mid_stream_loses_nothing_its_durable_successor_picks_it_up(
    nats_server: NatsServer, tmp_path: Path, synthetic_frames: list[bytes]
) -> None:
    """Acknowledgements wait for the sinks: what the killed worker had taken but not yet
    flushed (and so not acknowledged) goes to the next worker after ack_wait."""
    decoder = FirehoseDecoder(clock=MonotonicClock())
    events = [e for f in synthetic_frames[:1500] for e in decoder.decode(f) if e.kind in WIRE_KINDS]
    await publish_all(nats_server.url, events)
    source = {"url": nats_server.url, "durable": "archiver", "start": "all", "ack_wait": 2}
    first = await run_worker(
        worker_file(tmp_path, "first", source, {"checkpoint": {"path": "cp", "interval": 60}}),
        tmp_path,
    )
    # A long interval: the first worker takes events but acknowledges none before it dies.
    client = await connect(BrokerURL.parse(nats_server.url))
    try:
        js = client.jetstream()
        await wait_for_lines(tmp_path / "first", 200)  # it has processed events, and
        await asyncio.sleep(0.5)  # would have acknowledged them by now if it did not wait
        info = await js.consumer_info("JETFLOW", "archiver")
        assert info.num_ack_pending > 0 and info.ack_floor.stream_seq == 0
        first.send_signal(signal.SIGKILL)
        await first.wait()
        second = await run_worker(worker_file(tmp_path, "second", source, {}), tmp_path)
        await wait_for_consumer(
            js,
            lambda info: info.num_pending == 0 and info.num_ack_pending == 0,
            timeout=60,
            name="archiver",
        )
    finally:
        await client.close()
    second.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(second.wait(), 20) == 0
    survived = {(e["did"], e["time_us"]) for e in written_lines(tmp_path / "first")}
    redone = {(e["did"], e["time_us"]) for e in written_lines(tmp_path / "second")}
    assert survived | redone == {(e.did, e.time_us) for e in events}
    # Nothing was acknowledged by the first worker, so the second redid everything.
    assert len(redone) == len(events)


async def test_a_pipeline_checkpoint_in_kv_lets_another_process_resume_exactly(
    nats_server: NatsServer, tmp_path: Path, synthetic_frames: list[bytes]
) -> None:
    decoder = FirehoseDecoder(clock=MonotonicClock())
    events = [e for f in synthetic_frames[:600] for e in decoder.decode(f) if e.kind in WIRE_KINDS]
    await publish_all(nats_server.url, events[:300])
    source = {"url": nats_server.url, "start": "all"}
    checkpoint = {"checkpoint": {"nats": nats_server.url, "key": "resumer"}}
    path = worker_file(tmp_path, "resumer", source, checkpoint)
    first = await run_worker(path, tmp_path)
    await wait_for_lines(tmp_path / "resumer", 300)
    first.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(first.wait(), 20) == 0
    await publish_all(nats_server.url, events[300:])  # while no worker runs
    second = await run_worker(path, tmp_path)  # a new process; the file sink appends
    await wait_for_lines(tmp_path / "resumer", len(events))
    await asyncio.sleep(0.5)  # a duplicate would arrive now
    second.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(second.wait(), 20) == 0
    lines = [(e["did"], e["time_us"]) for e in written_lines(tmp_path / "resumer")]
    assert lines == [(e.did, e.time_us) for e in events]  # in order, each exactly once
