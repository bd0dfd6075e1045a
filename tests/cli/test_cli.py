"""The ``jetflow`` command, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import zstandard

from jetflow.codec.capture import CaptureParser, encode_record

JETFLOW = [sys.executable, "-m", "jetflow"]


def jetflow(
    *args: str, timeout: float = 60, **options: object
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*JETFLOW, *args], capture_output=True, timeout=timeout, check=False, **options
    )  # type: ignore[call-overload, no-any-return]


def without_time(line: bytes) -> dict[str, object]:
    event = orjson.loads(line)
    event["time_us"] = 0
    return event  # type: ignore[no-any-return]


def test_convert_output_equals_production_jetstream_byte_for_byte(
    corpus_path: Path, expected_v1: list[bytes]
) -> None:
    result = jetflow("convert", str(corpus_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(expected_v1) == 152
    for line, expected in zip(lines, expected_v1, strict=True):
        time_us = orjson.loads(expected)["time_us"]
        ours = orjson.loads(line)["time_us"]
        assert line.replace(b'"time_us":%d' % ours, b'"time_us":%d' % time_us, 1) == expected


def test_convert_to_a_compressed_file(corpus_path: Path, tmp_path: Path) -> None:
    output = tmp_path / "events.jsonl.zst"
    assert jetflow("convert", str(corpus_path), "-o", str(output)).returncode == 0
    text = zstandard.ZstdDecompressor().decompressobj().decompress(output.read_bytes())
    assert len(text.splitlines()) == 152


def test_truncated_capture_converts_what_it_can_then_fails_naming_file_and_offset(
    corpus_frames: list[bytes], tmp_path: Path
) -> None:
    path = tmp_path / "cut.bin"
    whole = b"".join(encode_record(frame) for frame in corpus_frames[:5])
    path.write_bytes(whole[:-3])
    result = jetflow("convert", str(path))
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 4
    offset = len(b"".join(encode_record(frame) for frame in corpus_frames[:4]))
    assert f"{path}: truncated record".encode() in result.stderr
    assert f"offset {offset}".encode() in result.stderr


def test_tail_filters_a_replay(corpus_path: Path) -> None:
    result = jetflow(
        "tail", "--replay", str(corpus_path), "--collection", "app.bsky.graph.*", "--limit", "3"
    )
    assert result.returncode == 0, result.stderr
    events = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == 3 and all(
        e["commit"]["collection"].startswith("app.bsky.graph.") for e in events
    )


def test_tail_keeps_jetstream_semantics_for_identity_and_account(corpus_path: Path) -> None:
    result = jetflow("tail", "--replay", str(corpus_path), "--collection", "app.bsky.feed.like")
    kinds = {orjson.loads(line)["kind"] for line in result.stdout.splitlines()}
    assert kinds == {"commit", "identity", "account"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tail", "--limit", "0"], b"argument --limit"),
        (
            ["tail", "--replay", "{capture}", "--collection", "app.bsky.graph.fo*"],
            b"invalid collection: app.bsky.graph.fo*",
        ),
        (["tail", "--replay", "{capture}", "--relay", "ws://x"], b"choose one source"),
        (["relay", "{capture}", "--port", "70000"], b"argument --port"),
        (["nosuchcommand"], b"invalid choice"),
    ],
)
def test_usage_errors_exit_2_naming_the_argument(
    args: list[str], message: bytes, corpus_path: Path
) -> None:
    result = jetflow(*[arg.replace("{capture}", str(corpus_path)) for arg in args])
    assert result.returncode == 2
    assert message in result.stderr


def test_every_command_has_help() -> None:
    for command in ("", "tail", "convert", "record", "synth", "relay"):
        result = jetflow(*([command] if command else []), "--help")
        assert result.returncode == 0 and b"usage: jetflow" in result.stdout


def test_record_from_a_local_relay_writes_the_relay_frames(
    corpus_path: Path, corpus_frames: list[bytes], tmp_path: Path
) -> None:
    output = tmp_path / "recorded.bin.zst"
    command = [*JETFLOW, "relay", str(corpus_path), "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as relay:
        try:
            assert relay.stdout is not None
            url = relay.stdout.readline().decode().rsplit(" ", 1)[-1].strip()
            assert url.startswith("ws://127.0.0.1:")
            result = jetflow("record", "--relay", url, "-o", str(output), "--limit", "150")
            assert result.returncode == 0, result.stderr
        finally:
            relay.terminate()
    parser = CaptureParser(str(output))
    frames = list(
        parser.feed(zstandard.ZstdDecompressor().decompressobj().decompress(output.read_bytes()))
    )
    parser.close()
    assert frames == corpus_frames


def test_synth_writes_a_deterministic_capture_that_converts_cleanly(tmp_path: Path) -> None:
    first, second = tmp_path / "a.bin.zst", tmp_path / "b.bin.zst"
    for path in (first, second):
        result = jetflow("synth", "-o", str(path), "--frames", "300", "--seed", "4")
        assert result.returncode == 0, result.stderr
    raw = [
        zstandard.ZstdDecompressor().decompressobj().decompress(p.read_bytes())
        for p in (first, second)
    ]
    assert raw[0] == raw[1]
    converted = jetflow("convert", str(first))
    assert converted.returncode == 0 and b"skipped" not in converted.stderr
    assert len(converted.stdout.splitlines()) >= 300


def test_long_commands_show_progress_on_a_terminal(tmp_path: Path) -> None:
    import os
    import pty

    primary, secondary = pty.openpty()
    try:
        result = subprocess.run(
            [*JETFLOW, "synth", "-o", str(tmp_path / "p.bin"), "--frames", "2000"],
            stdout=subprocess.DEVNULL,
            stderr=secondary,
            timeout=120,
            check=False,
        )
        os.close(secondary)
        shown = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(primary)
    assert result.returncode == 0
    assert b"2,000/2,000 frames" in shown
    piped = jetflow("synth", "-o", str(tmp_path / "q.bin"), "--frames", "2000")
    assert b"frames" not in piped.stderr  # no progress when stderr is not a terminal
