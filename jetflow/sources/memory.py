"""``memory``: items from an in-memory iterable, as a source (tests, notebooks, examples)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

from jetflow.sources._base import Source

T = TypeVar("T")


class MemorySource(Source[T]):
    """Items of an iterable; the iterable is read afresh on each subscription if it can be."""

    def __init__(self, items: Iterable[T]) -> None:
        super().__init__()
        self._items_iterable = items

    async def _items(self) -> AsyncIterator[T]:
        for count, item in enumerate(self._items_iterable, start=1):
            yield item
            if count % 1000 == 0:
                await asyncio.sleep(0)


def memory(items: Iterable[T]) -> MemorySource[T]:
    """A source over ``items`` (frames as bytes, or events).

    Example:
        >>> jf.sources.memory(frames).pipe(op.decode()).run()
    """
    return MemorySource(items)
