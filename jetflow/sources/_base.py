"""What every source shares: an async iterator and an Observable over one async generator.

A source implements :meth:`Source._items`, an async generator that reconnects and resumes on
its own. From that, ``async for item in source`` and ``source.subscribe(...)`` /
``source.pipe(...)`` both work:

* Inside a running event loop (asyncio code, Jupyter), subscribing starts a task on that loop.
* Without one (a plain script), subscribing starts the loop in a daemon thread, and
  ``observable.run()`` blocks until the stream ends, as reactivex's ``run()`` does.

Buffering is bounded. With ``overflow="block"`` (the default) nothing is read ahead beyond the
transport's own bounded queue, so a slow consumer slows the upstream, which a cursor-resuming
upstream turns into a lossless delay. With ``drop_newest``/``drop_oldest`` a reader task keeps
draining the upstream into a buffer of ``buffer_size`` items and counts what it drops.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from jetflow.errors import ConfigError, JetflowError
from jetflow.flow import FlowControl, Overflow, current_flow

T = TypeVar("T")
log = logging.getLogger("jetflow.sources")


class SourceStats:
    """Counters a source keeps: items delivered, items dropped by the overflow policy,
    connections made and lost."""

    __slots__ = ("connects", "delivered", "disconnects", "dropped", "errors")

    def __init__(self) -> None:
        self.delivered = 0
        self.dropped = 0
        self.connects = 0
        self.disconnects = 0
        self.errors: dict[str, int] = {}

    def count_error(self, name: str) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "dropped": self.dropped,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "errors": dict(self.errors),
        }

    def __repr__(self) -> str:
        return f"SourceStats({self.as_dict()})"


class Source(Observable[T], Generic[T]):
    """Base class of jetflow's sources (see the module docstring)."""

    def __init__(
        self, *, buffer_size: int = 10_000, overflow: str | Overflow = Overflow.BLOCK
    ) -> None:
        if buffer_size < 1:
            raise ConfigError(f"buffer_size: must be at least 1, got {buffer_size}")
        self.buffer_size = buffer_size
        self.overflow = Overflow.parse(overflow)
        self.stats = SourceStats()
        super().__init__(self._subscribe_source)

    def _items(self) -> AsyncIterator[T]:
        """The upstream, item by item; subclasses implement it as an async generator."""
        raise NotImplementedError

    # -- async iteration ------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[T]:
        if self.overflow is Overflow.BLOCK:
            return self._counted(self._items())
        return self._buffered()

    async def _counted(self, items: AsyncIterator[T]) -> AsyncIterator[T]:
        stats = self.stats
        try:
            async for item in items:
                stats.delivered += 1
                yield item
        finally:
            await _aclose(items)

    async def _buffered(self) -> AsyncIterator[T]:
        """Drain the upstream in a reader task into a bounded deque; apply the drop policy."""
        buffer: collections.deque[T] = collections.deque()
        available = asyncio.Event()
        done: list[BaseException | None] = []
        stats = self.stats

        async def reader() -> None:
            items = self._items()
            try:
                async for item in items:
                    if len(buffer) >= self.buffer_size:
                        if self.overflow is Overflow.ERROR:
                            raise JetflowError(
                                f"source buffer overflow: consumer {self.buffer_size} items behind"
                            )
                        stats.dropped += 1
                        if self.overflow is Overflow.DROP_NEWEST:
                            continue
                        buffer.popleft()
                    buffer.append(item)
                    available.set()
                done.append(None)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # handed to the consumer below
                done.append(exc)
            finally:
                available.set()
                await _aclose(items)

        task = asyncio.get_running_loop().create_task(reader())
        try:
            while True:
                while buffer:
                    stats.delivered += 1
                    yield buffer.popleft()
                if done:
                    if done[0] is not None:
                        raise done[0]
                    return
                available.clear()
                await available.wait()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- Observable -----------------------------------------------------------------------

    def _subscribe_source(
        self, observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._subscribe_in_thread(observer)
        task = loop.create_task(self._pump(observer))

        def dispose() -> None:
            task.cancel()

        return Disposable(dispose)

    def _subscribe_in_thread(self, observer: abc.ObserverBase[T]) -> abc.DisposableBase:
        loop = asyncio.new_event_loop()
        task_box: list[asyncio.Task[None]] = []
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            task_box.append(loop.create_task(self._pump(observer)))
            started.set()
            try:
                loop.run_until_complete(task_box[0])
            except asyncio.CancelledError:
                pass
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name=f"jetflow-{type(self).__name__}", daemon=True)
        thread.start()
        started.wait()

        def dispose() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(task_box[0].cancel)

        return Disposable(dispose)

    async def _pump(self, observer: abc.ObserverBase[T]) -> None:
        """Push every item to ``observer``; wait whenever a downstream consumer pauses us."""
        flow = FlowControl()
        current_flow.set(flow)
        on_next = observer.on_next
        iterator = self.__aiter__()
        try:
            async for item in iterator:
                on_next(item)
                if flow.paused:
                    await flow.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            observer.on_error(exc)
            return
        finally:
            await _aclose(iterator)
        observer.on_completed()


async def _aclose(iterator: AsyncIterator[Any]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()
