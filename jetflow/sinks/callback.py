"""``callback``: hand each item to a function, sync or async."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from jetflow.flow import Overflow
from jetflow.sinks._base import AsyncSink, Sink

T = TypeVar("T")


class CallbackSink(Sink[T]):
    """Calls a plain function inline, in stream order."""

    def __init__(self, fn: Callable[[T], Any]) -> None:
        super().__init__()
        self.fn = fn

    def write(self, value: T) -> None:
        self.fn(value)
        self.stats.delivered += 1


class AsyncCallbackSink(AsyncSink[T]):
    """Awaits a coroutine function per item, one at a time, in stream order."""

    def __init__(
        self,
        fn: Callable[[T], Awaitable[Any]],
        *,
        buffer_size: int = 1000,
        overflow: str | Overflow = Overflow.BLOCK,
    ) -> None:
        super().__init__(buffer_size=buffer_size, overflow=overflow)
        self.fn = fn

    async def handle(self, value: T) -> None:
        await self.fn(value)


def callback(
    fn: Callable[[T], Any], *, buffer_size: int = 1000, overflow: str | Overflow = Overflow.BLOCK
) -> Sink[T]:
    """A sink that calls ``fn(item)``; an ``async def`` function is awaited, in order.

    An async callback that falls ``buffer_size`` items behind pauses the source (or applies
    ``overflow``: ``drop_oldest``, ``drop_newest``, ``error``). An exception raised by an
    async callback is counted in ``stats.errors`` and logged; the stream goes on.

    Example:
        >>> events.subscribe(jf.sinks.callback(lambda e: print(e.did)))
    """
    if inspect.iscoroutinefunction(fn):
        return AsyncCallbackSink(fn, buffer_size=buffer_size, overflow=overflow)
    return CallbackSink(fn)
