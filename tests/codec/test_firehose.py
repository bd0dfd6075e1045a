"""Frames → events: parity with production Jetstream, and every kind of bad input counted."""

from __future__ import annotations

import itertools

import orjson
import pytest

from jetflow.codec.cbor import encode
from jetflow.codec.clock import MonotonicClock
from jetflow.codec.firehose import FirehoseDecoder
from jetflow.codec.frame import Frame, error_frame
from jetflow.events import Event
from jetflow.filtering import EventFilter
from tests.builders import DID, commit_frame, like, message_frame


def decode_all(frames: list[bytes], **options: object) -> tuple[list[Event], FirehoseDecoder]:
    decoder = FirehoseDecoder(**options)  # type: ignore[arg-type]
    return [event for frame in frames for event in decoder.decode(frame)], decoder


def test_corpus_events_are_byte_identical_to_production_jetstream(
    corpus_frames: list[bytes], expected_v1: list[bytes]
) -> None:
    events, decoder = decode_all(corpus_frames)
    assert decoder.stats.counts == {}
    assert len(events) == len(expected_v1) == 152
    for event, expected in zip(events, expected_v1, strict=True):
        event.time_us = orjson.loads(expected)["time_us"]  # production's own clock value
        assert event.json == expected


def test_golden_events_re_render_byte_identical_from_their_parsed_form(
    golden_v1: list[bytes],
) -> None:
    for line in golden_v1:
        assert Event.from_dict(orjson.loads(line)).json == line


def test_time_us_strictly_increases_across_events(corpus_frames: list[bytes]) -> None:
    events, _ = decode_all(corpus_frames)
    stamps = [event.time_us for event in events]
    assert all(a < b for a, b in itertools.pairwise(stamps))


def test_time_us_comes_from_the_given_clock() -> None:
    ticks = iter([1_000, 1_000, 999, 5_000])
    clock = MonotonicClock(now_us=lambda: next(ticks))
    frame = commit_frame(
        [("create", "app.bsky.feed.like/a", like()), ("delete", "app.bsky.feed.like/b", None)]
    )
    events, _ = decode_all([frame, frame], clock=clock)
    assert [event.time_us for event in events] == [1_000, 1_001, 1_002, 5_000]


def test_create_update_delete_become_one_event_each_in_op_order() -> None:
    frame = commit_frame(
        [
            ("create", "app.bsky.feed.like/a", like("at://x/app.bsky.feed.post/1")),
            (
                "update",
                "app.bsky.actor.profile/self",
                {"$type": "app.bsky.actor.profile", "displayName": "Ann"},
            ),
            ("delete", "app.bsky.graph.follow/c", None),
        ]
    )
    events, decoder = decode_all([frame])
    assert [(e.operation, e.collection, e.rkey) for e in events] == [
        ("create", "app.bsky.feed.like", "a"),
        ("update", "app.bsky.actor.profile", "self"),
        ("delete", "app.bsky.graph.follow", "c"),
    ]
    assert events[1].record == {"$type": "app.bsky.actor.profile", "displayName": "Ann"}
    assert b'"record"' not in events[2].json and b'"cid"' not in events[2].json
    assert decoder.stats.counts == {}


def test_identity_and_account_pass_through_in_jetstream_field_order() -> None:
    identity = message_frame(
        "#identity", {"did": DID, "seq": 5, "time": "2026-01-01T00:00:00Z", "handle": "a.test"}
    )
    account = message_frame(
        "#account",
        {
            "did": DID,
            "seq": 6,
            "time": "2026-01-01T00:00:00Z",
            "active": False,
            "status": "deactivated",
        },
    )
    events, _ = decode_all([identity, account])
    assert events[0].json.endswith(
        b'"kind":"identity","identity":{"did":"%s","handle":"a.test","seq":5,"time":"2026-01-01T00:00:00Z"}}'
        % DID.encode()
    )
    assert events[1].json.endswith(
        b'"account":{"active":false,"did":"%s","seq":6,"status":"deactivated","time":"2026-01-01T00:00:00Z"}}'
        % DID.encode()
    )


