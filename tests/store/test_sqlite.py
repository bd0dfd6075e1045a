"""The SQLite event log: atomic cursor, numeric ranges, filters in SQL, TTL that frees space."""

from __future__ import annotations

from pathlib import Path

import pytest

from jetflow.codec.wsframe import text_frame
from jetflow.errors import StoreError
from jetflow.store import EventStore, ReplayQuery, StoredEvent


def event(
    time_us: int, collection: str = "app.bsky.feed.like", did: str = "did:plc:a", kind: int = 0
) -> StoredEvent:
    payload = b'{"time_us":%d}' % time_us + b" " * 400
    return StoredEvent(time_us, did, collection, kind, text_frame(payload), b"\x82\x01z")


def test_events_and_cursor_are_committed_together(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    store.append([event(1), event(2)], relay_cursor=10, relay_url="wss://relay")
    with pytest.raises(StoreError):
        store.append(
            [event(3), event(2)], relay_cursor=20, relay_url="wss://relay"
        )  # duplicate key
    assert store.count() == 2 and store.relay_cursor("wss://relay") == 10
    assert store.relay_cursor("wss://other") is None  # a cursor only means something for its relay
    store.close()
    reopened = EventStore(tmp_path)
    assert reopened.newest_time_us() == 2 and reopened.oldest_time_us() == 1


def test_replay_is_numeric_inclusive_and_filtered_in_sql(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    store.append(
        [
            event(9, "app.bsky.feed.post"),
            event(10, "app.bsky.graph.follow"),
            event(100, "", kind=1),
            event(1000, "app.bsky.feed.like", did="did:plc:b"),
        ]
    )
    everything = [t for t, _ in store.replay(ReplayQuery(), 10, 100)]
    assert everything == [10, 100, 1000]  # 9 < 10 numerically, although "9" > "10" as text
    graph = ReplayQuery(collections=frozenset(), prefixes=("app.bsky.graph.",))
    assert [t for t, _ in store.replay(graph, 0, 100)] == [10, 100]  # identity passes
    by_did = ReplayQuery(dids=frozenset({"did:plc:b"}))
    assert [t for t, _ in store.replay(by_did, 0, 100)] == [1000]
    small = ReplayQuery(max_payload=10)
    assert store.replay(small, 0, 100) == []
    assert [t for t, frame in store.replay(ReplayQuery(compressed=True), 0, 2)] == [9, 10]


def test_ttl_trim_really_frees_space(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    for start in range(0, 40_000, 2_000):
        store.append([event(t) for t in range(start, start + 2_000)])
    before = store.size_bytes()
    assert store.trim(cutoff_us=38_000) == 38_000
    assert store.count() == 2_000
    assert store.size_bytes() < before / 4


def test_read_only_store_sees_what_the_writer_commits(tmp_path: Path) -> None:
    writer = EventStore(tmp_path)
    reader = EventStore(tmp_path, read_only=True)
    writer.append([event(5)])
    assert [e.time_us for e in reader.events_after(0, 10)] == [5]
    with pytest.raises(StoreError):
        reader.append([event(6)])


def test_corrupt_store_gives_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "jetflow.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match=r"jetflow\.sqlite"):
        EventStore(tmp_path)


def test_batches_concatenate_frames_in_order_from_any_position(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    runs = [
        [
            event(t, "app.bsky.feed.post" if t % 3 else "app.bsky.feed.like")
            for t in range(start, start + 50)
        ]
        for start in range(1, 500, 50)
    ]
    for run in runs:
        store.append(run)
    every = [e for run in runs for e in run]
    whole = store.read_batch(ReplayQuery(), 0, 10_000)
    assert (
        whole.data == b"".join(e.text for e in every)
        and whole.count == 500
        and whole.last_time_us == 500
    )
    middle = store.read_batch(ReplayQuery(), 75, 120)  # starts inside the second run
    expected = [e for e in every if e.time_us >= 75]
    assert middle.data.startswith(b"".join(e.text for e in expected[:100]))
    assert middle.count >= 120 and middle.data == b"".join(e.text for e in expected[: middle.count])
    likes = store.read_batch(ReplayQuery(collections=frozenset({"app.bsky.feed.like"})), 10, 1000)
    assert likes.data == b"".join(e.text for e in every if e.time_us >= 10 and e.time_us % 3 == 0)
    compressed = store.read_batch(ReplayQuery(compressed=True), 0, 10)
    assert compressed.data == b"".join(e.binary for e in every[:50])
    assert store.read_batch(ReplayQuery(), 501, 10).count == 0


def test_a_run_half_past_the_ttl_replays_only_what_is_left(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    store.append([event(t) for t in range(1, 101)])
    store.trim(cutoff_us=60)
    batch = store.read_batch(ReplayQuery(), 0, 1000)
    assert batch.count == 41 and batch.data == b"".join(event(t).text for t in range(60, 101))
    assert [e.time_us for e in store.events_after(0, 5)] == [60, 61, 62, 63, 64]
