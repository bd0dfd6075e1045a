"""``jetflow.notebook``: take, DataFrames, live widgets, and a kind failure without the extra."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import reactivex

import jetflow as jf
from jetflow import notebook as nb
from jetflow import operators as op
from jetflow.codec.firehose import FirehoseDecoder
from jetflow.errors import ConfigError
from jetflow.events import Event
from jetflow.operators.window import WindowResult
from jetflow.testing import SyntheticFirehose, write_capture

FRAMES = 600


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("notebook") / "capture.bin.zst"
    write_capture(path, FRAMES, seed=4)
    return path


@pytest.fixture(scope="module")
def decoded() -> list[Event]:
    """The same frames as ``capture``, decoded without any source or Observable."""
    decoder = FirehoseDecoder()
    return [
        event for frame in SyntheticFirehose(4).frames(FRAMES) for event in decoder.decode(frame)
    ]


def identity(event: Event) -> tuple[str, str, str, str]:
    return (event.kind, event.did, event.collection, event.rkey)


# -- take -----------------------------------------------------------------------------------------


def test_take_in_a_script_returns_the_first_n_events(capture: Path, decoded: list[Event]) -> None:
    events = nb.take(jf.sources.replay(capture).pipe(op.decode()), 25)
    assert [identity(e) for e in events] == [identity(e) for e in decoded[:25]]


async def test_take_async_awaits_on_the_running_loop(capture: Path, decoded: list[Event]) -> None:
    events = await nb.take_async(jf.sources.replay(capture).pipe(op.decode()), 40)
    assert [identity(e) for e in events] == [identity(e) for e in decoded[:40]]


async def test_take_also_works_where_a_loop_is_running(capture: Path, decoded: list[Event]) -> None:
    # As in a notebook cell: a loop runs in this thread, so take() uses a helper thread.
    asyncio.get_running_loop()
    events = nb.take(jf.sources.replay(capture).pipe(op.decode()), 10)
    assert [identity(e) for e in events] == [identity(e) for e in decoded[:10]]


def test_take_returns_fewer_when_the_stream_ends_first(decoded: list[Event]) -> None:
    assert nb.take(jf.sources.memory(decoded[:3]), 10) == decoded[:3]


async def test_take_returns_what_arrived_when_the_timeout_passes() -> None:
    started = time.monotonic()
    assert await nb.take_async(reactivex.never(), 5, timeout=0.2) == []
    assert time.monotonic() - started < 2


async def test_take_raises_the_error_that_ended_the_stream_early() -> None:
    failing = reactivex.concat(reactivex.of(1, 2), reactivex.throw(ValueError("boom")))
    with pytest.raises(ValueError, match="boom"):
        await nb.take_async(failing, 5)
    assert await nb.take_async(failing, 2) == [1, 2]  # enough items before the error


async def test_take_reads_async_and_plain_iterables() -> None:
    async def numbers() -> AsyncIterator[int]:
        for number in range(100):
            yield number

    assert await nb.take_async(numbers(), 3) == [0, 1, 2]
    assert nb.take(iter(range(100)), 4) == [0, 1, 2, 3]


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_take_needs_a_positive_count(n: object) -> None:
    with pytest.raises(ConfigError, match="positive integer"):
        nb.take([1, 2], n)  # type: ignore[arg-type]


# -- DataFrames -----------------------------------------------------------------------------------

POST = Event(
    "commit",
    "did:plc:alice",
    1_767_225_600_123_456,
    rev="r1",
    operation="create",
    collection="app.bsky.feed.post",
    rkey="3k1",
    cid="bafy",
    record={
        "$type": "app.bsky.feed.post",
        "text": "hello",
        "langs": ["en", "de"],
        "reply": {"root": {"uri": "at://x/app.bsky.feed.post/1", "cid": "bafyroot"}},
    },
)
DELETE = Event(
    "commit",
    "did:plc:bob",
    1_767_225_601_000_000,
    rev="r2",
    operation="delete",
    collection="app.bsky.feed.like",
    rkey="3k2",
)
IDENTITY = Event(
    "identity", "did:plc:carol", 1_767_225_602_000_000, payload={"did": "did:plc:carol"}
)


def test_to_dataframe_has_the_base_columns_and_a_flattened_record() -> None:
    df = nb.to_dataframe([POST, DELETE, IDENTITY], fields={"lang": "record.langs.0"})
    assert list(df.columns) == [
        "time",
        "did",
        "kind",
        "operation",
        "collection",
        "rkey",
        "time_us",
        "lang",
        "record.$type",
        "record.text",
        "record.langs",
        "record.reply.root.uri",
        "record.reply.root.cid",
    ]
    assert str(df["time"].dtype) == "datetime64[us, UTC]"
    assert df["time"][0] == pd.Timestamp(datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC))
    assert df["kind"].tolist() == ["commit", "commit", "identity"]
    assert df["operation"].tolist()[:2] == ["create", "delete"]
    assert df["operation"].isna().tolist() == [False, False, True]
    assert df["lang"].tolist()[0] == "en" and df["lang"].isna().tolist()[1:] == [True, True]
    assert df["record.langs"][0] == ["en", "de"]
    assert df["record.reply.root.uri"][0] == "at://x/app.bsky.feed.post/1"
    assert df["record.text"].isna().tolist() == [False, True, True]


def test_to_dataframe_record_views_and_json_objects() -> None:
    as_dict = nb.to_dataframe([POST.to_dict(), IDENTITY.to_dict()], record="dict")
    assert list(as_dict.columns) == [*nb.BASE_COLUMNS, "record"]
    assert as_dict["record"][0]["text"] == "hello" and as_dict["record"][1] is None
    bare = nb.to_dataframe([POST], record="none", fields=["record.text", "record.langs.1"])
    assert list(bare.columns) == [*nb.BASE_COLUMNS, "record.text", "record.langs.1"]
    assert bare["record.langs.1"][0] == "de"
    empty = nb.to_dataframe([])
    assert list(empty.columns) == list(nb.BASE_COLUMNS) and len(empty) == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fields": ["commit.colection"]}, "colection"),
        ({"fields": {"did": "record.text"}}, "already a column"),
        ({"fields": "record.text"}, "not the string"),
        ({"record": "wide"}, "flatten, dict, none"),
    ],
)
def test_to_dataframe_rejects_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        nb.to_dataframe([POST], **options)  # type: ignore[arg-type]


def test_to_dataframe_rejects_what_is_not_an_event() -> None:
    with pytest.raises(ConfigError, match="expected events"):
        nb.to_dataframe([b"frame bytes"])  # type: ignore[list-item]


def window(start_s: int, value: object, events: int = 3) -> WindowResult[object]:
    return WindowResult(start_s * 1_000_000, (start_s + 1) * 1_000_000, value, events)


def test_windows_to_dataframe_makes_one_column_per_key_with_zeros() -> None:
    df = nb.windows_to_dataframe([window(10, {"a": 2, "b": 1}), window(11, {"b": 3, None: 1})])
    assert list(df.columns) == ["start", "end", "events", "late", "a", "b", "None"]
    assert df["a"].tolist() == [2, 0] and df["b"].tolist() == [1, 3]
    assert df["None"].tolist() == [0, 1]
    assert df["start"][1] == pd.Timestamp(11, unit="s", tz="UTC")


def test_windows_to_dataframe_makes_one_row_per_top_k_pair() -> None:
    df = nb.windows_to_dataframe([window(0, [("x", 5), ("y", 2)]), window(1, [("y", 4)])])
    rows = df[["rank", "key", "count"]].values.tolist()
    assert rows == [[1, "x", 5], [2, "y", 2], [1, "y", 4]]


def test_windows_to_dataframe_of_numbers_and_of_mixed_values() -> None:
    df = nb.windows_to_dataframe([window(0, 2.5), window(1, 4.0)])
    assert df["value"].tolist() == [2.5, 4.0]
    with pytest.raises(ConfigError, match="mix"):
        nb.windows_to_dataframe([window(0, 2.5), window(1, {"a": 1})])


# -- widgets --------------------------------------------------------------------------------------


async def test_live_counter_updates_while_the_stream_runs_in_the_background(
    capture: Path, decoded: list[Event]
) -> None:
    counter = nb.LiveCounter("commit.collection", top=3, interval=0.05)
    assert "0 events" in counter.widget.value and "waiting" in counter.widget.value
    # A paced replay (600 frames at 1500/s: ~0.4 s) runs as a task on this loop.
    subscription = jf.sources.replay(capture, rate=1500).pipe(op.decode()).subscribe(counter)
    try:
        await asyncio.sleep(0.2)
        midway = counter.total
        shown_midway = counter.widget.value
        assert 0 < midway < len(decoded), midway
        assert "running" in shown_midway
        assert await counter.wait_async(timeout=10)
    finally:
        subscription.dispose()
    expected: dict[object, int] = {}
    for event in decoded:
        key = event.collection if event.kind == "commit" else None
        expected[key] = expected.get(key, 0) + 1
    assert counter.total == len(decoded)
    assert counter.counts == expected
    assert counter.most_common(1)[0] == max(expected.items(), key=lambda item: item[1])
    assert f"{len(decoded):,} events" in counter.widget.value and "done" in counter.widget.value
    assert counter.refreshes >= 3


def test_live_counter_escapes_keys_and_throttles_refreshes() -> None:
    counter = nb.LiveCounter(lambda event: "<b>" + event.did, interval=3600)
    reactivex.from_iterable([POST, DELETE, IDENTITY] * 100).subscribe(counter)
    assert counter.done and counter.total == 300
    assert "&lt;b&gt;did:plc:alice" in counter.widget.value and "<b>did" not in counter.widget.value
    # Built once, refreshed by the first event (the throttle starts open), and at the end.
    assert counter.refreshes == 3


def test_live_chart_draws_lines_bars_and_numbers_as_png() -> None:
    lines = nb.LiveChart(title="counts", interval=0)
    reactivex.from_iterable(
        [window(0, {"a": 1, "b": 2}), window(1, {"a": 3}), window(2, {"b": 1, "c": 9})]
    ).subscribe(lines)
    assert lines.widget.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert lines.redraws == 1 + 3 + 1  # the empty chart, each window, the end
    figure = lines.figure()
    axes = figure.axes[0]
    assert sorted(line.get_label() for line in axes.get_lines()) == ["a", "b", "c"]
    assert lines.to_dataframe()["c"].tolist() == [0, 0, 9]

    bars = nb.LiveChart(title="top", interval=0)
    bars.on_next(window(0, [("x", 5), ("y", 2), ("z", 1)]))
    labels = [label.get_text() for label in bars.figure().axes[0].get_yticklabels()]
    assert labels == ["z", "y", "x"]  # most frequent on top

    numbers = nb.LiveChart(interval=0)
    numbers.on_next(window(0, 4.0))
    numbers.on_next(window(1, 6.0))
    (line,) = numbers.figure().axes[0].get_lines()
    assert list(line.get_ydata()) == [4.0, 6.0]


# -- a kind failure without the extra -------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "make"),
    [
        ("pandas", lambda: nb.to_dataframe([POST])),
        ("pandas", lambda: nb.windows_to_dataframe([])),
        ("ipywidgets", lambda: nb.LiveCounter()),
        ("matplotlib", lambda: nb.LiveChart()),
    ],
)
def test_a_missing_extra_names_the_pip_command(
    module: str, make: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes "import module" fail
    with pytest.raises(ConfigError) as caught:
        make()  # type: ignore[operator]
    assert f"needs {module}" in str(caught.value)
    assert "pip install 'jetflow[notebook]'" in str(caught.value)


def test_live_counter_shows_a_failed_stream() -> None:
    counter = nb.LiveCounter("kind")
    reactivex.concat(reactivex.of(POST), reactivex.throw(RuntimeError("relay gone"))).subscribe(
        counter
    )
    assert counter.done and counter.total == 1
    assert "failed: relay gone" in counter.widget.value
