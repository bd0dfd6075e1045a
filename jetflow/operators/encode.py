"""``encode`` and ``parse``: events ↔ Jetstream JSON bytes."""

from __future__ import annotations

import logging
from collections.abc import Callable

from reactivex import Observable

from jetflow.errors import DecodeError
from jetflow.events import WIRE_KINDS, Event
from jetflow.operators._base import transform

log = logging.getLogger("jetflow.operators")


def encode(*, wire_only: bool = True) -> Callable[[Observable[Event]], Observable[bytes]]:
    """Each event's JSON bytes, exactly as Jetstream v1 sends them (spec §8).

    The bytes are built once per event and cached on it, so encoding again (or compressing,
    or a server sending them to many subscribers) costs nothing more.

    Args:
        wire_only: skip ``sync`` and ``info`` events, which the Jetstream wire does not carry.
            With False they are written in jetflow's own shape (``{"kind":"sync","sync":{…}}``).

    Example:
        >>> events.pipe(encode()).subscribe(sys.stdout.buffer.write)
    """

    def to_json(event: Event) -> bytes | None:
        if wire_only and event.kind not in WIRE_KINDS:
            return None
        return event.json

    def operator(source: Observable[Event]) -> Observable[bytes]:
        return transform(source, to_json)

    return operator


def parse(
    *, on_error: Callable[[bytes, DecodeError], None] | None = None
) -> Callable[[Observable[bytes | str]], Observable[Event]]:
    """Jetstream JSON (bytes or str) → events; the input is kept as each event's JSON.

    A message that is not a Jetstream event is skipped and reported to ``on_error`` (default:
    logged at WARNING); the stream goes on.

    Example:
        >>> events = messages.pipe(decompress(dictionary=path), parse())
    """

    def to_event(data: bytes | str) -> Event | None:
        try:
            return Event.from_json(data)
        except DecodeError as exc:
            raw = data.encode() if isinstance(data, str) else data
            if on_error is not None:
                on_error(raw, exc)
            else:
                log.warning("skipped a message that is not a Jetstream event: %s", exc)
            return None

    def operator(source: Observable[bytes | str]) -> Observable[Event]:
        return transform(source, to_event)

    return operator
