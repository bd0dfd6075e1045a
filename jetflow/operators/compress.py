"""``compress`` and ``decompress``: one self-contained zstd frame per event (spec §12)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from reactivex import Observable

from jetflow.codec.zstd import Compressor, Decompressor
from jetflow.errors import DecodeError
from jetflow.events import WIRE_KINDS, Event
from jetflow.operators._base import transform

log = logging.getLogger("jetflow.operators")


def compress(
    *, dictionary: str | Path | bytes | None = None, level: int = 3, wire_only: bool = True
) -> Callable[[Observable[Event | bytes]], Observable[bytes]]:
    """Compress each event's JSON into its own zstd frame.

    With a dictionary (e.g. Jetstream's v1 dictionary) each frame carries the dictionary's ID
    in its header, so any Jetstream client decodes it; without one, plain zstd frames. For
    events the frame is cached on the event (one compression however many consumers).

    Args:
        dictionary: path to (or bytes of) a trained zstd dictionary.
        level: zstd level (Jetstream uses the equivalent of 3).
        wire_only: skip ``sync`` and ``info`` events, as ``encode()`` does.

    Example:
        >>> events.pipe(compress(dictionary="zstd_dictionary")).subscribe(send)
    """
    compressor = Compressor(dictionary, level=level)

    def to_frame(item: Event | bytes) -> bytes | None:
        if isinstance(item, Event):
            if wire_only and item.kind not in WIRE_KINDS:
                return None
            return item.compressed(compressor)
        return compressor(item)

    def operator(source: Observable[Event | bytes]) -> Observable[bytes]:
        return transform(source, to_frame)

    return operator


def decompress(
    *, dictionary: str | Path | bytes | None = None
) -> Callable[[Observable[bytes]], Observable[bytes]]:
    """Decompress zstd frames (one per message) back into JSON bytes.

    A frame that does not decompress is skipped and logged once per stream.
    """
    decompressor = Decompressor(dictionary)

    def operator(source: Observable[bytes]) -> Observable[bytes]:
        warned = False

        def to_json(frame: bytes) -> bytes | None:
            nonlocal warned
            try:
                return decompressor(frame)
            except DecodeError as exc:
                if not warned:
                    warned = True
                    log.warning("skipped a message that does not decompress: %s", exc)
                return None

        return transform(source, to_json)

    return operator
