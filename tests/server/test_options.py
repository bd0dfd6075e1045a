"""Query strings and options_update messages parsed the way Jetstream v1 (Go) does."""

from __future__ import annotations

import pytest

from jetflow.server.options import (
    OptionsError,
    SubscriberOptions,
    parse_client_message,
    parse_cursor,
    parse_max_size,
    parse_query,
    parse_subscribe,
)


def test_query_parsing_follows_go_url_parse_query() -> None:
    assert parse_query("a=1&a=2&b=x+y&c=%41&d") == {
        "a": ["1", "2"],
        "b": ["x y"],
        "c": ["A"],
        "d": [""],
    }
    assert parse_query("bad=%zz&ok=1&semi=1;2") == {"ok": ["1"]}


@pytest.mark.parametrize(
    ("text", "value"), [("0", 0), ("+5", 5), ("-7", -7), ("9223372036854775807", 2**63 - 1)]
)
def test_cursor_accepts_what_strconv_parse_int_accepts(text: str, value: int) -> None:
    assert parse_cursor(text) == value


@pytest.mark.parametrize("text", ["", "1.0", "0x10", " 1", "9223372036854775808", "١٢", "--1"])
def test_cursor_rejects_everything_else(text: str) -> None:
    with pytest.raises(OptionsError, match=f"^invalid cursor: {text}$"):
        parse_cursor(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500", 500),
        ("0", None),
        ("", None),
        ("-3", None),
        ("x", None),
        ("4294967295", 4294967295),
        ("4294967296", None),
        ("4294967297", None),
    ],
)
def test_max_message_size_values(text: str, value: int | None) -> None:
    assert parse_max_size(text) == value


def test_subscribe_request_fields() -> None:
    request = parse_subscribe(
        "wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.graph.*&wantedDids=did:plc:a"
        "&wantedDids=did:plc:a&cursor=12&compress=true&requireHello=true&maxMessageSizeBytes=900",
        {},
    )
    assert request.options == SubscriberOptions(
        frozenset({"app.bsky.feed.post"}), ("app.bsky.graph.",), frozenset({"did:plc:a"}), 900
    )
    assert (request.cursor, request.compress, request.require_hello) == (12, True, True)
    assert parse_subscribe("", {"Socket-Encoding": "br, zstd"}).compress
    assert not parse_subscribe("compress=1&requireHello=True", {}).require_hello


def test_cursor_error_comes_before_filter_errors() -> None:
    with pytest.raises(OptionsError, match="invalid cursor"):
        parse_subscribe("wantedCollections=bad&cursor=x", {})


def test_options_update_payload_rules() -> None:
    update = parse_client_message(
        '{"type":"options_update","payload":{"wantedCollections":["app.bsky.feed.like"]}}'
    )
    assert update == SubscriberOptions(frozenset({"app.bsky.feed.like"}), (), None, None)
    assert (
        parse_client_message('{"type":"options_update","payload":{"wantedDids":null}}')
        == SubscriberOptions()
    )
    assert (
        parse_client_message('{"type":"options_update","payload":{"maxMessageSizeBytes":-4}}')
        == SubscriberOptions()
    )
    assert parse_client_message('{"type":"hello"}') is None
    assert parse_client_message("null") is None
    # a null element of []string decodes to "", which is not a valid collection
    with pytest.raises(OptionsError, match=r"invalid collection: $"):
        parse_client_message('{"type":"options_update","payload":{"wantedCollections":[null]}}')
    with pytest.raises(OptionsError, match="cannot unmarshal string"):
        parse_client_message('"options_update"')


def test_later_keys_win_case_insensitively() -> None:
    update = parse_client_message(
        '{"type":"other","Type":"options_update","payload":{"wantedDids":["did:plc:a"],"WantedDids":["did:plc:b"]}}'
    )
    assert update is not None and update.dids == frozenset({"did:plc:b"})


def test_event_filter_has_jetstream_semantics() -> None:
    options = SubscriberOptions(frozenset({"app.bsky.feed.post"}), ("app.bsky.graph.",), None, None)
    wanted = options.event_filter()
    assert wanted.wants("commit", "did:plc:x", "app.bsky.graph.follow", "create")
    assert wanted.wants("identity", "did:plc:x")
    assert not wanted.wants("commit", "did:plc:x", "app.bsky.feed.like", "create")
