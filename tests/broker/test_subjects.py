"""The subject scheme, message ids and reading events back off stream messages."""

from __future__ import annotations

import orjson
import pytest

from jetflow.broker.connection import BrokerURL
from jetflow.broker.messages import did_and_time, encode, message_id, relay_position, stored_event
from jetflow.broker.subjects import Subjects
from jetflow.codec.zstd import Compressor, Decompressor
from jetflow.errors import ConfigError
from jetflow.events import Event

SUBJECTS = Subjects()


def test_commit_subjects_are_the_collection_tokens_and_never_hold_a_did() -> None:
    assert (
        SUBJECTS.for_event("commit", "app.bsky.feed.post")
        == "jetflow.evt.commit.app.bsky.feed.post"
    )
    assert SUBJECTS.for_event("identity", "") == "jetflow.evt.identity"
    assert SUBJECTS.for_event("account", "") == "jetflow.evt.account"
    for odd in ("", "app.bsky..post", "app bsky.x", "app.*", "app.>", "app.bsky.feed.post."):
        assert SUBJECTS.for_event("commit", odd) == "jetflow.evt.commit._"
    assert SUBJECTS.collection_of("jetflow.evt.commit.app.bsky.feed.like") == "app.bsky.feed.like"
    assert SUBJECTS.collection_of("jetflow.evt.commit._") is None
    assert SUBJECTS.collection_of("jetflow.evt.identity") is None


def test_wanted_collections_become_server_side_filters_without_overlaps() -> None:
    filters = SUBJECTS.filters(
        {"app.bsky.feed.post", "app.bsky.graph.follow", "com.example.thing"},
        ("app.bsky.", "app.bsky.feed.", "foo bar.", ".", "app."),
    )
    assert filters == [
        "jetflow.evt.commit.app.>",
        "jetflow.evt.commit.com.example.thing",
        "jetflow.evt.commit._",
        "jetflow.evt.identity",
        "jetflow.evt.account",
    ]
    assert SUBJECTS.filters({"app.bsky.feed.post"}, ("app.bsky.",))[0] == (
        "jetflow.evt.commit.app.bsky.>"
    )
    assert SUBJECTS.filters(None) == ["jetflow.evt.>"]


def test_bad_prefix_stream_or_url_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="subject"):
        Subjects("jetflow.*")
    with pytest.raises(ConfigError, match="stream"):
        BrokerURL.parse("nats://127.0.0.1:4222?stream=a.b")
    with pytest.raises(ConfigError, match="http://x"):
        BrokerURL.parse("http://x:4222")
    url = BrokerURL.parse("nats://u:secret@127.0.0.1:4333,nats://h2?stream=S&subject=p.q")
    assert (url.stream, url.prefix, url.servers[1]) == ("S", "p.q", "nats://h2")
    assert "secret" not in url.display


def test_message_id_is_the_upstream_identity() -> None:
    commit = Event(
        "commit",
        "did:plc:x",
        5,
        seq=42,
        rev="3l",
        operation="create",
        collection="app.bsky.feed.post",
        rkey="3k",
        op_index=2,
    )
    assert message_id(commit) == "42:2"
    assert relay_position("42:2") == (42, 2)
    commit.seq = None
    assert message_id(commit) == "did:plc:x/app.bsky.feed.post/3k/3l"
    assert relay_position(message_id(commit)) is None
    identity = Event(
        "identity",
        "did:web:a.example",
        6,
        payload={"did": "did:web:a.example", "time": "2026-01-01T00:00:00Z"},
    )
    assert message_id(identity) == "identity:did:web:a.example:2026-01-01T00:00:00Z"


def test_messages_carry_the_exact_json_and_read_back_into_stored_events(
    golden_v1: list[bytes],
) -> None:
    compressor = Compressor()
    for line in golden_v1:
        event = Event.from_json(line)
        subject, payload, headers = encode(SUBJECTS, event)
        assert payload == line
        assert headers["Jetflow-Time-Us"] == str(event.time_us)
        assert did_and_time(payload) == (event.did, event.time_us)
        stored = stored_event(SUBJECTS, subject, payload, compressor)
        assert (stored.did, stored.collection, stored.time_us) == (
            event.did,
            event.collection,
            event.time_us,
        )
        assert stored.text.endswith(line)
        assert Decompressor()(stored.binary[stored.binary.index(b"\x28\xb5\x2f\xfd") :]) == line


def test_did_and_time_falls_back_to_parsing_for_unusual_json() -> None:
    data = orjson.dumps({"time_us": 7, "did": "did:plc:q", "kind": "identity", "identity": {}})
    assert did_and_time(data) == ("did:plc:q", 7)
