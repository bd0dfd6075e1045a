"""What one event looks like in the stream: subject, payload and headers, both ways.

Payload: the event's exact Jetstream v1 JSON bytes (``Event.json``), nothing added.

Headers:

``Nats-Msg-Id``
    The event's upstream identity, so that the stream drops a second copy within its
    duplicate window (a retried publish, or a second ingest node): ``<relay seq>:<op index>``
    when the relay ``seq`` is known, else ``<did>/<collection>/<rkey>/<rev>`` for a commit and
    ``<kind>:<did>:<relay time>`` for identity and account events.
``Jetflow-Time-Us``
    The event's ``time_us`` (also in the JSON; the header lets readers seek without parsing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from jetflow.broker.subjects import Subjects
from jetflow.codec.wsframe import binary_frame, text_frame
from jetflow.errors import DecodeError
from jetflow.events import Event
from jetflow.store.sqlite import KIND_CODES, StoredEvent

MSG_ID = "Nats-Msg-Id"
TIME_US = "Jetflow-Time-Us"
EXPECTED_LAST_SEQ = "Nats-Expected-Last-Sequence"
EXPECTED_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
EXPECTED_SUBJECT = "Nats-Expected-Last-Subject-Sequence-Subject"

_KINDS_BY_TOKEN = {"identity": KIND_CODES["identity"], "account": KIND_CODES["account"]}
_DID_START = b'{"did":"'
_TIME_MARK = b'","time_us":'


def message_id(event: Event) -> str:
    """The deduplication id of ``event`` (see the module docstring)."""
    if event.seq is not None:
        return f"{event.seq}:{event.op_index}"
    if event.kind == "commit":
        return f"{event.did}/{event.collection}/{event.rkey}/{event.rev}"
    time = event.payload.get("time") if event.payload else None
    return f"{event.kind}:{event.did}:{time}"


def relay_position(msg_id: str | None) -> tuple[int, int] | None:
    """``(relay seq, op index)`` from a message id made by :func:`message_id`, if it has one."""
    if not msg_id:
        return None
    seq, sep, index = msg_id.partition(":")
    if sep and seq.isdigit() and index.isdigit():
        return int(seq), int(index)
    return None


def encode(subjects: Subjects, event: Event) -> tuple[str, bytes, dict[str, str]]:
    """Subject, payload and headers for one wire event."""
    return (
        subjects.for_event(event.kind, event.collection),
        event.json,
        {MSG_ID: message_id(event), TIME_US: str(event.time_us)},
    )


def did_and_time(data: bytes) -> tuple[str, int]:
    """The ``did`` and ``time_us`` of a Jetstream event's JSON, read off its fixed prefix
    (``{"did":"…","time_us":…,``) without parsing the rest."""
    if data.startswith(_DID_START):
        end = data.find(_TIME_MARK, 8)
        if end > 0:
            start = end + len(_TIME_MARK)
            stop = data.find(b",", start)
            digits = data[start:stop]
            if stop > 0 and digits.isdigit():
                raw = data[8:end]
                if b"\\" not in raw:
                    return raw.decode(), int(digits)
    obj = _parse(data)
    did, time_us = obj.get("did"), obj.get("time_us")
    if not isinstance(did, str) or type(time_us) is not int:
        raise DecodeError("broker message is not a Jetstream event (no did / time_us)")
    return did, time_us


def _parse(data: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"broker message is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise DecodeError("broker message is not a JSON object")
    return obj


def stored_event(
    subjects: Subjects, subject: str, data: bytes, compressor: Callable[[bytes], bytes]
) -> StoredEvent:
    """The server's view of a stream message: filter fields from the subject and the JSON
    prefix, the text frame, and the zstd frame (compressed here, once per message)."""
    did, time_us = did_and_time(data)
    collection = subjects.collection_of(subject)
    if collection is not None:
        kind = 0
    else:
        token = subject.rsplit(".", 1)[-1]
        code = _KINDS_BY_TOKEN.get(token)
        if code is not None:
            kind, collection = code, ""
        else:  # ….commit._: the collection is only in the JSON
            body = _parse(data).get("commit")
            kind = 0
            collection = body.get("collection", "") if isinstance(body, dict) else ""
            if not isinstance(collection, str):
                collection = ""
    return StoredEvent(
        time_us, did, collection, kind, text_frame(data), binary_frame(compressor(data))
    )
