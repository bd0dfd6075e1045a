"""``stdout``: JSON lines on standard output (what ``jetflow tail`` prints)."""

from __future__ import annotations

import sys
from typing import BinaryIO

from jetflow.events import WIRE_KINDS, Event
from jetflow.sinks._base import Sink


class StdoutSink(Sink[Event | bytes]):
    """Writes each event's JSON (or each bytes item) and a newline.

    Output is block-buffered and flushed on completion, or per line with ``line_buffered``.
    A closed pipe (``jetflow tail | head``) ends the sink quietly.
    """

    def __init__(self, stream: BinaryIO | None = None, *, line_buffered: bool = False) -> None:
        super().__init__()
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._line_buffered = line_buffered
        self.broken = False

    def write(self, value: Event | bytes) -> None:
        if self.broken:
            return
        if isinstance(value, Event):
            if value.kind not in WIRE_KINDS:
                return
            value = value.json
        try:
            self._stream.write(value + b"\n")
            if self._line_buffered:
                self._stream.flush()
        except BrokenPipeError:
            self.broken = True
            return
        self.stats.delivered += 1

    def close(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self.broken = True
        super().close()


def stdout(*, line_buffered: bool = False) -> StdoutSink:
    """JSON lines on standard output.

    Example:
        >>> jf.sources.replay("capture.bin").pipe(op.decode()).subscribe(jf.sinks.stdout())
    """
    return StdoutSink(line_buffered=line_buffered)
