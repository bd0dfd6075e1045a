"""``jsonl``: JSON-lines files, optionally zstd-compressed and rotated by size or time."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import zstandard

from jetflow.errors import ConfigError, SinkError
from jetflow.events import WIRE_KINDS, Event
from jetflow.sinks._base import Sink


class JsonlFileSink(Sink[Event | bytes]):
    """Writes one JSON document per line; see :func:`jsonl`."""

    def __init__(
        self,
        path: str | Path,
        *,
        rotate_bytes: int | None = None,
        rotate_seconds: float | None = None,
        compress: bool | None = None,
        level: int = 3,
        wire_only: bool = True,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        if rotate_bytes is not None and rotate_bytes <= 0:
            raise ConfigError(f"rotate_bytes: must be positive, got {rotate_bytes}")
        if rotate_seconds is not None and rotate_seconds <= 0:
            raise ConfigError(f"rotate_seconds: must be positive, got {rotate_seconds}")
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.compress = self.path.suffix == ".zst" if compress is None else compress
        self.level = level
        self.wire_only = wire_only
        self.files: list[Path] = []
        self._raw: BinaryIO | None = None
        self._out: BinaryIO | None = None
        self._written = 0
        self._opened_at = 0.0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"{self.path.parent}: {exc.strerror or exc}") from None

    @property
    def rotating(self) -> bool:
        return self.rotate_bytes is not None or self.rotate_seconds is not None

    def _next_path(self) -> Path:
        if not self.rotating:
            return self.path
        name = self.path.name
        stem, dot, suffixes = name.partition(".")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        candidate = self.path.with_name(f"{stem}-{stamp}{dot}{suffixes}")
        counter = 1
        while candidate.exists() or candidate in self.files:
            candidate = self.path.with_name(f"{stem}-{stamp}-{counter}{dot}{suffixes}")
            counter += 1
        return candidate

    def _open(self) -> None:
        target = self._next_path()
        try:
            raw: BinaryIO = open(target, "ab")  # noqa: SIM115 - closed in _close_file
        except OSError as exc:
            raise SinkError(f"{target}: {exc.strerror or exc}") from None
        self._raw = raw
        if self.compress:
            writer = zstandard.ZstdCompressor(level=self.level).stream_writer(raw, closefd=False)
            self._out = writer
        else:
            self._out = raw
        self.files.append(target)
        self._written = 0
        self._opened_at = time.monotonic()

    def _close_file(self) -> None:
        if self._out is not None and self._out is not self._raw:
            self._out.close()
        if self._raw is not None:
            self._raw.flush()
            self._raw.close()
        self._out = self._raw = None

    def _due_for_rotation(self) -> bool:
        if self.rotate_bytes is not None and self._written >= self.rotate_bytes:
            return True
        return (
            self.rotate_seconds is not None
            and time.monotonic() - self._opened_at >= self.rotate_seconds
        )

    def write(self, value: Event | bytes) -> None:
        if self.done:
            raise SinkError(f"{self.path}: sink is closed")
        if isinstance(value, Event):
            if self.wire_only and value.kind not in WIRE_KINDS:
                return
            value = value.json
        if self._out is None:
            self._open()
        elif self.rotating and self._due_for_rotation():
            self._close_file()
            self._open()
        assert self._out is not None
        try:
            self._out.write(value)
            self._out.write(b"\n")
        except OSError as exc:
            self.stats.count_error(type(exc).__name__)
            raise SinkError(f"{self.files[-1]}: {exc.strerror or exc}") from None
        self._written += len(value) + 1
        self.stats.delivered += 1

    def flush(self) -> None:
        """Push what is written so far to the file (a zstd block boundary, then the OS)."""
        if self._out is not None and self._out is not self._raw:
            self._out.flush(zstandard.FLUSH_BLOCK)  # type: ignore[call-arg]
        if self._raw is not None:
            self._raw.flush()

    def close(self) -> None:
        if not self.done:
            self._close_file()
        super().close()


def jsonl(
    path: str | Path,
    *,
    rotate_bytes: int | None = None,
    rotate_seconds: float | None = None,
    compress: bool | None = None,
    level: int = 3,
) -> JsonlFileSink:
    """Write events (their Jetstream JSON) or bytes items as JSON lines.

    Args:
        path: the file; a ``.zst`` suffix turns on zstd unless ``compress`` says otherwise.
        rotate_bytes: start a new file once this many bytes of JSON (before compression) were
            written to the current one.
        rotate_seconds: start a new file after this many seconds.
            With rotation, files are named ``<stem>-<UTC time>[-n].<suffixes>`` next to ``path``;
            every rotated file is complete on its own (a whole zstd stream).
        compress: force zstd on or off.
        level: zstd level.

    Example:
        >>> events.subscribe(jf.sinks.jsonl("posts.jsonl.zst", rotate_seconds=3600))
    """
    return JsonlFileSink(
        path,
        rotate_bytes=rotate_bytes,
        rotate_seconds=rotate_seconds,
        compress=compress,
        level=level,
    )
