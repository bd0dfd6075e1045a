"""A sink that keeps what it receives, for tests and notebooks."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Generic, TypeVar

from jetflow.sinks._base import Sink

T = TypeVar("T")


class CollectingSink(Sink[T], Generic[T]):
    """Appends every item to ``items``; wait for a count with :meth:`wait_for`.

    Example:
        >>> sink = CollectingSink()
        >>> source.pipe(op.decode()).subscribe(sink)
        >>> await sink.wait_for_async(100)
    """

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        self.items: list[T] = []
        self.limit = limit
        self._arrived = threading.Condition()

    def write(self, value: T) -> None:
        if self.limit is not None and len(self.items) >= self.limit:
            self.stats.dropped += 1
            return
        with self._arrived:
            self.items.append(value)
            self._arrived.notify_all()
        self.stats.delivered += 1

    def close(self) -> None:
        with self._arrived:
            super().close()
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[T]:
        """Block until ``count`` items arrived (or the stream ended); return the items."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.items) < count and not self.done:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.wait(remaining)
        return list(self.items)

    async def wait_for_async(self, count: int, timeout: float = 10.0) -> list[T]:
        """Await ``count`` items without blocking the event loop; return the items."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.items) < count and not self.done and loop.time() < deadline:
            await asyncio.sleep(0.005)
        return list(self.items)
