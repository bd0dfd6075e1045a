"""``jetflow dashboard``: usage errors, and the real command serving a replayed capture."""

from __future__ import annotations

from pathlib import Path

import pytest

from jetflow.cli import main
from jetflow.testing import write_capture
from tests.dashboard.helpers import expected_counts, snapshot, start_dashboard, wait_until


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dashboard") / "capture.bin.zst"
    write_capture(path, 1500, seed=11)
    return path


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--relay", "ws://127.0.0.1:1", "--replay", "x.bin"], "choose one source"),
        (["--jetstream", "ws://127.0.0.1:1", "--rate", "5"], "--rate: only applies to --replay"),
        (["--replay", "missing.bin.zst"], "does not exist"),
        (["--server-metrics", "ftp://127.0.0.1/metrics"], "--server-metrics"),
        (["--server-metrics", "http://127.0.0.1:1", "--interval", "2"], "interval"),
        (["--collection", "not an nsid!", "--relay", "ws://127.0.0.1:1"], "not an nsid!"),
    ],
)
def test_usage_errors_exit_2_naming_the_option(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dashboard", *arguments, "--port", "0"]) == 2
    assert message in capsys.readouterr().err


def test_argparse_rejects_a_bad_port_and_rate(capsys: pytest.CaptureFixture[str]) -> None:
    for arguments in (["--port", "70000"], ["--replay", "x", "--rate", "0"]):
        with pytest.raises(SystemExit) as exited:
            main(["dashboard", *arguments])
        assert exited.value.code == 2
    assert "expected a port number" in capsys.readouterr().err


def test_serves_the_replayed_totals_and_exits_0_on_sigterm(capture: Path) -> None:
    expected = expected_counts(capture)
    process, url = start_dashboard("--replay", str(capture), "--top", "50")
    try:
        assert url.startswith("http://127.0.0.1:")
        snap = wait_until(lambda: (s := snapshot(url))["state"] == "finished" and s)
    finally:
        code = process.stop()
    assert code == 0
    assert snap["source"] == f"replay {capture}"
    assert snap["time_basis"] == "relay"
    assert snap["totals"]["events"] == expected.events
    assert snap["totals"]["by_kind"] == dict(expected.by_kind)
    assert snap["totals"]["by_operation"] == dict(expected.by_operation)
    assert {row["collection"]: row["events"] for row in snap["top_collections"]} == dict(
        expected.by_collection
    )
    assert snap["lag"]["latest_time_us"] == expected.latest_time_us


def test_filters_apply_before_counting(capture: Path) -> None:
    expected = expected_counts(capture)
    process, url = start_dashboard(
        "--replay", str(capture), "--collection", "app.bsky.feed.like", "--kind", "commit"
    )
    try:
        snap = wait_until(lambda: (s := snapshot(url))["state"] == "finished" and s)
    finally:
        process.stop()
    likes = expected.by_collection["app.bsky.feed.like"]
    assert snap["totals"]["events"] == likes
    assert snap["totals"]["by_kind"] == {"commit": likes}
    assert [row["collection"] for row in snap["top_collections"]] == ["app.bsky.feed.like"]


def pipeline_file(tmp_path: Path, capture: Path) -> Path:
    path = tmp_path / "likes.yaml"
    path.write_text(
        "name: likes\n"
        "source:\n"
        f"  replay: {{path: '{capture}'}}\n"
        "pipeline:\n"
        "  - decode: {time: relay}\n"
        "  - filter: {collections: [app.bsky.feed.like]}\n"
        "sinks:\n"
        f"  - jsonl: {{path: '{tmp_path / 'likes.jsonl'}'}}\n"
    )
    return path


@pytest.mark.parametrize("stream", ["pipeline", "source"])
def test_counts_a_stream_of_a_pipeline_file_while_it_runs(
    stream: str, capture: Path, tmp_path: Path
) -> None:
    expected = expected_counts(capture)
    likes = expected.by_collection["app.bsky.feed.like"]
    process, url = start_dashboard(
        "--pipeline", str(pipeline_file(tmp_path, capture)), "--stream", stream
    )
    try:
        snap = wait_until(lambda: (s := snapshot(url))["state"] == "finished" and s)
    finally:
        assert process.stop() == 0
    assert snap["source"] == f"pipeline likes ({stream})"
    if stream == "pipeline":  # after the file's filter
        assert snap["totals"]["events"] == likes
        assert snap["totals"]["by_kind"] == {"commit": likes}
        assert snap["time_basis"] == "event"
    else:  # what the source delivered, decoded with relay time
        assert snap["totals"]["events"] == expected.events
        assert snap["totals"]["by_kind"] == dict(expected.by_kind)
        assert snap["time_basis"] == "relay"
        assert snap["lag"]["latest_time_us"] == expected.latest_time_us
    # The pipeline's own sink ran too.
    assert len((tmp_path / "likes.jsonl").read_bytes().splitlines()) == likes


def test_pipeline_usage_errors_exit_2(
    capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = str(pipeline_file(tmp_path, capture))
    assert main(["dashboard", "--pipeline", good, "--stream", "nope", "--port", "0"]) == 2
    assert "--stream: 'nope' is not one of source, pipeline" in capsys.readouterr().err
    assert main(["dashboard", "--pipeline", good, "--collection", "a.b.c"]) == 2
    assert "--collection: does not apply to --pipeline" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nsource: {replay: {path: x}}\npipeline: [{decoder: {}}]\n")
    assert main(["dashboard", "--pipeline", str(broken)]) == 2
    assert "decoder" in capsys.readouterr().err
