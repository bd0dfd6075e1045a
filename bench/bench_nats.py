"""Benchmark of scale-out on NATS JetStream: ingest → NATS → serve → subscribers.

1. **Ingest and end to end**: a local relay serves a synthetic capture as fast as it is read;
   ``jetflow ingest`` publishes it to the stream while one ``jetflow serve --store nats://``
   node has one subscriber. Reported: events/s into the stream (ingest) and events/s at the
   subscriber (end to end), both from the moment the ingest became active.
2. **Fan-out, 1 serve process vs 2**: each serve process gets the same number of live
   subscribers (a swarm of cheap raw clients in another process, ``bench/_swarm.py``); a burst
   of events is put in the stream while the nodes are paused (SIGSTOP), then they are resumed
   and deliver it as fast as they can. Reported: deliveries/s (wall clock, all nodes
   together), and deliveries per CPU-second of the serve processes (read from /proc), which
   is what a node adds on a machine of its own: on this 2-core box the broker, the swarms and
   the nodes share the same two cores, so the wall clock cannot double.

    python bench/bench_nats.py                       # defaults: 20,000 frames, 200 subs/node
    python bench/bench_nats.py --frames 5000 --subscribers 100 --burst 5000 --repeat 3

The fan-out runs alternate (1 node, 2 nodes, 1 node, ...) ``--repeat`` times; the table has
medians, and the "added by the 2nd node" rows are medians of the per-repetition ratios.

Target (issue 5): adding a serve node adds ≥ 0.8× of one node's fan-out capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from _swarm import PYTHON, Swarm, cpu_seconds  # noqa: E402

from jetflow.broker.connection import BrokerURL, connect, ensure_stream  # noqa: E402
from jetflow.broker.messages import encode  # noqa: E402
from jetflow.broker.publisher import Publisher  # noqa: E402
from jetflow.broker.reader import last_event, time_of  # noqa: E402
from jetflow.broker.subjects import Subjects  # noqa: E402
from jetflow.broker.testing import NatsServer, free_port  # noqa: E402
from jetflow.codec.clock import MonotonicClock  # noqa: E402
from jetflow.codec.firehose import FirehoseDecoder  # noqa: E402
from jetflow.events import WIRE_KINDS, Event  # noqa: E402
from jetflow.testing import FakeRelay, SyntheticFirehose  # noqa: E402


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def start_process(*args: str, ready: bytes) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "jetflow",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    while ready not in (line := await asyncio.wait_for(process.stderr.readline(), 30)):
        if not line:
            raise RuntimeError(f"jetflow {args[0]} exited")
    asyncio.get_running_loop().create_task(_drain(process.stderr))
    return process


async def start_serve(nats_url: str, port: int) -> asyncio.subprocess.Process:
    return await start_process(
        "serve",
        "--store",
        nats_url,
        "--listen",
        f"127.0.0.1:{port}",
        "--metrics-listen",
        "off",
        "--max-sub-rate",
        "100000000",
        "--max-backlog-bytes",
        str(1 << 30),
        ready=b'"serving"',
    )


async def stream_count(client: Any, url: BrokerURL) -> int:
    info = await client.jetstream().stream_info(url.stream)
    return int(info.state.messages)


def decoded(frames: list[bytes]) -> list[Event]:
    decoder = FirehoseDecoder(clock=MonotonicClock())
    return [e for f in frames for e in decoder.decode(f) if e.kind in WIRE_KINDS]


# -- 1. ingest and end to end ---------------------------------------------------------------------


async def ingest_and_end_to_end(nats: NatsServer, frames: list[bytes]) -> tuple[int, float, float]:
    url = BrokerURL.parse(nats.url)
    client = await connect(url)
    await ensure_stream(client.jetstream(), url, create=True)
    total = len(decoded(frames))
    port = free_port()
    serve = await start_serve(nats.url, port)
    swarm = await Swarm.start(f"ws://127.0.0.1:{port}", 1, [""])
    async with FakeRelay(frames) as relay:
        ingest = await start_process(
            "ingest",
            "--relay",
            relay.url,
            "--to",
            nats.url,
            "--node-id",
            "bench",
            ready=b'"active"',
        )
        started = time.monotonic()
        ingested = 0.0
        while True:
            if not ingested and await stream_count(client, url) >= total + 1:  # + the epoch
                ingested = time.monotonic() - started
            report = await swarm.report()
            if report["frames"] >= total:
                end_to_end = report["last_at"] - (report["now"] - (time.monotonic() - started))
                break
            await asyncio.sleep(0.02)
        while not ingested:
            if await stream_count(client, url) >= total + 1:
                ingested = time.monotonic() - started
            await asyncio.sleep(0.02)
        ingest.terminate()
        await ingest.wait()
    await swarm.stop()
    serve.terminate()
    await serve.wait()
    await client.close()
    return total, total / ingested, total / max(end_to_end, ingested)


# -- 2. fan-out -----------------------------------------------------------------------------------


async def fanout(
    nats: NatsServer, nodes: int, subscribers: int, burst: list[Event]
) -> tuple[int, float, float]:
    """(deliveries, deliveries/s wall clock, deliveries per serve CPU-second)."""
    url = BrokerURL.parse(nats.url)
    client = await connect(url)
    ports = [free_port() for _ in range(nodes)]
    servers = [await start_serve(nats.url, port) for port in ports]
    swarms = [await Swarm.start(f"ws://127.0.0.1:{port}", subscribers, [""]) for port in ports]
    last = await last_event(client.jetstream(), url)
    base = time_of(last.headers, last.data) if last is not None else 0
    subjects = Subjects(url.prefix)
    messages = []
    for index, event in enumerate(burst):
        copy = Event.from_json(
            event.json.replace(
                f'"time_us":{event.time_us},'.encode(), f'"time_us":{base + index + 1},'.encode(), 1
            )
        )
        copy.seq, copy.op_index = None, index  # a fresh message id per burst
        subject, payload, headers = encode(subjects, copy)
        headers["Nats-Msg-Id"] = f"burst-{base}-{index}"
        messages.append((subject, payload, headers))
    await asyncio.sleep(0.5)
    # The burst goes into the stream while the nodes are paused, so what is measured next is
    # how fast they deliver it (their fan-out capacity), not how fast it can be published.
    for server in servers:
        server.send_signal(signal.SIGSTOP)
    publisher = Publisher(client, url, max_pending=4000)
    await publisher.start()
    for message in messages:
        await publisher.publish(*message)
    await publisher.flush(60)
    cpu_before = sum(cpu_seconds(s.pid) for s in servers)
    started = time.monotonic()
    for server in servers:
        server.send_signal(signal.SIGCONT)
    expected = len(burst) * subscribers * nodes
    deadline = time.monotonic() + 120
    while True:
        reports = [await swarm.report() for swarm in swarms]
        delivered = sum(r["frames"] for r in reports)
        if delivered >= expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    cpu = sum(cpu_seconds(s.pid) for s in servers) - cpu_before
    await publisher.close()
    for swarm in swarms:
        await swarm.stop()
    for server in servers:
        server.terminate()
        await server.wait()
    await client.close()
    return delivered, delivered / elapsed, delivered / cpu


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--subscribers", type=int, default=200, help="per serve process")
    parser.add_argument("--burst", type=int, default=10_000, help="events per fan-out burst")
    parser.add_argument("--repeat", type=int, default=5, help="fan-out repetitions (median)")
    args = parser.parse_args()
    frames = list(SyntheticFirehose(seed=1, repos=2000).frames(args.frames))
    burst = decoded(frames)[: args.burst]
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "js").mkdir()
        nats = NatsServer(Path(directory) / "js").start()
        try:
            events, ingest_rate, e2e_rate = await ingest_and_end_to_end(nats, frames)
            ones, twos = [], []
            for _ in range(args.repeat):
                ones.append(await fanout(nats, 1, args.subscribers, burst))
                twos.append(await fanout(nats, 2, args.subscribers, burst))
        finally:
            nats.stop()
    one = [statistics.median(run[field] for run in ones) for field in range(3)]
    two = [statistics.median(run[field] for run in twos) for field in range(3)]
    added_wall = statistics.median(b[1] / a[1] - 1 for a, b in zip(ones, twos, strict=True))
    added_per_cpu = statistics.median(b[2] * 2 / a[2] - 1 for a, b in zip(ones, twos, strict=True))
    rows = [
        (f"ingest: relay → NATS, events/s ({events:,} events)", f"{ingest_rate:,.0f}"),
        ("end to end: relay → NATS → serve → subscriber, ev/s", f"{e2e_rate:,.0f}"),
    ]
    for label, (_, rate, per_cpu) in (("1 serve process", one), ("2 serve processes", two)):
        rows.append((f"fan-out, {label}, deliveries/s", f"{rate:,.0f}"))
        rows.append((f"fan-out, {label}, deliveries/serve-CPU-s", f"{per_cpu:,.0f}"))
    rows.append(("added by the 2nd node, wall clock (× one node)", f"{added_wall:.2f}"))
    rows.append(("added by the 2nd node, per CPU (× one node)", f"{added_per_cpu:.2f}"))
    print(f"\nscale-out on NATS JetStream ({os.cpu_count()} cores, nats-server from PyPI)\n")
    print(f"| {'measure':<52} | {'value':>14} |")
    print(f"| {'-' * 52} | {'-' * 14}:|")
    for name, value in rows:
        print(f"| {name:<52} | {value:>14} |")
    print(
        f"\n{args.subscribers} live subscribers per serve process (everything filter), "
        f"bursts of {len(burst):,} events; fan-out: medians of {args.repeat} alternating runs."
    )


if __name__ == "__main__":
    asyncio.run(main())
