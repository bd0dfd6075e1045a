"""The Pipeline runtime: bounded runs, background runs, error policies, branches, checkpoints.

Sources are real (replays of a synthetic capture, a FakeRelay on 127.0.0.1); expected counts
come from decoding the same frames independently.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
import reactivex as rx
import zstandard

import jetflow as jf
from jetflow import operators as op
from jetflow.codec.firehose import FirehoseDecoder
from jetflow.codec.frame import Frame
from jetflow.errors import ConfigError, JetflowError, UserFunctionError
from jetflow.events import Event
from jetflow.pipeline import Output, Pipeline, Stream
from jetflow.sinks import callback, jsonl
from jetflow.sources import firehose, memory, replay
from jetflow.sources._backoff import Backoff
from jetflow.testing import CollectingSink, FakeRelay
from jetflow.userfn import FailedEvent
from tests.builders import commit_frame, like

POST = "app.bsky.feed.post"


@pytest.fixture(scope="module")
def decoded(synthetic_frames: list[bytes]) -> list[Event]:
    decoder = FirehoseDecoder()
    return [event for frame in synthetic_frames for event in decoder.decode(frame)]


def posts_of(events: list[Event]) -> list[Event]:
    return [e for e in events if e.collection == POST and e.operation == "create"]


# -- running -------------------------------------------------------------------------------------


async def test_a_run_to_the_end_collects_everything_without_a_sink(
    synthetic_capture: Path, decoded: list[Event]
) -> None:
    pipeline = Pipeline(replay(synthetic_capture), [op.decode(), op.filter(collections=[POST])])
    result = await pipeline.run_async()
    assert result.reason == "completed"
    assert [e.rkey for e in result.items] == [e.rkey for e in decoded if e.collection == POST]
    assert result.stats.read == 3000 and pipeline.stats.state == "completed"


async def test_a_bounded_run_returns_exactly_max_events_items(synthetic_capture: Path) -> None:
    pipeline = Pipeline(replay(synthetic_capture), [op.decode()])
    first = await pipeline.run_async(max_events=7)
    again = await pipeline.run_async(max_events=3)  # a notebook cell run twice
    assert first.reason == again.reason == "max_events"
    assert len(first.items) == 7 and len(again.items) == 3
    assert first.stats.read < 20  # it stopped reading, it did not drain the capture


def test_run_blocks_in_a_script_and_returns_the_result(synthetic_capture: Path) -> None:
    result = Pipeline(replay(synthetic_capture), [op.decode()]).run(max_events=5)
    assert result.reason == "max_events" and len(result.items) == 5


async def test_run_inside_a_running_loop_uses_a_worker_thread(synthetic_capture: Path) -> None:
    # As in Jupyter, where the kernel's loop is running and asyncio.run() would fail.
    result = Pipeline(replay(synthetic_capture), [op.decode()]).run(max_events=4)
    assert len(result.items) == 4


async def test_start_runs_in_the_background_with_live_stats_and_stops_cleanly(
    synthetic_capture: Path,
) -> None:
    windows: CollectingSink[Any] = CollectingSink()
    pipeline = Pipeline(
        replay(synthetic_capture, rate=2000),
        [op.decode(time="relay"), op.count_by("commit.collection", window="1h")],
        [windows],
    )
    handle = pipeline.start()
    await asyncio.sleep(0.3)
    seen = handle.stats.read
    assert 0 < seen < 3000 and not handle.done
    result = await handle.stop()
    assert handle.done and result.reason == "stopped"
    assert 0 < result.stats.read < 3000
    # A clean stop completes the stream: the open window was emitted, with what was read.
    (window,) = windows.items
    assert window.events == sum(window.value.values()) > 0


async def test_stop_right_after_start_stops_before_reading(synthetic_capture: Path) -> None:
    handle = Pipeline(replay(synthetic_capture), [op.decode()]).start()
    result = await handle.stop()
    assert result.reason == "stopped" and result.stats.read == 0


def test_start_needs_a_running_loop(synthetic_capture: Path) -> None:
    with pytest.raises(JetflowError, match="running event loop"):
        Pipeline(replay(synthetic_capture)).start()


async def test_timeout_stops_a_paced_source(synthetic_capture: Path) -> None:
    result = await Pipeline(replay(synthetic_capture, rate=500), [op.decode()]).run_async(
        timeout=0.3
    )
    assert result.reason == "timeout" and 50 < result.stats.read < 500


async def test_sinks_serve_one_run(synthetic_capture: Path) -> None:
    pipeline = Pipeline(replay(synthetic_capture), [op.decode()], [CollectingSink()])
    await pipeline.run_async(max_events=1)
    with pytest.raises(JetflowError, match="sink sinks\\[0\\] is closed"):
        await pipeline.run_async(max_events=1)


async def test_an_observable_built_with_pipe_can_be_the_source(synthetic_capture: Path) -> None:
    source = replay(synthetic_capture).pipe(op.decode(), op.filter(collections=[POST]))
    result = await Pipeline(source).run_async(max_events=10)
    assert len(result.items) == 10 and all(e.collection == POST for e in result.items)


# -- branches --


async def test_streams_branch_and_a_shared_stream_is_computed_once(
    synthetic_capture: Path, decoded: list[Event]
) -> None:
    stats = jf.DecodeStats()
    posts, counts, everything = CollectingSink(), CollectingSink(), CollectingSink()
    pipeline = Pipeline(
        replay(synthetic_capture),
        [op.decode(stats=stats, time="relay")],
        [("posts", posts), ("langs", counts), everything],
        streams={
            "posts": Stream("pipeline", [op.filter(collections=[POST], operations=["create"])]),
            "langs": Stream("posts", [op.count_by("commit.collection", window="1h")]),
        },
    )
    await pipeline.run_async()
    assert stats.frames == 3000  # decoded once, though three sinks read downstream of it
    assert len(everything.items) == len(decoded)
    assert [e.rkey for e in posts.items] == [e.rkey for e in posts_of(decoded)]
    assert [w.value for w in counts.items] == [{POST: len(posts_of(decoded))}]


@pytest.mark.parametrize(
    ("streams", "sinks", "message"),
    [
        ({"a": Stream("nowhere")}, [("a", None)], "streams.a: reads unknown stream 'nowhere'"),
        ({"a": Stream("b"), "b": Stream("a")}, [("a", None)], "cycle a -> b -> a"),
        ({"a": Stream("source")}, [], "streams.a: read by no sink or stream"),
        ({}, [("posts", None)], "sinks: unknown stream 'posts'"),
    ],
)
def test_bad_graphs_are_refused(
    streams: dict[str, Stream], sinks: list[tuple[str, None]], message: str
) -> None:
    outputs = [(name, CollectingSink()) for name, _ in sinks] or [CollectingSink()]
    with pytest.raises(ConfigError, match=message.replace("[", "\\[")):
        Pipeline(memory([]), [], outputs, streams=streams)  # type: ignore[arg-type]


# -- errors in user functions --


def picky(event: Event) -> Event:
    if event.rkey.endswith("a"):
        raise ValueError(f"no rkeys ending in a: {event.rkey}")
    return event


async def test_stop_policy_fails_the_run_naming_the_event(
    synthetic_capture: Path, decoded: list[Event]
) -> None:
    first_bad = next(e for e in decoded if e.rkey.endswith("a"))
    pipeline = Pipeline(replay(synthetic_capture), [op.decode(), op.map(picky)])
    with pytest.raises(UserFunctionError) as caught:
        await pipeline.run_async()
    message = str(caught.value)
    assert "tests.test_pipeline:picky raised ValueError" in message
    assert f"did={first_bad.did} collection={first_bad.collection} rkey={first_bad.rkey}" in message
    assert isinstance(caught.value.__cause__, ValueError)
    result = caught.value.result  # type: ignore[attr-defined]
    assert result.reason == "failed" and result.stats.errors == 1
    assert [e.rkey for e in result.items] == [e.rkey for e in decoded[: decoded.index(first_bad)]]


async def test_skip_policy_skips_and_counts_exactly_the_failing_events(
    synthetic_capture: Path, decoded: list[Event]
) -> None:
    bad = [e for e in decoded if e.rkey.endswith("a")]
    result = await Pipeline(
        replay(synthetic_capture), [op.decode(), op.map(picky)], on_error="skip"
    ).run_async()
    assert result.reason == "completed"
    assert result.stats.errors == result.stats.skipped == len(bad) > 0
    assert result.stats.errors_by_type == {"ValueError": len(bad)}
    assert [e.rkey for e in result.items] == [e.rkey for e in decoded if e not in bad]


async def test_errors_routed_to_a_sink_carry_the_event_and_the_exception(
    synthetic_capture: Path, decoded: list[Event]
) -> None:
    errors: CollectingSink[FailedEvent] = CollectingSink()
    result = await Pipeline(
        replay(synthetic_capture), [op.decode(), op.map(picky)], on_error=errors
    ).run_async()
    bad = [e for e in decoded if e.rkey.endswith("a")]
    assert result.stats.routed == len(bad) and result.stats.skipped == 0
    assert [failed.event.rkey for failed in errors.items] == [e.rkey for e in bad]  # type: ignore[union-attr]
    first = errors.items[0]
    assert isinstance(first.error, ValueError) and first.function == "tests.test_pipeline:picky"
    record = json.loads(first.json)
    assert record["error_type"] == "ValueError" and record["event"]["commit"]["rkey"] == bad[0].rkey


def multi_op_frame() -> bytes:
    ops = [("create", f"app.bsky.feed.like/3lk{n}", like()) for n in "abc"]
    return commit_frame(ops, seq=1)


async def test_an_unguarded_predicate_is_located_by_its_event_and_skips_the_rest_of_the_frame() -> (
    None
):
    def reject_b(event: Event) -> bool:
        if event.rkey == "3lkb":
            raise KeyError("b")
        return True

    pipeline = Pipeline(
        memory([Frame(multi_op_frame())]),
        [op.decode(), op.filter(predicate=reject_b)],
        on_error="skip",
    )
    result = await pipeline.run_async()
    assert [e.rkey for e in result.items] == ["3lka"]  # 3lkc was in the same frame
    errors: CollectingSink[FailedEvent] = CollectingSink()
    await Pipeline(
        memory([Frame(multi_op_frame())]),
        [op.decode(), op.filter(predicate=reject_b)],
        on_error=errors,
    ).run_async()
    (failed,) = errors.items
    assert failed.event is not None and failed.event.rkey == "3lkb"
    assert failed.function is not None and failed.function.endswith("reject_b")
    assert isinstance(failed.item, Frame)


async def test_a_guarded_predicate_skips_exactly_its_event() -> None:
    from jetflow.userfn import guard

    def reject_b(event: Event) -> bool:
        if event.rkey == "3lkb":
            raise KeyError("b")
        return True

    result = await Pipeline(
        memory([Frame(multi_op_frame())]),
        [op.decode(), op.filter(predicate=guard(reject_b, "predicate"))],
        on_error="skip",
    ).run_async()
    assert [e.rkey for e in result.items] == ["3lka", "3lkc"]
    assert result.stats.skipped == 1


async def test_async_callback_errors_follow_the_policy(decoded: list[Event]) -> None:
    async def store(event: Event) -> None:
        await asyncio.sleep(0)
        if event.kind != "commit":
            raise RuntimeError(f"cannot store {event.kind}")

    non_commits = [e for e in decoded if e.kind != "commit"]
    skipping = callback(store)
    result = await Pipeline(memory(decoded), [], [skipping], on_error="skip").run_async()
    assert result.stats.skipped == len(non_commits) > 0
    assert skipping.stats.delivered == len(decoded) - len(non_commits)
    assert skipping.stats.errors == {"RuntimeError": len(non_commits)}
    with pytest.raises(UserFunctionError, match=f"did={non_commits[0].did} kind="):
        await Pipeline(memory(decoded), [], [callback(store)]).run_async()


async def test_jetflow_errors_always_stop_the_run(tmp_path: Path) -> None:
    def broken(event: Event) -> None:
        raise ConfigError("not a user mistake")

    with pytest.raises(ConfigError, match="not a user mistake"):
        await Pipeline(
            memory([Frame(multi_op_frame())]), [op.decode(), op.tap(broken)], on_error="skip"
        ).run_async()


def test_outside_a_pipeline_the_error_propagates_with_a_note_naming_the_event() -> None:
    events = [Event("commit", "did:plc:x", 1, operation="create", collection=POST, rkey="3a")]
    errors: list[Exception] = []
    rx.from_iterable(events).pipe(op.map(picky)).subscribe(on_error=errors.append)
    (error,) = errors
    assert isinstance(error, ValueError)
    assert any("did=did:plc:x collection=app.bsky.feed.post rkey=3a" in n for n in error.__notes__)


# -- checkpoints --


def without_time(line: bytes) -> bytes:
    return re.sub(rb'"time_us":\d+', b"", line)


def read_cursor(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text())["cursor"])
    except (OSError, ValueError, KeyError):
        return None


async def test_the_checkpoint_never_passes_what_the_sinks_have_handled(
    synthetic_frames: list[bytes], tmp_path: Path
) -> None:
    checkpoint = tmp_path / "cursor.json"
    handled: list[int] = []

    async def slow(event: Event) -> None:
        await asyncio.sleep(0.001)
        assert event.seq is not None
        handled.append(event.seq)

    pipeline = Pipeline(
        memory([Frame(frame) for frame in synthetic_frames[:400]]),
        [op.decode()],
        [callback(slow, buffer_size=20)],
        checkpoint=checkpoint,
        checkpoint_interval=0.02,
    )
    handle = pipeline.start()
    observed = []
    while not handle.done:
        cursor = read_cursor(checkpoint)
        if cursor is not None:
            observed.append(cursor)
            assert cursor <= max(handled)  # never ahead of the slow sink
        await asyncio.sleep(0.003)
    result = await handle
    assert len(set(observed)) > 3 and result.stats.checkpoints > 3
    last_seq = Frame(synthetic_frames[399]).seq
    assert read_cursor(checkpoint) == result.cursor == last_seq  # the final one, after close


async def test_a_restarted_firehose_pipeline_resumes_after_the_checkpoint(
    synthetic_frames: list[bytes], tmp_path: Path
) -> None:
    checkpoint, out = tmp_path / "cursor.json", tmp_path / "events.jsonl"
    fast = {"backoff": Backoff(base=0.01, cap=0.05)}
    frames = synthetic_frames[:300]
    async with FakeRelay(frames) as relay:
        first = await Pipeline(
            firehose(relay.url, **fast), [op.decode()], [jsonl(out)], checkpoint=checkpoint
        ).run_async(max_events=100)
        saved = read_cursor(checkpoint)
        assert saved is not None and saved == first.cursor
        second_out = tmp_path / "rest.jsonl"
        second = Pipeline(
            firehose(relay.url, **fast), [op.decode()], [jsonl(second_out)], checkpoint=checkpoint
        )
        handle = second.start()
        while read_cursor(checkpoint) != relay.last_seq:
            await asyncio.sleep(0.02)
        await handle.stop()
    assert relay.connections[-1].cursor == saved
    decoder = FirehoseDecoder()
    expected = [e.rkey for frame in frames for e in decoder.decode(frame) if e.kind == "commit"]
    written = [
        json.loads(line)["commit"]["rkey"]
        for file in (out, second_out)
        for line in file.read_text().splitlines()
        if '"kind":"commit"' in line
    ]
    assert written == expected  # no gap, no repeat across the restart


async def test_a_replay_resumes_by_skipping_to_the_checkpoint(
    synthetic_capture: Path, tmp_path: Path, decoded: list[Event]
) -> None:
    checkpoint = tmp_path / "cursor.json"
    first = await Pipeline(
        replay(synthetic_capture), [op.decode()], checkpoint=checkpoint
    ).run_async(max_events=50)
    rest = await Pipeline(
        replay(synthetic_capture), [op.decode()], checkpoint=checkpoint
    ).run_async()
    both = [e.rkey + e.did for e in [*first.items, *rest.items]]
    assert both == [e.rkey + e.did for e in decoded]


def test_a_firehose_checkpoint_belongs_to_the_pipeline(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="give it to the Pipeline"):
        Pipeline(
            firehose("ws://127.0.0.1:9", checkpoint=tmp_path / "a.json"),
            checkpoint=tmp_path / "b.json",
        )


async def test_a_checkpointed_jsonl_file_holds_every_event_up_to_the_cursor(
    synthetic_capture: Path, tmp_path: Path, decoded: list[Event]
) -> None:
    out, checkpoint = tmp_path / "out.jsonl.zst", tmp_path / "cursor.json"
    expected = [without_time(e.json) for e in decoded]
    handle = Pipeline(
        replay(synthetic_capture, rate=3000),
        [op.decode()],
        [Output(jsonl(out))],
        checkpoint=checkpoint,
        checkpoint_interval=0.05,
    ).start()
    checked = set()
    while not handle.done:
        cursor = read_cursor(checkpoint)
        if cursor is not None and cursor not in checked:
            checked.add(cursor)
            # Read after the checkpoint: the file holds at least every event up to the cursor.
            data = zstandard.ZstdDecompressor().decompressobj().decompress(out.read_bytes())
            lines = [without_time(line) for line in data.splitlines()]
            covered = sum(1 for e in decoded if e.seq is not None and e.seq <= cursor)
            assert len(lines) >= covered and lines[:covered] == expected[:covered]
        await asyncio.sleep(0.01)
    await handle
    assert len(checked) >= 5