def test_sync_and_info_become_typed_events_that_the_wire_does_not_carry() -> None:
    sync = message_frame(
        "#sync",
        {"did": DID, "seq": 7, "time": "2026-01-01T00:00:00Z", "rev": "3m", "blocks": b"\x01"},
    )
    info = message_frame("#info", {"name": "OutdatedCursor", "message": "too old"})
    events, decoder = decode_all([sync, info])
    assert [(e.kind, e.seq) for e in events] == [("sync", 7), ("info", None)]
    assert events[1].payload == {"message": "too old", "name": "OutdatedCursor"}
    assert decoder.stats.counts == {}


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\xa2\x62op\x01", "malformed_frame"),
        (b"", "malformed_frame"),
        (encode({"op": 1, "t": "#commit"}) + encode({"seq": 1}) + b"\x00", "malformed_frame"),
        (bytes.fromhex("a2626f7018016174") + b"x", "malformed_frame"),
        (error_frame("ConsumerTooSlow", "slow"), "error_frame"),
        (message_frame("#tombstone", {"did": DID, "seq": 3}), "unknown_type"),
        (commit_frame([("create", "app.bsky.feed.like/a", like())], tooBig=True), "too_big"),
        (commit_frame([("create", "app.bsky.feed.like/a", like())], time="yesterday"), "bad_time"),
        (
            commit_frame([("create", "app.bsky.feed.like/a", like())], car=b"\x3a" + b"\x00" * 10),
            "malformed_car",
        ),
        (commit_frame([("create", "app.bsky.feed.like/a", like())], repo=5), "invalid_commit"),
        (commit_frame([("create", "app.bsky.feed.like", like())]), "bad_path"),
        (commit_frame([("merge", "app.bsky.feed.like/a", like())]), "unknown_action"),
        (
            commit_frame([("create", "app.bsky.feed.like/a", {"$type": "x.y.z", "n": 1.5})]),
            "invalid_record",
        ),
        (
            message_frame("#identity", {"did": DID, "seq": "5", "time": "2026-01-01T00:00:00Z"}),
            "invalid_identity",
        ),
        (
            message_frame("#account", {"did": DID, "seq": 5, "time": "2026-01-01T00:00:00Z"}),
            "invalid_account",
        ),
    ],
)
def test_bad_input_is_counted_by_reason_and_skipped(frame: bytes, reason: str) -> None:
    good = commit_frame([("create", "app.bsky.feed.like/ok", like())])
    events, decoder = decode_all([frame, good])
    assert decoder.stats.counts == {reason: 1}
    assert [event.rkey for event in events] == ["ok"]  # the stream goes on


def test_text_message_is_counted_not_decoded() -> None:
    decoder = FirehoseDecoder()
    assert decoder.decode('{"not":"cbor"}') == []
    assert decoder.stats.counts == {"text_frame": 1}


def test_a_bad_op_skips_only_that_op() -> None:
    frame = commit_frame(
        [
            ("create", "app.bsky.feed.like/a", like()),
            ("create", "app.bsky.feed.like/bad", {"$type": "", "x": 1}),
            ("create", "noslash", like()),
            ("delete", "app.bsky.feed.like/c", None),
        ]
    )
    events, decoder = decode_all([frame])
    assert [event.rkey for event in events] == ["a", "c"]
    assert decoder.stats.counts == {"invalid_record": 1, "bad_path": 1}


def test_record_whose_block_does_not_hash_to_its_cid_is_skipped() -> None:
    from jetflow.codec.car import block_with_cid, write_car
    from jetflow.codec.cid import Link

    real_cid, _ = block_with_cid(like())
    _, other_block = block_with_cid(like("at://someone/else"))
    car = write_car([real_cid], [(real_cid, other_block)])
    frame = commit_frame([("create", "app.bsky.feed.like/a", like())], car=car)
    body_cid = Link(real_cid)
    assert body_cid.raw == real_cid
    events, decoder = decode_all([frame])
    assert events == [] and decoder.stats.counts == {"missing_record": 1}


def test_unreadable_car_drops_the_whole_commit_deletes_included() -> None:
    frame = commit_frame([("delete", "app.bsky.feed.like/a", None)], car=b"\x05\xa1\x61a\x01")
    events, decoder = decode_all([frame])
    assert events == [] and decoder.stats.counts == {"malformed_car": 1}


def test_filter_runs_before_the_record_is_touched() -> None:
    # The follow's record is invalid, but the filter drops it first: it is counted as
    # filtered, never as an invalid record, so its block was never rendered.
    frame = commit_frame(
        [
            ("create", "app.bsky.graph.follow/a", {"$type": "app.bsky.graph.follow", "n": 0.5}),
            ("create", "app.bsky.feed.like/b", like()),
        ]
    )
    events, decoder = decode_all([frame], event_filter=EventFilter(collections=["app.bsky.feed.*"]))
    assert [event.rkey for event in events] == ["b"]
    assert decoder.stats.counts == {} and decoder.stats.filtered == 1


def test_first_skip_of_each_reason_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    decoder = FirehoseDecoder()
    for _ in range(3):
        decoder.decode(b"garbage")
    assert decoder.stats["malformed_frame"] == 3
    assert len([r for r in caplog.records if "malformed_frame" in r.getMessage()]) == 1


def test_relay_time_takes_time_us_from_the_frames_and_keeps_it_increasing(
    corpus_frames: list[bytes],
) -> None:
    from jetflow.codec.rfc3339 import to_unix_us

    events, _ = decode_all(corpus_frames, relay_time=True)
    stamps = [event.time_us for event in events]
    assert all(a < b for a, b in itertools.pairwise(stamps))
    first_time = Frame(corpus_frames[0]).body["time"]
    assert stamps[0] == to_unix_us(first_time) == 1_783_175_887_517_000
    # relay times go back now and then across repos; the clock never does
    assert max(stamps) - min(stamps) < 2_000_000
