"""Many cheap websocket subscribers in one process, for the server benchmarks.

Each client does the websocket handshake by hand, then only counts the frames it receives
(reading headers, skipping payloads), so the swarm costs little CPU and the server's cost is
what gets measured. Driven over stdin/stdout: prints ``ready`` once every client is connected;
answers ``report`` with a JSON line of counts; exits on ``quit``.

    python bench/_swarm.py ws://127.0.0.1:6008 100 'cursor=1' 'wantedCollections=app.bsky.feed.like'

Query strings are assigned to clients round robin (mixed filters).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# With JETFLOW_SWARM_BYTES=1 clients only count bytes (cheapest, for replay speed).
COUNT_BYTES_ONLY = os.environ.get("JETFLOW_SWARM_BYTES") == "1"


class Counter(asyncio.Protocol):
    """Counts websocket frames in the byte stream after the handshake."""

    def __init__(self, request: bytes, connected: asyncio.Future[None]) -> None:
        self.request = request
        self.connected = connected
        self.buffer = bytearray()
        self.handshaken = False
        self.frames = 0
        self.bytes = 0
        self.last_at = 0.0
        self.connected_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.bytes += len(data)
        self.last_at = time.monotonic()
        if self.handshaken and COUNT_BYTES_ONLY:
            return
        buffer = self.buffer
        buffer += data
        if not self.handshaken:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.connected.set_exception(
                    RuntimeError(bytes(buffer[:200]).decode(errors="replace"))
                )
                return
            self.bytes -= end + 4  # count websocket bytes only
            del buffer[: end + 4]
            self.handshaken = True
            self.connected_at = time.monotonic()
            self.connected.set_result(None)
            if COUNT_BYTES_ONLY:
                return
        position = 0
        size = len(buffer)
        while size - position >= 2:
            length = buffer[position + 1] & 0x7F
            header = 2
            if length == 126:
                if size - position < 4:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 4], "big")
                header = 4
            elif length == 127:
                if size - position < 10:
                    break
                length = int.from_bytes(buffer[position + 2 : position + 10], "big")
                header = 10
            if size - position < header + length:
                break
            position += header + length
            self.frames += 1
        del buffer[:position]


async def open_client(url: str, query: str) -> Counter:
    parts = urlsplit(url)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /subscribe?{query} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    connected: asyncio.Future[None] = loop.create_future()
    _, counter = await loop.create_connection(
        lambda: Counter(request, connected), parts.hostname, parts.port
    )
    await connected
    return counter


async def main() -> None:
    url, count, *queries = sys.argv[1:]
    clients = []
    for index in range(int(count)):
        clients.append(await open_client(url, queries[index % len(queries)] if queries else ""))
    print("ready", flush=True)
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    while line := (await reader.readline()).decode().strip():
        if line == "report":
            report = {
                "frames": sum(c.frames for c in clients),
                "bytes": sum(c.bytes for c in clients),
                "per_client": [c.frames for c in clients],
                "last_at": max(c.last_at for c in clients),
                "connected_at": min(c.connected_at for c in clients),
                "now": time.monotonic(),
            }
            print(json.dumps(report), flush=True)
        elif line == "quit":
            break
    for client in clients:
        if client.transport is not None:
            client.transport.close()


# -- the driver, for the benchmark scripts ---------------------------------------------------

PYTHON = sys.executable
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


class Swarm:
    """The subscriber swarm subprocess."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(
        cls, url: str, count: int, queries: list[str], *, bytes_only: bool = False
    ) -> Swarm:
        process = await asyncio.create_subprocess_exec(
            PYTHON,
            __file__,
            url,
            str(count),
            *queries,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "JETFLOW_SWARM_BYTES": "1" if bytes_only else "0"},
        )
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 120)
        assert line.strip() == b"ready", line
        return cls(process)

    async def report(self) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(b"report\n")
        await self.process.stdin.drain()
        return json.loads(await self.process.stdout.readline())  # type: ignore[no-any-return]

    async def settle(self, quiet: float = 0.5, timeout: float = 120) -> dict[str, Any]:
        """Report once nothing has arrived for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            report = await self.report()
            if report["now"] - report["last_at"] >= quiet or time.monotonic() > deadline:
                return report
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"quit\n")
        await self.process.stdin.drain()
        await self.process.wait()


if __name__ == "__main__":
    asyncio.run(main())
