"""``jetflow dictionary download`` (from an HTTP server on 127.0.0.1) and ``train``."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from jetflow.codec.zstd import V1_DICTIONARY_ID, dictionary_id

JETFLOW = [sys.executable, "-m", "jetflow"]


@pytest.fixture
def file_server(dictionary_path: Path, tmp_path: Path) -> Iterator[str]:
    served = tmp_path / "served"
    served.mkdir()
    (served / "zstd_dictionary").write_bytes(dictionary_path.read_bytes())
    (served / "tampered").write_bytes(dictionary_path.read_bytes()[:-1] + b"\x00")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(served), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*JETFLOW, *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def test_download_checks_the_sha256_and_saves_to_the_user_cache(
    file_server: str, tmp_path: Path
) -> None:
    import os

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = run("dictionary", "download", "--url", f"{file_server}/zstd_dictionary", env=env)
    assert result.returncode == 0, result.stderr
    saved = tmp_path / "cache" / "jetflow" / "zstd_dictionary"
    assert dictionary_id(saved.read_bytes()) == V1_DICTIONARY_ID
    assert "1612007021" in result.stdout


def test_download_refuses_a_file_with_the_wrong_hash(file_server: str, tmp_path: Path) -> None:
    target = tmp_path / "dict"
    result = run("dictionary", "download", "--url", f"{file_server}/tampered", "-o", str(target))
    assert result.returncode == 1
    assert "sha256 is" in result.stderr and "not saved" in result.stderr
    assert not target.exists()
    missing = run("dictionary", "download", "--url", f"{file_server}/absent", "-o", str(target))
    assert missing.returncode == 1 and "cannot download" in missing.stderr


def test_train_builds_a_usable_dictionary_from_a_capture(corpus_path: Path, tmp_path: Path) -> None:
    from jetflow.codec.zstd import Compressor, Decompressor

    target = tmp_path / "trained"
    result = run("dictionary", "train", str(corpus_path), "-o", str(target), "--size", "16384")
    assert result.returncode == 0, result.stderr
    data = target.read_bytes()
    sample = b'{"did":"did:plc:x","time_us":1,"kind":"commit","commit":{"operation":"create"}}'
    assert Decompressor(data)(Compressor(data)(sample)) == sample
    assert dictionary_id(data) != 0
