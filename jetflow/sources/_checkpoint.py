"""Cursor checkpoints: the interface, and files written atomically (temp file + rename)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

from jetflow.errors import ConfigError


@runtime_checkable
class Checkpoint(Protocol):
    """Where a cursor is kept: :class:`CheckpointFile`, or
    :class:`jetflow.broker.checkpoint.KvCheckpoint` (a NATS KV key, for workers that move
    between machines). Synchronous: called between items, rarely."""

    def load(self) -> int | None:
        """The saved cursor, or None if nothing was saved yet."""

    def save(self, cursor: int) -> None:
        """Replace the saved cursor (durably, before returning)."""


class CheckpointFile:
    """A file holding one integer cursor, e.g. the last relay ``seq`` a pipeline processed.

    ``save`` replaces the file atomically, so a crash leaves the old or the new cursor, never a
    torn one. ``maybe_save`` throttles writes to one per ``interval`` seconds.
    """

    def __init__(self, path: str | Path, interval: float = 1.0) -> None:
        self.path = Path(path)
        self.interval = interval
        self._saved: int | None = None
        self._saved_at = 0.0

    def load(self) -> int | None:
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"checkpoint {self.path}: {exc.strerror or exc}") from None
        try:
            value = json.loads(text)["cursor"]
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"checkpoint {self.path}: not a jetflow checkpoint file") from None
        if type(value) is not int:
            raise ConfigError(f"checkpoint {self.path}: cursor is not an integer")
        self._saved = value
        return value

    def save(self, cursor: int) -> None:
        if cursor == self._saved:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump({"cursor": cursor, "saved_at": time.time()}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.path)
        self._saved = cursor
        self._saved_at = time.monotonic()

    def maybe_save(self, cursor: int) -> None:
        if time.monotonic() - self._saved_at >= self.interval:
            self.save(cursor)
