"""Go-compatible escaping of orjson output."""

from __future__ import annotations

import orjson
import pytest

from jetflow.codec.jsonfmt import canonical_record_order, go_escape


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", b'"plain"'),
        ("a&b<c>d", b'"a\\u0026b\\u003cc\\u003ed"'),
        ("\u2028\u2029", b'"\\u2028\\u2029"'),
        ("\b\f", b'"\\u0008\\u000c"'),
        ("\\b", b'"\\\\b"'),  # an escaped backslash then a letter b stays as it is
        ("\\\b", b'"\\\\\\u0008"'),
        ("\u201cquoted\u201d", '"\u201cquoted\u201d"'.encode()),
    ],
)
def test_go_escape_matches_go(text: str, expected: bytes) -> None:
    assert go_escape(orjson.dumps(text)) == expected


def test_escaping_twice_changes_nothing() -> None:
    once = go_escape(orjson.dumps("a&<>\b\f\u2028"))
    assert go_escape(once) == once


def test_canonical_record_order_sorts_keys_but_keeps_blob_order() -> None:
    record = {"b": 1, "a": {"size": 1, "mimeType": "m", "ref": {"$link": "x"}, "$type": "blob"}}
    assert list(canonical_record_order(record)) == ["a", "b"]
    assert list(canonical_record_order(record)["a"]) == ["$type", "ref", "mimeType", "size"]
