"""Server fixtures, loaded by tests/conftest.py as a plugin: a synthetic capture, a
``jetflow relay`` serving it, and a ``jetflow serve`` fed by it with every event ingested."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from jetflow.codec.capture import encode_record
from jetflow.testing import SyntheticFirehose
from tests.server.harness import JETFLOW, ServeProcess, expected_events, start_serve


@pytest.fixture(scope="session")
def synthetic_frames() -> list[bytes]:
    return list(SyntheticFirehose(seed=7, repos=300).frames(3000))


@pytest.fixture(scope="session")
def synthetic_capture(
    tmp_path_factory: pytest.TempPathFactory, synthetic_frames: list[bytes]
) -> Path:
    path = tmp_path_factory.mktemp("capture") / "synthetic.bin"
    path.write_bytes(b"".join(encode_record(frame) for frame in synthetic_frames))
    return path


@pytest.fixture(scope="session")
def synthetic_events(synthetic_frames: list[bytes]) -> list[dict[str, Any]]:
    return expected_events(synthetic_frames)


async def start_relay(capture: Path) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        *JETFLOW,
        "relay",
        str(capture),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    banner = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
    return process, banner.rsplit(" ", 1)[-1].strip()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def ingested(
    synthetic_capture: Path,
    synthetic_events: list[dict[str, Any]],
    dictionary_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ServeProcess]:
    """A server (v1 dictionary) that has stored every event of the synthetic capture."""
    relay, url = await start_relay(synthetic_capture)
    try:
        server = await start_serve(
            url,
            tmp_path_factory.mktemp("data"),
            "--zstd-dictionary",
            str(dictionary_path),
            "--max-sub-rate",
            "1000000",
        )
        try:
            await server.wait_metric("consumer_events_persisted_total", len(synthetic_events))
            yield server
        finally:
            await server.stop()
    finally:
        relay.terminate()
        await relay.wait()
