"""The hot-path event type.

An :class:`Event` is one Jetstream event (``commit``, ``identity``, ``account``) or one of the
kinds jetflow adds for pipelines (``sync``, ``info``), which the Jetstream wire never carries.
It is a plain slotted object: its JSON bytes are built once on first use and cached, and so are
its compressed bytes, so a server can store and send the same bytes to every subscriber.

Typed views (pydantic models) are built on demand by :meth:`Event.model` and
:meth:`Event.typed_record`, off the hot path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal

import orjson

from jetflow.codec.accel import commit_json
from jetflow.codec.jsonfmt import canonical_record_order, go_escape
from jetflow.errors import DecodeError

if TYPE_CHECKING:
    from jetflow.codec.zstd import Compressor
    from jetflow.models.jetstream import JetstreamEvent

Kind = Literal["commit", "identity", "account", "sync", "info"]
COMMIT: Final = "commit"
IDENTITY: Final = "identity"
ACCOUNT: Final = "account"
SYNC: Final = "sync"
INFO: Final = "info"
WIRE_KINDS: Final = frozenset({COMMIT, IDENTITY, ACCOUNT})
ALL_KINDS: Final = frozenset({COMMIT, IDENTITY, ACCOUNT, SYNC, INFO})
OPERATIONS: Final = frozenset({"create", "update", "delete"})


class Event:
    """One event. Commit fields are empty strings / None on other kinds.

    The decoder builds commit events with :func:`new_commit`, which skips ``__init__``'s
    keyword handling (5× faster, and there is one per op on the hot path).

    Attributes:
        kind: ``commit``, ``identity``, ``account``, ``sync`` or ``info``.
        did: the repo DID (empty for ``info``).
        time_us: the event's cursor: microseconds, strictly increasing per source.
        seq: the relay sequence number of the frame it came from, when known.
        rev, operation, collection, rkey, cid: commit fields (spec §8.1).
        payload: the identity / account / sync / info body, in Jetstream's field order.
    """

    __slots__ = (
        "_json",
        "_record",
        "_record_json",
        "_zstd",
        "_zstd_by",
        "cid",
        "collection",
        "did",
        "kind",
        "op_index",
        "operation",
        "payload",
        "rev",
        "rkey",
        "seq",
        "time_us",
    )

    def __init__(
        self,
        kind: str,
        did: str,
        time_us: int,
        *,
        seq: int | None = None,
        rev: str = "",
        operation: str = "",
        collection: str = "",
        rkey: str = "",
        cid: str | None = None,
        record: dict[str, Any] | None = None,
        record_json: bytes | None = None,
        payload: dict[str, Any] | None = None,
        op_index: int = 0,
        json: bytes | None = None,
    ) -> None:
        self.kind = kind
        self.did = did
        self.time_us = time_us
        self.seq = seq
        self.rev = rev
        self.operation = operation
        self.collection = collection
        self.rkey = rkey
        self.cid = cid
        self.payload = payload
        self.op_index = op_index
        self._record = record
        self._record_json = record_json
        self._json = json
        self._zstd: bytes | None = None
        self._zstd_by: Compressor | None = None

    # -- record -------------------------------------------------------------------------------

    @property
    def record(self) -> dict[str, Any] | None:
        """The record of a create/update, in Jetstream's JSON shape (``$link``, ``$bytes``)."""
        if self._record is None and self._record_json is not None:
            self._record = orjson.loads(self._record_json)
        return self._record

    @property
    def record_json(self) -> bytes | None:
        """The record's JSON exactly as it appears on the wire, or None without a record."""
        if self._record_json is None and self._record is not None:
            self._record_json = go_escape(orjson.dumps(canonical_record_order(self._record)))
        return self._record_json

    @property
    def uri(self) -> str:
        """``at://did/collection/rkey`` for commits, empty otherwise."""
        return f"at://{self.did}/{self.collection}/{self.rkey}" if self.kind == COMMIT else ""

    # -- bytes ----------------------------------------------------------------------------------

    @property
    def json(self) -> bytes:
        """The event as Jetstream v1 sends it (spec §8), built once and cached."""
        if self._json is None:
            if self.kind == COMMIT:
                record_json = self._record_json
                if record_json is None and self._record is not None:
                    record_json = self.record_json
                self._json = commit_json(
                    self.did,
                    self.time_us,
                    self.rev,
                    self.operation,
                    self.collection,
                    self.rkey,
                    record_json,
                    self.cid,
                )
            else:
                self._json = go_escape(orjson.dumps(self.to_dict()))
        return self._json

    def compressed(self, compressor: Compressor) -> bytes:
        """The event's JSON as one zstd frame, built once per compressor and cached."""
        if self._zstd_by is not compressor or self._zstd is None:
            self._zstd = compressor.compress(self.json)
            self._zstd_by = compressor
        return self._zstd

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-shaped dict, in wire field order."""
        out: dict[str, Any] = {"did": self.did, "time_us": self.time_us, "kind": self.kind}
        if self.kind == COMMIT:
            commit: dict[str, Any] = {}
            if self.rev:
                commit["rev"] = self.rev
            if self.operation:
                commit["operation"] = self.operation
            if self.collection:
                commit["collection"] = self.collection
            if self.rkey:
                commit["rkey"] = self.rkey
            record = self.record
            if record is not None:
                commit["record"] = record
            if self.cid:
                commit["cid"] = self.cid
            out["commit"] = commit
        else:
            out[self.kind] = self.payload if self.payload is not None else {}
        return out

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_json(cls, data: bytes | str, *, keep_bytes: bool = True) -> Event:
        """Parse one Jetstream JSON event; with ``keep_bytes`` the input is reused as its JSON."""
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"event is not JSON: {exc}") from None
        event = cls.from_dict(obj)
        if keep_bytes:
            event._json = data.encode() if isinstance(data, str) else bytes(data)
        return event

    @classmethod
    def from_dict(cls, obj: Any) -> Event:
        """Build an event from a parsed Jetstream JSON object."""
        if not isinstance(obj, dict):
            raise DecodeError("event is not a JSON object")
        kind = obj.get("kind")
        did = obj.get("did")
        time_us = obj.get("time_us")
        if kind not in ALL_KINDS or not isinstance(did, str) or type(time_us) is not int:
            raise DecodeError("event needs string 'kind' and 'did' and an integer 'time_us'")
        body = obj.get(kind)
        if not isinstance(body, dict):
            raise DecodeError(f"event of kind {kind!r} has no {kind!r} object")
        if kind != COMMIT:
            seq = body.get("seq")
            return cls(kind, did, time_us, seq=seq if type(seq) is int else None, payload=body)
        fields = {name: body.get(name, "") for name in ("rev", "operation", "collection", "rkey")}
        if not all(isinstance(value, str) for value in fields.values()):
            raise DecodeError("commit fields rev, operation, collection and rkey must be strings")
        record = body.get("record")
        if record is not None and not isinstance(record, dict):
            raise DecodeError("commit record must be an object")
        cid = body.get("cid")
        return cls(
            COMMIT, did, time_us, record=record, cid=cid if isinstance(cid, str) else None, **fields
        )

    # -- views ------------------------------------------------------------------------------------

    def model(self) -> JetstreamEvent:
        """This event as a validated pydantic model (see :mod:`jetflow.models.jetstream`)."""
        from jetflow.models.jetstream import parse_event

        return parse_event(self.json)

    def typed_record(self) -> Any:
        """The record as its typed ``app.bsky.*`` model, or None if its type is not modelled."""
        from jetflow.models.records import parse_record

        record = self.record
        return parse_record(record) if record is not None else None

    def __repr__(self) -> str:
        if self.kind == COMMIT:
            return (
                f"<Event commit {self.operation} {self.did}/{self.collection}/{self.rkey}"
                f" time_us={self.time_us}>"
            )
        return f"<Event {self.kind} {self.did} time_us={self.time_us}>"

    def __str__(self) -> str:
        return self.json.decode("utf-8") if self.kind in WIRE_KINDS else repr(self)


_new_event = Event.__new__


def new_commit(
    did: str,
    time_us: int,
    seq: int | None,
    rev: str,
    operation: str,
    collection: str,
    rkey: str,
    cid: str | None,
    record_json: bytes | None,
    op_index: int,
) -> Event:
    """A commit event, built for the hot path (same result as ``Event(COMMIT, ...)``)."""
    event = _new_event(Event)
    event.kind = COMMIT
    event.did = did
    event.time_us = time_us
    event.seq = seq
    event.rev = rev
    event.operation = operation
    event.collection = collection
    event.rkey = rkey
    event.cid = cid
    event.payload = None
    event.op_index = op_index
    event._record = None
    event._record_json = record_json
    event._json = None
    event._zstd = None
    event._zstd_by = None
    return event
