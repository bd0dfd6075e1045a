"""Helpers of the dashboard tests: ports, HTTP, and jetflow commands run as real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from jetflow.codec.capture import CaptureParser
from jetflow.codec.firehose import FirehoseDecoder
from jetflow.sources.replay import open_maybe_zstd

JETFLOW = [sys.executable, "-m", "jetflow"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def snapshot(url: str) -> dict[str, Any]:
    status, _, body = http_get(url + "snapshot.json")
    assert status == 200
    result: dict[str, Any] = orjson.loads(body)
    return result


@dataclass
class Expected:
    """What decoding a capture gives, counted independently of the dashboard."""

    events: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    by_collection: Counter[str] = field(default_factory=Counter)
    latest_time_us: int = 0


def expected_counts(capture: Path) -> Expected:
    """Decode ``capture`` frame by frame, as the dashboard does (relay time), and count it.

    Plain synchronous code on purpose: no source, no Observable, no event loop (the
    Playwright sync API runs a loop of its own in the test's thread).
    """
    parser = CaptureParser(str(capture))
    with open_maybe_zstd(capture) as handle:
        frames = list(parser.feed(handle.read()))
    parser.close()
    decoder = FirehoseDecoder(relay_time=True)
    expected = Expected()
    for frame in frames:
        for event in decoder.decode(frame):
            expected.events += 1
            expected.by_kind[event.kind] += 1
            if event.kind == "commit":
                expected.by_operation[event.operation] += 1
                expected.by_collection[event.collection] += 1
            expected.latest_time_us = max(expected.latest_time_us, event.time_us)
    return expected


class Process:
    """A jetflow command running as a child process, stopped with SIGTERM (then SIGKILL).

    Its stderr goes to a temporary file (a pipe nobody reads could fill up and block it).
    """

    def __init__(self, *args: str, stdout_lines: int = 0) -> None:
        self.args = args
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.popen = subprocess.Popen(
            [*JETFLOW, *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            text=True,
        )
        self.lines: list[str] = []
        self.final_stderr = ""
        for _ in range(stdout_lines):
            assert self.popen.stdout is not None
            line = self.popen.stdout.readline()
            if not line:
                self.stop()
                raise RuntimeError(f"jetflow {args[0]} exited: {self.stderr()}")
            self.lines.append(line.strip())

    def stderr(self) -> str:
        if self._stderr.closed:
            return self.final_stderr
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self, timeout: float = 10) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        if not self._stderr.closed:
            self.final_stderr = self.stderr()
            self._stderr.close()
        return self.popen.returncode


def start_dashboard(*args: str) -> tuple[Process, str]:
    """``jetflow dashboard ARGS --port 0``; returns the process and the page's URL."""
    process = Process("dashboard", *args, "--port", "0", stdout_lines=1)
    word, url = process.lines[0].split()
    assert word == "dashboard", process.lines
    return process, url


def wait_until(condition: Any, timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met in {timeout} s")
        time.sleep(interval)
