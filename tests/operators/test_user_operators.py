"""``map``, ``tap``, ``match`` and ``to_json``: the operators pipeline files lean on."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import reactivex as rx

from jetflow import operators as op
from jetflow.errors import ConfigError
from jetflow.events import Event
from jetflow.operators.window import WindowResult
from jetflow.userfn import FailedEvent


def post(rkey: str, text: str | None, langs: list[str] | None = None) -> Event:
    record: dict[str, Any] = {"$type": "app.bsky.feed.post"}
    if text is not None:
        record["text"] = text
    if langs is not None:
        record["langs"] = langs
    return Event(
        "commit",
        "did:plc:a",
        1,
        rev="3l",
        operation="create",
        collection="app.bsky.feed.post",
        rkey=rkey,
        record=record,
    )


def through(operator: Any, items: list[Any]) -> list[Any]:
    out: list[Any] = []
    rx.from_iterable(items).pipe(operator).subscribe(out.append)
    return out


POSTS = [
    post("1", "Tide pools at dawn", ["en"]),
    post("2", "nothing here", ["ja", "en"]),
    post("3", None, ["pt"]),
    post("4", "a BOOK review"),
]


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        (op.match("record.text", contains=["tide", "book"]), []),
        (op.match("record.text", contains=["tide", "book"], ignore_case=True), ["1", "4"]),
        (op.match("record.text", regex=r"^a book review$"), []),
        (op.match("record.text", regex=r"^a book review$", ignore_case=True), ["4"]),
        (op.match("record.langs", equals=["en"]), ["1", "2"]),  # any item of a list
        (op.match("record.langs.0", equals=["EN", "PT"], ignore_case=True), ["1", "3"]),
        (op.match("record.text", contains=["pools"], invert=True), ["2", "3", "4"]),
        (op.match("record.text", contains=["a"], regex="review"), ["4"]),  # all criteria
    ],
)
def test_match_keeps_events_whose_field_passes(operator: Any, expected: list[str]) -> None:
    assert [e.rkey for e in through(operator, POSTS)] == expected


def test_match_right_after_decode_runs_inside_the_decoder() -> None:
    stream = rx.from_iterable(POSTS).pipe(op.decode(), op.match("record.text", contains=["pools"]))
    assert type(stream).__name__ == "DecodedStream"
    assert [e.rkey for e in through(lambda s: stream, [])] == ["1"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "give at least one of equals, contains, regex"),
        ({"regex": "("}, "match regex: '\\(' is not a regular expression"),
        ({"contains": [1]}, "match contains: expected strings"),
        ({"equals": [[1]]}, "match equals: expected plain values"),
    ],
)
def test_match_refuses_bad_criteria(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        op.match("record.text", **options)


def test_map_drops_none_and_tap_passes_items_unchanged() -> None:
    seen: list[str] = []
    texts = through(op.map(lambda e: e.record.get("text")), POSTS)
    assert texts == ["Tide pools at dawn", "nothing here", "a BOOK review"]
    assert through(op.tap(lambda e: seen.append(e.rkey)), POSTS) == POSTS
    assert seen == ["1", "2", "3", "4"]


def test_to_json_renders_events_windows_failures_and_plain_values() -> None:
    window = WindowResult(0, 60, {"en": 2, None: 1, ("en", "ja"): 1, 7: 1}, 5, 0)
    top = WindowResult(0, 60, [("at://a", 3), (None, 1)], 4, 2)
    failed = FailedEvent(POSTS[0], POSTS[0], ValueError("bad"), "m:f")
    out = through(op.to_json(), [POSTS[0], window, top, failed, {"n": 1}, b"raw", "text"])
    assert out[0] == POSTS[0].json
    assert orjson.loads(out[1]) == {
        "start_us": 0,
        "end_us": 60,
        "events": 5,
        "late": 0,
        "value": {"en": 2, "null": 1, '["en","ja"]': 1, "7": 1},
    }
    assert orjson.loads(out[2])["value"] == [["at://a", 3], [None, 1]]
    assert orjson.loads(out[3]) == {
        "error": "bad",
        "error_type": "ValueError",
        "function": "m:f",
        "event": POSTS[0].to_dict(),
    }
    assert out[4:] == [b'{"n":1}', b"raw", b"text"]


def test_to_json_skips_events_the_wire_does_not_carry() -> None:
    info = Event("info", "", 1, payload={"name": "OutdatedCursor"})
    assert through(op.to_json(), [info]) == []
    assert orjson.loads(through(op.to_json(wire_only=False), [info])[0])["kind"] == "info"
