"""Backpressure between async sinks and the source that feeds them.

reactivex pushes synchronously and has no backpressure. jetflow's sources run their push loop
("pump") as an asyncio task and, after each item, wait while any consumer downstream has asked
them to pause. A sink that buffers asynchronous work (a websocket push, an async callback)
finds the pump's :class:`FlowControl` through a context variable — the sink's ``on_next`` runs
synchronously inside the pump's task — and pauses it above its high-water mark, resuming it
once drained. Where there is no pump (items pushed from elsewhere), sinks fall back to their
overflow policy.
"""

from __future__ import annotations

import asyncio
import contextvars
from enum import StrEnum

from jetflow.errors import ConfigError


class Overflow(StrEnum):
    """What a full buffer does with one more item."""

    BLOCK = "block"  # make the producer wait (lossless; the upstream resumes from a cursor)
    DROP_NEWEST = "drop_newest"  # discard the incoming item
    DROP_OLDEST = "drop_oldest"  # discard the oldest buffered item
    ERROR = "error"  # fail the stream

    @classmethod
    def parse(cls, value: str | Overflow) -> Overflow:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(item.value for item in cls)
            raise ConfigError(f"overflow: {value!r} is not one of {choices}") from None


class FlowControl:
    """A pause switch that any number of consumers can hold."""

    __slots__ = ("_holders", "_ready")

    def __init__(self) -> None:
        self._holders: set[int] = set()
        self._ready = asyncio.Event()
        self._ready.set()

    @property
    def paused(self) -> bool:
        return bool(self._holders)

    def pause(self, holder: object) -> None:
        self._holders.add(id(holder))
        self._ready.clear()

    def resume(self, holder: object) -> None:
        self._holders.discard(id(holder))
        if not self._holders:
            self._ready.set()

    async def wait(self) -> None:
        """Return once no consumer holds the pause."""
        while self._holders:
            await self._ready.wait()


current_flow: contextvars.ContextVar[FlowControl | None] = contextvars.ContextVar(
    "jetflow_current_flow", default=None
)
