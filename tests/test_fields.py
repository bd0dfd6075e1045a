"""Field paths: compiled getters, None for missing values, ConfigError for impossible paths."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from jetflow.errors import ConfigError
from jetflow.events import Event
from jetflow.fields import compile_path, key_getter, validate_path

POST = Event(
    "commit",
    "did:plc:author",
    1_725_000_000_000_000,
    seq=42,
    rev="3lrev",
    operation="create",
    collection="app.bsky.feed.post",
    rkey="3kpost",
    cid="bafyrecord",
    record={
        "$type": "app.bsky.feed.post",
        "text": "hello",
        "langs": ["en", "ja"],
        "reply": {"parent": {"uri": "at://did:plc:x/app.bsky.feed.post/1"}},
        "counts": {"0": "zero"},
        "facets": [{"features": [{"tag": "jetflow"}]}],
    },
)
DELETE = Event(
    "commit",
    "did:plc:author",
    1_725_000_000_000_001,
    rev="3lrev2",
    operation="delete",
    collection="app.bsky.feed.post",
    rkey="3kpost",
)
IDENTITY = Event(
    "identity",
    "did:plc:author",
    1_725_000_000_000_002,
    seq=43,
    payload={"did": "did:plc:author", "handle": "author.test", "seq": 43, "time": "t"},
)
ACCOUNT = Event(
    "account",
    "did:plc:author",
    1_725_000_000_000_003,
    seq=44,
    payload={"active": False, "did": "did:plc:author", "seq": 44, "status": "takendown"},
)
SYNC = Event("sync", "did:plc:author", 1_725_000_000_000_004, rev="3lsync", payload={"rev": "x"})


def read(path: str, event: Event) -> Any:
    return compile_path(path)(event)


def test_scalar_paths_read_the_event_fields() -> None:
    assert read("did", POST) == "did:plc:author"
    assert read("time_us", POST) == 1_725_000_000_000_000
    assert read("kind", IDENTITY) == "identity"
    assert read("seq", POST) == 42
    assert read("seq", DELETE) is None


def test_commit_paths_read_commit_fields() -> None:
    assert [read(f"commit.{name}", POST) for name in ("rev", "operation", "collection")] == [
        "3lrev",
        "create",
        "app.bsky.feed.post",
    ]
    assert read("commit.rkey", POST) == "3kpost" and read("commit.cid", POST) == "bafyrecord"


def test_commit_paths_are_none_where_the_commit_lacks_the_field_or_it_is_no_commit() -> None:
    assert read("commit.cid", DELETE) is None
    for event in (IDENTITY, ACCOUNT, SYNC):
        for name in ("rev", "operation", "collection", "rkey", "cid"):
            assert read(f"commit.{name}", event) is None, (event.kind, name)


def test_record_paths_walk_nested_dicts_and_index_lists() -> None:
    assert read("record.text", POST) == "hello"
    assert read("record.$type", POST) == "app.bsky.feed.post"
    assert read("record.langs.0", POST) == "en"
    assert read("record.langs.1", POST) == "ja"
    assert read("record.reply.parent.uri", POST) == "at://did:plc:x/app.bsky.feed.post/1"
    assert read("record.facets.0.features.0.tag", POST) == "jetflow"
    assert read("record.counts.0", POST) == "zero"  # a numeric segment on a dict is a key
    assert read("record", POST) is POST.record


@pytest.mark.parametrize(
    "path",
    [
        "record.langs.2",  # past the end
        "record.langs.x",  # a name on a list
        "record.text.length",  # below a string
        "record.embed.images.0",  # missing key
        "record.reply.root.uri",
    ],
)
def test_missing_record_values_read_as_none(path: str) -> None:
    assert read(path, POST) is None


def test_record_paths_are_none_on_events_without_a_record() -> None:
    for event in (DELETE, IDENTITY, ACCOUNT):
        assert read("record.text", event) is None
        assert read("record.langs.0", event) is None
        assert read("record", event) is None


def test_payload_paths_read_the_body_of_their_own_kind_only() -> None:
    assert read("identity.handle", IDENTITY) == "author.test"
    assert read("account.status", ACCOUNT) == "takendown"
    assert read("account.active", ACCOUNT) is False
    assert read("sync.rev", SYNC) == "x"
    assert read("identity.handle", ACCOUNT) is None
    assert read("account.status", IDENTITY) is None
    assert read("identity.handle", POST) is None
    assert read("account.status.x", ACCOUNT) is None
    assert read("identity", IDENTITY) == IDENTITY.payload


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ("", "segment 1 is empty"),
        (".did", "segment 1 is empty"),
        ("did.", "segment 2 is empty"),
        ("record..text", "segment 2 is empty"),
        ("collection", "'collection'"),
        ("foo.bar", "'foo'"),
        ("commit.colection", "'colection'"),
        ("commit.record", "'record'"),
        ("commit", "unknown commit field"),
        ("did.x", "'x'"),
        ("commit.collection.x", "'x'"),
    ],
)
def test_paths_that_can_never_resolve_raise_config_error_naming_path_and_segment(
    path: str, bad: str
) -> None:
    with pytest.raises(ConfigError) as info:
        validate_path(path)
    assert repr(path) in str(info.value) and bad in str(info.value)
    with pytest.raises(ConfigError):
        compile_path(path)


def test_a_commit_field_without_its_prefix_gets_a_hint() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'commit\.collection'"):
        validate_path("collection")


def test_valid_paths_pass_validation() -> None:
    for path in ("did", "seq", "commit.cid", "record", "record.a.0.b", "identity.handle"):
        validate_path(path)


def test_key_getter_takes_a_path_or_a_function_and_nothing_else() -> None:
    assert key_getter("commit.rkey")(POST) == "3kpost"

    def by_length(event: Event) -> int:
        return len(event.did)

    assert key_getter(by_length) is by_length
    with pytest.raises(ConfigError, match="group_by"):
        key_getter(3, name="group_by")  # type: ignore[arg-type]


def test_paths_agree_with_the_wire_json_of_real_events(expected_v1: list[bytes]) -> None:
    paths = {
        "did": lambda o: o["did"],
        "time_us": lambda o: o["time_us"],
        "kind": lambda o: o["kind"],
        "commit.collection": lambda o: o.get("commit", {}).get("collection"),
        "commit.operation": lambda o: o.get("commit", {}).get("operation"),
        "commit.cid": lambda o: o.get("commit", {}).get("cid"),
        "record.$type": lambda o: o.get("commit", {}).get("record", {}).get("$type"),
        "record.subject.uri": lambda o: (
            o.get("commit", {}).get("record", {}).get("subject", {}).get("uri")
            if isinstance(o.get("commit", {}).get("record", {}).get("subject"), dict)
            else None
        ),
        "identity.handle": lambda o: o.get("identity", {}).get("handle"),
        "account.active": lambda o: o.get("account", {}).get("active"),
    }
    getters = {path: compile_path(path) for path in paths}
    for line in expected_v1:
        event, wire = Event.from_json(line), orjson.loads(line)
        for path, expected in paths.items():
            assert getters[path](event) == expected(wire), (path, line[:80])
