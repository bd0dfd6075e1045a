"""``jetflow run``, ``jetflow lint`` and ``jetflow test`` as real subprocesses."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import zstandard

from jetflow.codec.firehose import FirehoseDecoder
from jetflow.codec.frame import Frame

JETFLOW = [sys.executable, "-m", "jetflow"]


def jetflow(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*JETFLOW, *args], capture_output=True, text=True, timeout=60, check=False, cwd=cwd
    )


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def without_time(line: bytes) -> bytes:
    return re.sub(rb'"time_us":\d+', b"", line)


@pytest.fixture
def langs_file(tmp_path: Path, synthetic_capture: Path) -> Path:
    return write(
        tmp_path / "langs.yaml",
        f"""\
        source: {{replay: {{path: "{synthetic_capture}"}}}}
        pipeline:
          - decode: {{time: relay}}
          - filter: {{collections: [app.bsky.feed.post], operations: [create]}}
          - count_by: {{key: record.langs.0, window: 1s}}
        sinks:
          - stdout
        """,
    )


def test_run_prints_the_pipeline_output_and_a_summary(
    langs_file: Path, synthetic_frames: list[bytes]
) -> None:
    result = jetflow("run", str(langs_file))
    assert result.returncode == 0, result.stderr
    windows = [json.loads(line) for line in result.stdout.splitlines()]
    decoder = FirehoseDecoder()
    posts = [
        event
        for frame in synthetic_frames
        for event in decoder.decode(frame)
        if event.collection == "app.bsky.feed.post" and event.operation == "create"
    ]
    assert len(windows) > 1 and sum(w["events"] for w in windows) == len(posts)
    assert all(sum(w["value"].values()) == w["events"] for w in windows)
    assert "jetflow run: langs: completed" in result.stderr
    assert "read 3,000" in result.stderr


def test_run_stops_after_max_events(langs_file: Path) -> None:
    result = jetflow("run", str(langs_file), "--max-events", "1")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1 and "max_events" in result.stderr


def test_run_refuses_a_broken_file_before_starting_anything(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    path = write(
        tmp_path / "bad.yaml",
        f"""\
        source: {{firehose: {{url: "ws://127.0.0.1:9"}}}}
        pipeline:
          - decode
          - count_by: {{key: commit.colection, window: 1m}}
        sinks:
          - jsonl: {{path: "{out}"}}
        """,
    )
    result = jetflow("run", str(path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{path}:4: pipeline[1].count_by.key: field path 'commit.colection': unknown commit"
        " field 'colection' (expected one of rev, operation, collection, rkey, cid; record"
        " fields are 'record.<key>')",
        f"jetflow run: {path}: 1 problem; nothing was started",
    ]
    assert not out.exists()


def test_run_needs_allow_python_for_a_file_with_python(
    tmp_path: Path, synthetic_capture: Path
) -> None:
    (tmp_path / "mine.py").write_text(
        "def ends_in_a(event):\n    return event.kind == 'commit' and event.rkey.endswith('a')\n"
    )
    path = write(
        tmp_path / "py.yaml",
        f"""\
        allow_python: true
        source: {{replay: {{path: "{synthetic_capture}"}}}}
        pipeline:
          - decode
          - filter: {{predicate: "mine:ends_in_a"}}
        sinks: [stdout]
        """,
    )
    refused = jetflow("run", str(path))
    assert refused.returncode == 2 and "allow it with --allow-python" in refused.stderr
    allowed = jetflow("run", str(path), "--allow-python")
    assert allowed.returncode == 0, allowed.stderr
    events = [json.loads(line) for line in allowed.stdout.split("\n") if line]
    assert 0 < len(events) < 1000
    assert all(event["commit"]["rkey"].endswith("a") for event in events)


def test_sigint_stops_a_run_cleanly_with_flushed_files_and_checkpoint(
    tmp_path: Path, synthetic_capture: Path, synthetic_frames: list[bytes]
) -> None:
    out, cursor_file = tmp_path / "events.jsonl.zst", tmp_path / "cursor.json"
    path = write(
        tmp_path / "archive.yaml",
        f"""\
        source: {{replay: {{path: "{synthetic_capture}", rate: 1000}}}}
        pipeline: [decode]
        sinks:
          - jsonl: {{path: "{out}"}}
        checkpoint: {{path: "{cursor_file}", interval: 100ms}}
        """,
    )
    process = subprocess.Popen(
        [*JETFLOW, "run", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not cursor_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cursor_file.exists(), "the run never checkpointed"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    cursor = json.loads(cursor_file.read_text())["cursor"]
    assert 0 < cursor < 3000
    # The file is a complete zstd stream holding exactly the events of frames 1..cursor.
    data = zstandard.ZstdDecompressor().stream_reader(out.read_bytes()).read()
    decoder = FirehoseDecoder()
    expected = [
        without_time(event.json)
        for frame in synthetic_frames
        if (Frame(frame).seq or 0) <= cursor
        for event in decoder.decode(frame)
        if event.kind in ("commit", "identity", "account")
    ]
    assert [without_time(line) for line in data.split(b"\n") if line] == expected


def test_lint_says_ok_for_clean_files(langs_file: Path) -> None:
    result = jetflow("lint", str(langs_file))
    assert result.returncode == 0 and result.stdout == f"{langs_file}: ok\n"


def test_test_runs_the_cases_next_to_the_file_and_shows_a_diff(
    tmp_path: Path, synthetic_capture: Path
) -> None:
    pipeline = write(
        tmp_path / "posts.yaml",
        """\
        source: {firehose: {}}
        pipeline:
          - decode
          - filter: {collections: [app.bsky.feed.post]}
        sinks: [stdout]
        """,
    )
    post = (
        '{"did":"did:plc:a","time_us":1,"kind":"commit","commit":{"rev":"3l","operation":'
        '"create","collection":"app.bsky.feed.post","rkey":"3p","record":{"text":"hi"}}}'
    )
    like = post.replace("feed.post", "feed.like")
    write(
        tmp_path / "posts_test.yaml",
        f"""\
        cases:
          - name: keeps posts
            events: ['{post}', '{like}']
            expect:
              - lines: ['{post}']
          - name: a wrong expectation
            events: ['{post}', '{like}']
            expect:
              - lines: ['{like}']
          - name: a capture next to the test
            capture: {synthetic_capture.name}
            expect:
              - count: 0
        """,
    )
    (tmp_path / synthetic_capture.name).write_bytes(synthetic_capture.read_bytes())
    result = jetflow("test", str(pipeline))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{pipeline} (posts_test.yaml)"
    assert re.fullmatch(r"  PASS  keeps posts \(\d+\.\d\d s\)", lines[1])
    assert re.fullmatch(r"  FAIL  a wrong expectation \(\d+\.\d\d s\)", lines[2])
    assert lines[3:8] == [
        "        sinks[0] differs:",
        "        --- expected",
        "        +++ actual",
        "        @@ -1 +1 @@",
        '        -{"commit":{"collection":"app.bsky.feed.like","operation":"create","record":'
        '{"text":"hi"},"rev":"3l","rkey":"3p"},"did":"did:plc:a","kind":"commit","time_us":1}',
    ]
    assert re.fullmatch(r"  FAIL  a capture next to the test \(\d+\.\d\d s\)", lines[9])
    assert lines[10].strip().startswith("sinks[0]: expected 0 items, got ")
    assert lines[-1] == "1 passed, 2 failed"


def test_test_without_a_test_file_is_a_usage_error(langs_file: Path) -> None:
    result = jetflow("test", str(langs_file))
    assert result.returncode == 2 and "no test file" in result.stderr
