"""The commit event envelope (spec §8.1–§8.2), around a record already rendered."""

from __future__ import annotations

from typing import Any

import orjson

from jetflow.codec.jsonfmt import go_escape


def commit_json(
    did: str,
    time_us: int,
    rev: str,
    operation: str,
    collection: str,
    rkey: str,
    record_json: bytes | None,
    cid: str | None,
) -> bytes:
    """A commit event's JSON; commit fields are omitted when empty, as Go's ``omitempty`` does."""
    commit: dict[str, Any] = {}
    if rev:
        commit["rev"] = rev
    if operation:
        commit["operation"] = operation
    if collection:
        commit["collection"] = collection
    if rkey:
        commit["rkey"] = rkey
    if record_json is not None:
        commit["record"] = orjson.Fragment(record_json)
    if cid:
        commit["cid"] = cid
    return go_escape(
        orjson.dumps({"did": did, "time_us": time_us, "kind": "commit", "commit": commit})
    )
