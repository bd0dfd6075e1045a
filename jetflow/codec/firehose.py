"""Firehose frame → events, exactly as Jetstream v1 converts them (spec §8–§9, with §0 fixes).

:class:`FirehoseDecoder` is sans-I/O: give it frames, get :class:`~jetflow.events.Event` lists.
Nothing is ever raised for bad input; every skip is counted in :class:`DecodeStats` by reason,
and the first of each reason is logged with its context.

Per commit frame, in order: the frame is parsed once; the CAR framing is checked (an
unreadable CAR drops the whole commit, deletes included); then for each op the cheap fields
(did, collection, operation) go through the caller's filter **before** the record block is
located, hashed and rendered.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Any

from jetflow.codec.accel import check_car, find_block, is_rfc3339, render_record
from jetflow.codec.cid import cid_to_str
from jetflow.codec.clock import MonotonicClock, RelayClock
from jetflow.codec.frame import Frame
from jetflow.codec.rfc3339 import to_unix_us
from jetflow.errors import InvalidRecordError, MalformedCARError, MalformedFrameError
from jetflow.events import ACCOUNT, COMMIT, IDENTITY, INFO, SYNC, Event, new_commit
from jetflow.filtering import EventFilter

log = logging.getLogger("jetflow.decode")

# Skip reasons, as counted in DecodeStats.
MALFORMED_FRAME = "malformed_frame"
TEXT_FRAME = "text_frame"
ERROR_FRAME = "error_frame"
UNKNOWN_TYPE = "unknown_type"
TOO_BIG = "too_big"
MALFORMED_CAR = "malformed_car"
INVALID_COMMIT = "invalid_commit"
INVALID_IDENTITY = "invalid_identity"
INVALID_ACCOUNT = "invalid_account"
INVALID_SYNC = "invalid_sync"
INVALID_INFO = "invalid_info"
BAD_TIME = "bad_time"
BAD_PATH = "bad_path"
UNKNOWN_ACTION = "unknown_action"
MISSING_CID = "missing_cid"
MISSING_RECORD = "missing_record"
INVALID_RECORD = "invalid_record"


class DecodeStats:
    """What the decoder saw: ``frames`` and ``events`` in, and every skip by reason.

    The first skip of each reason is logged at WARNING with its context; later ones are only
    counted (read them with ``stats[reason]`` or :meth:`as_dict`).
    """

    __slots__ = ("_logged", "counts", "events", "filtered", "frames")

    def __init__(self) -> None:
        self.frames = 0
        self.events = 0
        self.filtered = 0
        self.counts: dict[str, int] = {}
        self._logged: set[str] = set()

    def skip(self, reason: str, context: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if reason not in self._logged:
            self._logged.add(reason)
            log.warning("skipped (%s): %s; later ones are only counted", reason, context)

    def __getitem__(self, reason: str) -> int:
        return self.counts.get(reason, 0)

    @property
    def skipped(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        return {
            "frames": self.frames,
            "events": self.events,
            "filtered": self.filtered,
            **self.counts,
        }

    def __repr__(self) -> str:
        return f"DecodeStats({self.as_dict()})"


class FirehoseDecoder:
    """Turns raw firehose frames into events.

    Args:
        clock: gives each event its ``time_us`` (default: a fresh :class:`MonotonicClock`).
        relay_time: take ``time_us`` from each frame's relay ``time`` (kept strictly increasing
            by a :class:`RelayClock`) instead of the wall clock: what event-time windows over a
            replayed capture need.
        event_filter: applied to each op's did/collection/operation before its record is touched.
        stats: where skips are counted (default: a new :class:`DecodeStats`).
    """

    def __init__(
        self,
        clock: Callable[[], int] | None = None,
        event_filter: EventFilter | None = None,
        stats: DecodeStats | None = None,
        *,
        relay_time: bool = False,
    ) -> None:
        self._relay_clock = (
            (clock if isinstance(clock, RelayClock) else RelayClock()) if relay_time else None
        )
        self.clock = self._relay_clock or clock or MonotonicClock()
        self.event_filter = (
            event_filter if event_filter is not None and not event_filter.is_empty else None
        )
        self.stats = stats or DecodeStats()
        self._handlers: dict[str, Callable[[dict[str, Any], Frame], list[Event]]] = {
            "#commit": self._commit,
            "#identity": self._identity,
            "#account": self._account,
            "#sync": self._sync,
            "#info": self._info,
        }

    def decode(self, frame: Frame | bytes | str) -> list[Event]:
        """All events of one frame, in op order; an empty list for frames that carry none."""
        stats = self.stats
        stats.frames += 1
        if not isinstance(frame, Frame):
            if isinstance(frame, str):
                stats.skip(TEXT_FRAME, "a text websocket message where a binary frame was expected")
                return []
            frame = Frame(frame)
        try:
            header, body = frame.parts()
        except MalformedFrameError as exc:
            stats.skip(MALFORMED_FRAME, f"{exc} ({len(frame.data)} bytes)")
            return []
        message_type = header.get("t")
        if message_type is None:
            name, message = frame.error
            stats.skip(ERROR_FRAME, f"error frame {name}: {message}")
            return []
        handler = self._handlers.get(message_type)
        if handler is None:
            stats.skip(UNKNOWN_TYPE, f"message type {message_type!r}")
            return []
        events = handler(body, frame)
        stats.events += len(events)
        return events

    # -- #commit ----------------------------------------------------------------------------------

    def _commit(self, body: dict[str, Any], frame: Frame) -> list[Event]:
        stats = self.stats
        did = body.get("repo")
        rev = body.get("rev")
        ops = body.get("ops")
        blocks = body.get("blocks")
        seq = body.get("seq")
        time = body.get("time")
        if (
            type(did) is not str
            or type(rev) is not str
            or type(ops) is not list
            or type(blocks) is not bytes
            or type(seq) is not int
            or type(time) is not str
            or type(body.get("commit")) is not bytes
        ):
            stats.skip(
                INVALID_COMMIT, f"commit seq={seq!r} lacks a required field or has a wrong type"
            )
            return []
        if body.get("tooBig") is True:
            stats.skip(TOO_BIG, f"tooBig commit seq={seq} repo={did}")
            return []
        if not is_rfc3339(time):
            stats.skip(BAD_TIME, f"commit seq={seq} repo={did} time={time!r}")
            return []
        if self._relay_clock is not None:
            self._follow_relay_time(time)
        try:
            check_car(blocks)
        except MalformedCARError as exc:
            stats.skip(MALFORMED_CAR, f"commit seq={seq} repo={did}: {exc}")
            return []
        wanted = self.event_filter
        clock = self.clock
        events: list[Event] = []
        for index, op in enumerate(ops):
            if type(op) is not dict:
                stats.skip(INVALID_COMMIT, f"commit seq={seq} repo={did}: op {index} is not a map")
                continue
            action = op.get("action")
            path = op.get("path")
            if type(action) is not str or type(path) is not str:
                stats.skip(
                    INVALID_COMMIT, f"commit seq={seq} repo={did}: op {index} lacks action/path"
                )
                continue
            collection, slash, rkey = path.partition("/")
            if not slash:
                stats.skip(BAD_PATH, f"commit seq={seq} repo={did}: path {path!r} has no '/'")
                continue
            if action == "delete":
                if wanted is not None and not wanted.wants(COMMIT, did, collection, action):
                    stats.filtered += 1
                    continue
                events.append(
                    new_commit(did, clock(), seq, rev, action, collection, rkey, None, None, index)
                )
                continue
            if action != "create" and action != "update":
                stats.skip(UNKNOWN_ACTION, f"commit seq={seq} repo={did}: action {action!r}")
                continue
            if wanted is not None and not wanted.wants(COMMIT, did, collection, action):
                stats.filtered += 1
                continue
            cid = op.get("cid")
            if type(cid) is not bytes:
                stats.skip(
                    MISSING_CID, f"commit seq={seq} repo={did}: {action} {path} without a CID"
                )
                continue
            # find_block only returns a block that hashes to a well-formed sha2-256 CID.
            block = find_block(blocks, cid)
            if block is None:
                stats.skip(
                    MISSING_RECORD,
                    f"commit seq={seq} repo={did}: no block hashing to the CID of {path}",
                )
                continue
            try:
                record_json = render_record(block)
            except InvalidRecordError as exc:
                stats.skip(INVALID_RECORD, f"commit seq={seq} repo={did} {path}: {exc}")
                continue
            events.append(
                new_commit(
                    did,
                    clock(),
                    seq,
                    rev,
                    action,
                    collection,
                    rkey,
                    cid_to_str(cid),
                    record_json,
                    index,
                )
            )
        return events

    # -- pass-through kinds ------------------------------------------------------------------------

    def _identity(self, body: dict[str, Any], frame: Frame) -> list[Event]:
        did, seq, time = body.get("did"), body.get("seq"), body.get("time")
        handle = body.get("handle")
        if (
            type(did) is not str
            or type(seq) is not int
            or type(time) is not str
            or (handle is not None and type(handle) is not str)
        ):
            self.stats.skip(
                INVALID_IDENTITY, f"identity seq={seq!r} lacks a field or has a wrong type"
            )
            return []
        if not is_rfc3339(time):
            self.stats.skip(BAD_TIME, f"identity seq={seq} did={did} time={time!r}")
            return []
        self._follow_relay_time(time)
        if not self._wanted(IDENTITY, did):
            return []
        payload: dict[str, Any] = {"did": did}
        if handle is not None:
            payload["handle"] = handle
        payload["seq"] = seq
        payload["time"] = time
        return [Event(IDENTITY, did, self.clock(), seq=seq, payload=payload)]

    def _account(self, body: dict[str, Any], frame: Frame) -> list[Event]:
        did, seq, time = body.get("did"), body.get("seq"), body.get("time")
        active, status = body.get("active"), body.get("status")
        if (
            type(did) is not str
            or type(seq) is not int
            or type(time) is not str
            or type(active) is not bool
            or (status is not None and type(status) is not str)
        ):
            self.stats.skip(
                INVALID_ACCOUNT, f"account seq={seq!r} lacks a field or has a wrong type"
            )
            return []
        if not is_rfc3339(time):
            self.stats.skip(BAD_TIME, f"account seq={seq} did={did} time={time!r}")
            return []
        self._follow_relay_time(time)
        if not self._wanted(ACCOUNT, did):
            return []
        payload: dict[str, Any] = {"active": active, "did": did, "seq": seq}
        if status is not None:
            payload["status"] = status
        payload["time"] = time
        return [Event(ACCOUNT, did, self.clock(), seq=seq, payload=payload)]

    def _sync(self, body: dict[str, Any], frame: Frame) -> list[Event]:
        did, seq, time = body.get("did"), body.get("seq"), body.get("time")
        rev, blocks = body.get("rev"), body.get("blocks")
        if (
            type(did) is not str
            or type(seq) is not int
            or type(time) is not str
            or type(rev) is not str
            or type(blocks) is not bytes
        ):
            self.stats.skip(INVALID_SYNC, f"sync seq={seq!r} lacks a field or has a wrong type")
            return []
        if not self._wanted(SYNC, did):
            return []
        self._follow_relay_time(time)
        payload = {
            "blocks": {"$bytes": base64.b64encode(blocks).rstrip(b"=").decode("ascii")},
            "did": did,
            "rev": rev,
            "seq": seq,
            "time": time,
        }
        return [Event(SYNC, did, self.clock(), seq=seq, rev=rev, payload=payload)]

    def _info(self, body: dict[str, Any], frame: Frame) -> list[Event]:
        name, message = body.get("name"), body.get("message")
        if type(name) is not str or (message is not None and type(message) is not str):
            self.stats.skip(INVALID_INFO, "info frame without a string name")
            return []
        if not self._wanted(INFO, ""):
            return []
        payload = {"name": name} if message is None else {"message": message, "name": name}
        return [Event(INFO, "", self.clock(), payload=payload)]

    def _follow_relay_time(self, time: str) -> None:
        if self._relay_clock is not None:
            relay_us = to_unix_us(time)
            if relay_us is not None:
                self._relay_clock.at_least(relay_us)

    def _wanted(self, kind: str, did: str) -> bool:
        if self.event_filter is None or self.event_filter.wants(kind, did):
            return True
        self.stats.filtered += 1
        return False
