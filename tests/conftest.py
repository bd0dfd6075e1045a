"""Shared fixtures: the third-party reference data in ``../shared`` (read, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest
import zstandard

from jetflow.codec.capture import CaptureParser

pytest_plugins = ["tests.server_fixtures"]

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "jetstream"


def shared_file(name: str) -> Path:
    """A file of ``../shared/jetstream``; its absence fails the run (CI must not skip parity)."""
    path = SHARED / name
    if not path.is_file():
        pytest.fail(f"reference data {path} is missing: tests need ../shared next to the checkout")
    return path


@pytest.fixture(scope="session")
def corpus_path() -> Path:
    return shared_file("corpus/frames.bin.zst")


@pytest.fixture(scope="session")
def corpus_frames(corpus_path: Path) -> list[bytes]:
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(corpus_path.read_bytes())
    parser = CaptureParser(str(corpus_path))
    frames = list(parser.feed(raw))
    parser.close()
    return frames


@pytest.fixture(scope="session")
def expected_v1() -> list[bytes]:
    return shared_file("corpus/expected_v1.jsonl").read_bytes().splitlines()


@pytest.fixture(scope="session")
def golden_v1() -> list[bytes]:
    return shared_file("golden_v1.jsonl").read_bytes().splitlines()


@pytest.fixture(scope="session")
def dictionary_path() -> Path:
    return shared_file("zstd_dictionary")
