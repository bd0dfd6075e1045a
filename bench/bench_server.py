"""Benchmarks of ``jetflow serve``: fan-out CPU, replay speed, idle memory, ingest with the store.

1. **Fan-out CPU per subscriber-message**, with 100 and 1,000 live subscribers (mixed filters:
   everything, one collection, a collection prefix), against websockets' ``broadcast()`` of a
   shared payload to the same number of connections, in one run. The server's CPU is read from
   /proc while a burst of events goes out; the same burst with no subscribers is subtracted, so
   what remains is the cost of delivering. Subscribers are a swarm of cheap raw clients in
   another process (``bench/_swarm.py``).
2. **Replay**: one subscriber replays the whole store (``cursor=1``); events/s received.
3. **Idle memory**: RSS of the server before and after 1,000 idle subscribers connect.
4. **Ingest with the store**: decode → encode → compress → frames → SQLite append (batches,
   with the relay cursor) vs the same chain without the store, alternating runs.

    python bench/bench_server.py                 # all four (about 10 minutes)
    python bench/bench_server.py --only fanout --events 3000 --fanout-repeat 5

Fan-out runs alternate (broadcast, jetflow, broadcast, ...) and the table shows medians; the
CPU is read in clock ticks (10 ms), which makes one small burst imprecise; hence the medians.

Targets (issue 3): ≤ 1 µs server CPU per subscriber-message with 100 and 1,000 subscribers;
≥ 500k events/s replay; < 100 MiB for 1,000 idle subscribers; ingest with store ≥ 0.5×.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from _swarm import PYTHON, Swarm, cpu_seconds, rss_bytes  # noqa: E402

from jetflow.codec.firehose import FirehoseDecoder  # noqa: E402
from jetflow.codec.zstd import Compressor  # noqa: E402
from jetflow.events import WIRE_KINDS  # noqa: E402
from jetflow.store.sqlite import EventStore, StoredEvent  # noqa: E402
from jetflow.testing import FakeRelay, SyntheticFirehose  # noqa: E402

FILTERS = ["", "wantedCollections=app.bsky.feed.like", "wantedCollections=app.bsky.graph.*"]


async def start_serve(
    relay_url: str, data_dir: Path, port: int, *extra: str
) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "jetflow",
        "serve",
        "--relay",
        relay_url,
        "--listen",
        f"127.0.0.1:{port}",
        "--metrics-listen",
        "off",
        "--data-dir",
        str(data_dir),
        "--max-sub-rate",
        "100000000",
        "--max-backlog-bytes",
        str(1 << 30),
        *extra,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    while b'"serving"' not in await asyncio.wait_for(process.stderr.readline(), 30):
        pass
    asyncio.get_running_loop().create_task(_drain(process.stderr))
    return process


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def publish(relay: FakeRelay, frames: list[bytes], rate: float = 2000.0) -> None:
    """At about ``rate`` frames per second (the network's own pace is ~2,000 events/s)."""
    batch = max(1, int(rate / 50))
    for start in range(0, len(frames), batch):
        for frame in frames[start : start + batch]:
            await relay.publish(frame)
        await asyncio.sleep(batch / rate)


async def wait_quiet(pid: int, quiet: float = 0.6) -> None:
    """Until the process has used no CPU for a while (its queues are empty)."""
    last = cpu_seconds(pid)
    while True:
        await asyncio.sleep(quiet)
        now = cpu_seconds(pid)
        if now - last < 0.02:
            return
        last = now


# -- 1. fan-out ----------------------------------------------------------------------------------


async def fanout_jetflow(
    subscribers: int, alone_burst: list[bytes], busy_burst: list[bytes], warm: list[bytes]
) -> tuple[float, int]:
    """Server CPU seconds spent on delivery, and messages delivered: the CPU of a burst with
    subscribers minus that of an equal burst (same size and mix) without them."""
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        async with FakeRelay([], serve_history_without_cursor=False) as relay:
            server = await start_serve(relay.url, Path(data), port)
            try:
                await asyncio.sleep(1.0)
                await publish(relay, warm)
                await wait_quiet(server.pid)
                before = cpu_seconds(server.pid)
                await publish(relay, alone_burst)
                await wait_quiet(server.pid)
                alone = cpu_seconds(server.pid) - before
                swarm = await Swarm.start(f"ws://127.0.0.1:{port}", subscribers, FILTERS)
                await wait_quiet(server.pid)
                before = cpu_seconds(server.pid)
                await publish(relay, busy_burst)
                report = await swarm.settle()
                await wait_quiet(server.pid)
                busy = cpu_seconds(server.pid) - before
                await swarm.stop()
            finally:
                server.terminate()
                await server.wait()
    return busy - alone, report["frames"]


async def fanout_broadcast(subscribers: int, payloads: list[bytes]) -> tuple[float, int]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        PYTHON,
        str(BENCH / "_broadcast_server.py"),
        str(port),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    await process.stdout.readline()  # listening
    swarm = await Swarm.start(f"ws://127.0.0.1:{port}", subscribers, [""])
    process.stdin.write(f"emit {len(payloads)}\n".encode())
    await process.stdin.drain()
    done = json.loads(await process.stdout.readline())
    report = await swarm.settle()
    await swarm.stop()
    process.stdin.write(b"quit\n")
    await process.stdin.drain()
    await process.wait()
    return done["cpu"], report["frames"]


# -- 2. replay -------------------------------------------------------------------------------------


def fill_store(directory: Path, frames: list[bytes]) -> tuple[int, int]:
    """Store the frames' events; return (events, bytes of their text frames)."""
    store = EventStore(directory)
    compressor = Compressor()
    decoder = FirehoseDecoder()
    batch: list[StoredEvent] = []
    count = 0
    for frame in frames:
        for event in decoder.decode(frame):
            if event.kind in WIRE_KINDS:
                batch.append(StoredEvent.from_event(event, compressor))
        if len(batch) >= 2000:
            store.append(batch)
            count += len(batch)
            batch = []
    store.append(batch)
    count += len(batch)
    store.set_meta("zstd_dictionary_id", "0")
    (size,) = store._connection().execute("SELECT sum(text_len) FROM events").fetchone()
    store.close()
    return count, int(size)


async def replay_rate(frames: list[bytes], repeat: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as data:
        stored, size = fill_store(Path(data), frames)
        port = free_port()
        async with FakeRelay([], serve_history_without_cursor=False) as relay:
            server = await start_serve(relay.url, Path(data), port)
            try:
                rates = []
                for _ in range(repeat):
                    swarm = await Swarm.start(
                        f"ws://127.0.0.1:{port}", 1, ["cursor=1"], bytes_only=True
                    )
                    while (report := await swarm.report())["bytes"] < size:
                        await asyncio.sleep(0.01)
                    # both read CLOCK_MONOTONIC: from the handshake to the last byte
                    rates.append(stored / (report["last_at"] - report["connected_at"]))
                    await swarm.stop()
            finally:
                server.terminate()
                await server.wait()
    return statistics.median(rates), stored


# -- 3. idle memory --------------------------------------------------------------------------------


async def idle_memory(subscribers: int) -> tuple[int, int]:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        async with FakeRelay([], serve_history_without_cursor=False) as relay:
            server = await start_serve(relay.url, Path(data), port)
            try:
                await asyncio.sleep(1.0)
                before = rss_bytes(server.pid)
                swarm = await Swarm.start(f"ws://127.0.0.1:{port}", subscribers, FILTERS)
                await asyncio.sleep(1.0)
                after = rss_bytes(server.pid)
                await swarm.stop()
            finally:
                server.terminate()
                await server.wait()
    return before, after


# -- 4. ingest with the store ----------------------------------------------------------------


def ingest_rates(frames: list[bytes], repeat: int) -> tuple[float, float]:
    """Events/s of decode→frames alone and with the store, median of alternating runs."""

    def run(with_store: bool) -> float:
        with tempfile.TemporaryDirectory() as data:
            store = EventStore(data) if with_store else None
            compressor = Compressor()
            decoder = FirehoseDecoder()
            batch: list[StoredEvent] = []
            count = 0
            started = time.perf_counter()
            for frame in frames:
                for event in decoder.decode(frame):
                    if event.kind in WIRE_KINDS:
                        batch.append(StoredEvent.from_event(event, compressor))
                if len(batch) >= 1000:
                    if store is not None:
                        store.append(batch, relay_cursor=count, relay_url="ws://bench")
                    count += len(batch)
                    batch = []
            count += len(batch)
            if store is not None:
                store.append(batch, relay_cursor=count, relay_url="ws://bench")
                store.close()
            return count / (time.perf_counter() - started)

    alone, stored = [], []
    for _ in range(repeat):
        alone.append(run(False))
        stored.append(run(True))
    return statistics.median(alone), statistics.median(stored)


def fanout_row(name: str, subscribers: int, runs: list[tuple[float, int]]) -> None:
    """Medians of the runs' CPU seconds, messages, and µs per message."""
    cpu = statistics.median(cpu for cpu, _ in runs)
    messages = int(statistics.median(messages for _, messages in runs))
    per_message = statistics.median(cpu / messages * 1e6 for cpu, messages in runs)
    print(f"| {name} | {subscribers:,} | {messages:,} | {cpu:.2f} | {per_message:.2f} |")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=4000, help="frames per fan-out burst")
    parser.add_argument(
        "--replay-frames", type=int, default=100_000, help="frames in the replay store"
    )
    parser.add_argument("--repeat", type=int, default=5, help="replay and ingest repetitions")
    parser.add_argument(
        "--fanout-repeat", type=int, default=3, help="fan-out repetitions (each ~1 min)"
    )
    parser.add_argument("--only", choices=["fanout", "replay", "memory", "ingest"])
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    firehose = SyntheticFirehose(seed=3)
    warm = list(firehose.frames(500))
    burst = list(firehose.frames(args.events))
    other_burst = list(firehose.frames(args.events))
    if args.only in (None, "fanout"):
        payloads = [event.json for frame in burst for event in FirehoseDecoder().decode(frame)]
        print(
            f"\n| fan-out, 1 core (median of {args.fanout_repeat}) | subscribers | messages "
            "| server CPU s | µs per sub-message |"
        )
        print("|---|---:|---:|---:|---:|")
        for subscribers in (100, 1000):
            broadcast_runs, jetflow_runs = [], []
            for _ in range(args.fanout_repeat):  # alternating, so load changes hit both
                broadcast_runs.append(await fanout_broadcast(subscribers, payloads[: args.events]))
                burst, other_burst = (
                    list(firehose.frames(args.events)),
                    list(firehose.frames(args.events)),
                )
                jetflow_runs.append(await fanout_jetflow(subscribers, burst, other_burst, warm))
            fanout_row("websockets broadcast()", subscribers, broadcast_runs)
            fanout_row("jetflow serve (mixed filters)", subscribers, jetflow_runs)
    if args.only in (None, "replay"):
        rate, stored = await replay_rate(list(firehose.frames(args.replay_frames)), args.repeat)
        print(
            f"\nreplay: one subscriber, {stored:,} stored events: {rate:,.0f} events/s "
            f"(median of {args.repeat})"
        )
    if args.only in (None, "memory"):
        before, after = await idle_memory(1000)
        print(
            f"\nidle memory: RSS {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB "
            f"with 1,000 subscribers (+{(after - before) / 2**20:.1f} MiB)"
        )
    if args.only in (None, "ingest"):
        alone, stored = ingest_rates(list(firehose.frames(20_000)), args.repeat)
        print(
            f"\ningest: chain alone {alone:,.0f} events/s, with the store {stored:,.0f} events/s "
            f"({stored / alone:.2f}×)"
        )


if __name__ == "__main__":
    asyncio.run(main())
