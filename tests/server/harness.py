"""Driving a real ``jetflow serve`` subprocess, and websocket clients for it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import zstandard
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from jetflow.codec.firehose import FirehoseDecoder
from jetflow.events import WIRE_KINDS
from jetflow.testing import FakeRelay

JETFLOW = [sys.executable, "-m", "jetflow"]


class LoggedProcess:
    """A ``jetflow`` child process whose JSON log lines (stderr) are kept in ``logs``."""

    process: asyncio.subprocess.Process
    logs: list[dict[str, Any]]
    _reader: asyncio.Task[None] | None

    def _log_line(self, raw: bytes) -> dict[str, Any]:
        try:
            entry: dict[str, Any] = json.loads(raw)
        except ValueError:
            entry = {"msg": raw.decode(errors="replace").rstrip()}
        self.logs.append(entry)
        return entry

    def logged(self, message: str) -> list[dict[str, Any]]:
        return [entry for entry in self.logs if entry.get("msg") == message]

    async def wait_logged(self, message: str, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.logged(message)
            if found:
                return found[-1]
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.02)
        raise TimeoutError(f"never logged {message!r}: {self.logs[-5:]}")

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout)
        return code


@dataclass
class ServeProcess(LoggedProcess):
    """``jetflow serve`` running as a child process; its JSON log lines are kept in ``logs``."""

    process: asyncio.subprocess.Process
    data_dir: Path
    listen_port: int = 0
    metrics_port: int = 0
    logs: list[dict[str, Any]] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.listen_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.listen_port}"

    async def _read_logs(self, ready: asyncio.Future[None]) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            entry = self._log_line(raw)
            if entry.get("msg") == "serving" and not ready.done():
                self.listen_port = int(entry["listen"].rsplit(":", 1)[1])
                ready.set_result(None)
        if not ready.done():
            ready.set_exception(RuntimeError(f"jetflow serve exited: {self.logs[-5:]}"))

    async def wait_ready(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await asyncio.to_thread(http_get, f"{self.http}/readyz") == (200, b"ready"):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"jetflow serve not ready: {self.logs[-5:]}")

    def metric(self, name: str) -> float:
        status, body = http_get(f"http://127.0.0.1:{self.metrics_port}/metrics")
        assert status == 200
        for line in body.decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)

    async def wait_metric(self, name: str, value: float, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        current = None
        while time.monotonic() < deadline:
            current = await asyncio.to_thread(self.metric, name)
            if current >= value:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{name} is {current}, waited for {value}")


async def feed_relay(
    relay: FakeRelay, frames: list[bytes], per_tick: int = 20, tick: float = 0.01
) -> None:
    """Feed the relay at roughly per_tick / tick frames per second."""
    for start in range(0, len(frames), per_tick):
        for frame in frames[start : start + per_tick]:
            await relay.publish(frame)
        await asyncio.sleep(tick)


async def start_serve(
    relay_url: str, data_dir: Path, *args: str, metrics_port: int | None = None, ready: bool = True
) -> ServeProcess:
    metrics_port = metrics_port or free_port()
    process = await asyncio.create_subprocess_exec(
        *JETFLOW,
        "serve",
        "--relay",
        relay_url,
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        f"127.0.0.1:{metrics_port}",
        "--data-dir",
        str(data_dir),
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = ServeProcess(process, data_dir, metrics_port=metrics_port)
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    server._reader = asyncio.get_running_loop().create_task(server._read_logs(started))
    try:
        await asyncio.wait_for(started, 20)
        if ready:
            await server.wait_ready()
    except BaseException:
        await server.stop(signal.SIGKILL)  # never leave a server behind
        raise
    return server


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()
    except OSError:
        return 0, b""


# -- clients ---------------------------------------------------------------------------------


async def receive(
    websocket: ClientConnection, count: int | None = None, *, idle: float = 1.0
) -> list[bytes | str]:
    """Messages until ``count`` arrived, or none came for ``idle`` seconds, or the close."""
    out: list[bytes | str] = []
    while count is None or len(out) < count:
        try:
            out.append(await asyncio.wait_for(websocket.recv(), idle))
        except (TimeoutError, ConnectionClosed):
            break
    return out


def parsed(
    messages: Iterable[bytes | str], dictionary: bytes | None = None
) -> list[dict[str, Any]]:
    decompressor = (
        zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(dictionary))
        if dictionary is not None
        else zstandard.ZstdDecompressor()
    )
    out = []
    for message in messages:
        if isinstance(message, bytes):
            message = decompressor.decompressobj().decompress(message)
        out.append(orjson.loads(message))
    return out


def identity(event: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies an event apart from the server's ``time_us``."""
    body = event[event["kind"]]
    if event["kind"] == "commit":
        return (event["did"], body["rev"], body["operation"], body["collection"], body["rkey"])
    return (event["did"], event["kind"], body["seq"])


def expected_events(frames: Iterable[bytes]) -> list[dict[str, Any]]:
    """What Jetstream emits for these frames, in relay order (time_us set to 0)."""
    decoder = FirehoseDecoder(clock=lambda: 0)
    return [
        orjson.loads(event.json)
        for frame in frames
        for event in decoder.decode(frame)
        if event.kind in WIRE_KINDS
    ]


def without_time(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "time_us": 0}
