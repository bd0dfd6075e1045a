"""Jetstream's filter rules (spec §3–§4) and the strict default of the filter operator."""

from __future__ import annotations

import pytest

from jetflow.errors import ConfigError
from jetflow.filtering import AllOf, EventFilter, is_valid_did, is_valid_nsid, parse_collections

DID = "did:plc:aaaabbbbccccddddeeeeffff"


@pytest.mark.parametrize(
    "value", ["app.bsky.feed.post", "com.example.fooBar", "a.b.c", "fm.teal.alpha.feed.play2"]
)
def test_valid_nsids(value: str) -> None:
    assert is_valid_nsid(value)


@pytest.mark.parametrize(
    "value",
    [
        "app.bsky",
        "app.bsky.graph.fo*",
        "*",
        "app..post",
        "app.bsky.feed.post\n",
        "1pp.b.c",
        "a" * 318,
    ],
)
def test_invalid_nsids(value: str) -> None:
    assert not is_valid_nsid(value)


@pytest.mark.parametrize(
    "value", ["did:plc:abc", "did:web:example.com", "did:web:localhost%3A8080"]
)
def test_valid_dids(value: str) -> None:
    assert is_valid_did(value)


@pytest.mark.parametrize(
    "value", ["", "did:plc:", "did:PLC:abc", "plc:abc", "did:plc:abc:", "did:plc:abc\n"]
)
def test_invalid_dids(value: str) -> None:
    assert not is_valid_did(value)


def test_prefixes_keep_their_dot_and_are_not_validated() -> None:
    exact, prefixes = parse_collections(["app.bsky.feed.post", "app.bsky.*", ".*", "foo bar.*"])
    assert exact == {"app.bsky.feed.post"}
    assert prefixes == ("app.bsky.", ".", "foo bar.")


def test_invalid_collection_names_the_value_like_jetstream() -> None:
    with pytest.raises(ConfigError, match=r"^invalid collection: app\.bsky\.graph\.fo\*$"):
        parse_collections(["app.bsky.graph.fo*"])


def test_prefix_matches_by_plain_string_prefix() -> None:
    wanted = EventFilter(collections=["app.bsky.*"])
    assert wanted.wants("commit", DID, "app.bsky.feed.post", "create")
    assert not wanted.wants("commit", DID, "app.bskyx.foo", "create")
    assert not EventFilter(collections=[".*"]).wants("commit", DID, "app.bsky.feed.post", "create")


def test_jetstream_semantics_let_identity_and_account_through_collection_filters() -> None:
    server = EventFilter(collections=["app.bsky.feed.post"], non_commits_bypass=True)
    assert server.wants("identity", DID) and server.wants("account", DID)
    assert server.wants("commit", DID, "", "create")  # a commit without a collection passes too
    strict = EventFilter(collections=["app.bsky.feed.post"])
    assert not strict.wants("identity", DID)
    assert not strict.wants("commit", DID, "", "create")


def test_did_filter_applies_to_every_kind() -> None:
    wanted = EventFilter(dids=[DID], non_commits_bypass=True)
    assert wanted.wants("identity", DID)
    assert not wanted.wants("account", "did:plc:other")
    assert not wanted.wants("commit", "did:plc:other", "app.bsky.feed.post", "create")


def test_kinds_and_operations() -> None:
    wanted = EventFilter(kinds=["commit"], operations=["delete"])
    assert wanted.wants("commit", DID, "app.bsky.feed.like", "delete")
    assert not wanted.wants("commit", DID, "app.bsky.feed.like", "create")
    assert not wanted.wants("sync", DID)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kinds": ["comit"]}, "kinds: unknown kind 'comit'"),
        ({"operations": ["upsert"]}, "operations: unknown operation 'upsert'"),
        ({"dids": 5}, "dids: expected a list of strings"),
        ({"collections": [3]}, "collections: expected strings, got 3"),
    ],
)
def test_bad_options_name_the_field(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EventFilter(**options)  # type: ignore[arg-type]


def test_filters_combine_with_and() -> None:
    both = EventFilter(collections=["app.bsky.feed.*"]) & EventFilter(operations=["create"])
    assert isinstance(both, AllOf)
    assert both.wants("commit", DID, "app.bsky.feed.post", "create")
    assert not both.wants("commit", DID, "app.bsky.feed.post", "delete")
    assert not both.wants("commit", DID, "app.bsky.graph.follow", "create")
