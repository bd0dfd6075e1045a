"""Broker fixtures: a real nats-server per test, ``jetflow ingest`` and ``jetflow serve
--store nats://`` subprocesses, and helpers to read the stream directly."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from jetflow.broker.connection import BrokerURL, connect
from jetflow.broker.reader import PullReader
from jetflow.broker.subjects import Subjects
from jetflow.broker.testing import NatsServer
from tests.server.harness import JETFLOW, LoggedProcess, ServeProcess, start_serve


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    (tmp_path / "jetstream").mkdir()
    server = NatsServer(tmp_path / "jetstream").start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class IngestProcess(LoggedProcess):
    """``jetflow ingest`` as a child process; its JSON log lines are kept in ``logs``."""

    process: asyncio.subprocess.Process
    node: str
    logs: list[dict[str, Any]] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    async def _read_logs(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self._log_line(raw)


async def start_ingest(relay_url: str, nats_url: str, node: str = "a", *args: str) -> IngestProcess:
    process = await asyncio.create_subprocess_exec(
        *JETFLOW,
        "ingest",
        "--relay",
        relay_url,
        "--to",
        nats_url,
        "--node-id",
        node,
        "--lease-ttl",
        "1.5s",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    ingest = IngestProcess(process, node)
    ingest._reader = asyncio.get_running_loop().create_task(ingest._read_logs())
    await ingest.wait_logged("ingest ready")
    return ingest


async def start_nats_serve(nats_url: str, data_dir: Path, *args: str) -> ServeProcess:
    return await start_serve(
        "ws://127.0.0.1:9", data_dir, "--store", nats_url, "--max-sub-rate", "1000000", *args
    )


async def stream_messages(nats_url: str) -> list[Any]:
    """Every event message in the stream, in stream order."""
    url = BrokerURL.parse(nats_url)
    client = await connect(url)
    try:
        reader = PullReader(
            client, url, [Subjects(url.prefix).all_events], start_seq=1, no_wait=True
        )
        out: list[Any] = []
        async for batch in reader.batches():
            out.extend(batch)
        return out
    finally:
        await client.close()


async def wait_stream_count(nats_url: str, count: int, timeout: float = 30) -> list[Any]:
    deadline = time.monotonic() + timeout
    messages: list[Any] = []
    while time.monotonic() < deadline:
        messages = await stream_messages(nats_url)
        if len(messages) >= count:
            return messages
        await asyncio.sleep(0.1)
    raise TimeoutError(f"stream has {len(messages)} events, waited for {count}")


@pytest_asyncio.fixture
async def broker_client(nats_server: NatsServer) -> AsyncIterator[Any]:
    client = await connect(BrokerURL.parse(nats_server.url))
    try:
        yield client
    finally:
        await client.close()
