"""Hand-built firehose frames for tests that need one precise shape (the synthetic firehose
covers realistic streams)."""

from __future__ import annotations

from typing import Any

from jetflow.codec.car import block_with_cid, write_car
from jetflow.codec.cid import Link, compute_cid
from jetflow.codec.frame import encode_frame

DID = "did:plc:testtesttesttesttesttest"
TIME = "2026-07-04T14:38:07.517Z"


def commit_frame(
    ops: list[tuple[str, str, Any]],
    *,
    seq: int = 100,
    repo: str = DID,
    rev: str = "3mptbypluud2a",
    time: str = TIME,
    extra_blocks: list[tuple[bytes, bytes]] | None = None,
    car: bytes | None = None,
    **body_fields: Any,
) -> bytes:
    """A ``#commit`` frame. ``ops`` are (action, path, record); a record may be a dict (encoded
    into a block), raw ``bytes`` (used as the block as is), or None (a delete)."""
    blocks: list[tuple[bytes, bytes]] = []
    commit_cid, commit_block = block_with_cid({"did": repo, "rev": rev, "version": 3})
    blocks.append((commit_cid, commit_block))
    encoded_ops = []
    for action, path, record in ops:
        op: dict[str, Any] = {"action": action, "path": path, "cid": None}
        if record is not None:
            if isinstance(record, bytes):
                cid, block = compute_cid(record), record
            else:
                cid, block = block_with_cid(record)
            blocks.append((cid, block))
            op["cid"] = Link(cid)
        encoded_ops.append(op)
    blocks.extend(extra_blocks or [])
    body: dict[str, Any] = {
        "seq": seq,
        "rebase": False,
        "tooBig": False,
        "repo": repo,
        "commit": Link(commit_cid),
        "rev": rev,
        "since": None,
        "blocks": car if car is not None else write_car([commit_cid], blocks),
        "ops": encoded_ops,
        "blobs": [],
        "time": time,
        "prevData": None,
    }
    body.update(body_fields)
    return encode_frame({"op": 1, "t": "#commit"}, body)


def message_frame(message_type: str, body: dict[str, Any]) -> bytes:
    return encode_frame({"op": 1, "t": message_type}, body)


def like(subject_uri: str = "at://did:plc:abc/app.bsky.feed.post/3mabc") -> dict[str, Any]:
    return {
        "$type": "app.bsky.feed.like",
        "createdAt": "2026-07-04T14:38:08.999Z",
        "subject": {
            "cid": "bafyreiftot7eltsc3f6g4qktykmbv6jcmdmhcx5osscan6jpdxkpqcmcza",
            "uri": subject_uri,
        },
    }
