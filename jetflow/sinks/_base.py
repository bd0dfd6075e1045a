"""What sinks share: the reactivex Observer interface, counters, and bounded async work.

A sink is an Observer: ``observable.subscribe(sink)``. Synchronous sinks (files, stdout, sync
callbacks) do their work inside ``on_next``. Sinks whose work is asynchronous (websocket push,
async callbacks) queue items for a worker task; above ``buffer_size`` queued items they pause
the source that feeds them (see :mod:`jetflow.flow`), or, where no source can be paused, apply
their overflow policy and count what they drop. An exception from one item is counted and
logged and the sink goes on; a :class:`~jetflow.errors.JetflowError` (the sink cannot go on:
fenced, bad credentials, a full disk) ends it, with ``error`` set, and fails a pipeline.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from reactivex import abc

from jetflow.errors import ConfigError, JetflowError, SinkError
from jetflow.flow import FlowControl, Overflow, current_flow

T = TypeVar("T")
log = logging.getLogger("jetflow.sinks")


class SinkStats:
    """Items received, delivered and dropped, and errors by name."""

    __slots__ = ("delivered", "dropped", "errors", "received")

    def __init__(self) -> None:
        self.received = 0
        self.delivered = 0
        self.dropped = 0
        self.errors: dict[str, int] = {}

    def count_error(self, name: str) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "errors": dict(self.errors),
        }

    def __repr__(self) -> str:
        return f"SinkStats({self.as_dict()})"


class Sink(abc.ObserverBase[T], Generic[T]):
    """Base of every sink: an Observer that counts and can be waited on until it completes."""

    def __init__(self) -> None:
        self.stats = SinkStats()
        self.error: BaseException | None = None
        self._done = threading.Event()

    def on_next(self, value: T) -> None:
        self.stats.received += 1
        self.write(value)

    def write(self, value: T) -> None:
        """Handle one item (subclasses)."""
        raise NotImplementedError

    def on_error(self, error: Exception) -> None:
        self.error = error
        log.error("stream feeding %s failed: %s", type(self).__name__, error)
        self.close()

    def on_completed(self) -> None:
        self.close()

    def close(self) -> None:
        """Flush and release resources; idempotent."""
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the stream completed or failed (for scripts); True if it did."""
        return self._done.wait(timeout)

    async def wait_async(self, timeout: float | None = None) -> bool:
        """Await completion without blocking the event loop."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._done.is_set():
            if deadline is not None and loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True


class AsyncSink(Sink[T], Generic[T]):
    """A sink whose per-item work is a coroutine, run by one worker task in order."""

    def __init__(
        self, *, buffer_size: int = 10_000, overflow: str | Overflow = Overflow.BLOCK
    ) -> None:
        super().__init__()
        if buffer_size < 1:
            raise ConfigError(f"buffer_size: must be at least 1, got {buffer_size}")
        self.buffer_size = buffer_size
        self.overflow = Overflow.parse(overflow)
        self._queue: collections.deque[T] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paused: list[FlowControl] = []
        self._closing = False
        self._low_water = max(buffer_size // 2, 1)
        # Called with (item, exception) when handle() raises; default: count and log. A pipeline
        # sets it to apply its error policy.
        self.on_handle_error: Callable[[T, Exception], None] | None = None
        # Called once when the sink fails for good (see _work); a pipeline sets it to fail.
        self.on_failure: Callable[[Exception], None] | None = None
        self._failed = False

    async def handle(self, value: T) -> None:
        """Deliver one item (subclasses)."""
        raise NotImplementedError

    async def finish(self) -> None:
        """Called once after the last item was handled (subclasses may close connections)."""

    async def settle(self) -> None:
        """Wait until what was handled so far is safe downstream (a broker confirmed it);
        a pipeline checkpoints only after this. Most sinks are done once ``handle`` returns."""

    def write(self, value: T) -> None:
        if self._failed:
            self.stats.dropped += 1
            return
        if self._worker is None:
            self._start()
        queue = self._queue
        if len(queue) >= self.buffer_size:
            flow = current_flow.get()
            if self.overflow is Overflow.DROP_NEWEST:
                self.stats.dropped += 1
                return
            if self.overflow is Overflow.DROP_OLDEST:
                queue.popleft()
                self.stats.dropped += 1
            elif self.overflow is Overflow.BLOCK and flow is not None:
                if flow not in self._paused:
                    flow.pause(self)
                    self._paused.append(flow)
            elif self.overflow is Overflow.ERROR or len(queue) >= 2 * self.buffer_size:
                # BLOCK with no source to pause (items pushed from elsewhere) gets some slack.
                raise SinkError(
                    f"{type(self).__name__}: more than {self.buffer_size} items waiting and no way "
                    "to slow the producer; choose overflow='drop_oldest' or 'drop_newest'"
                )
        queue.append(value)
        assert self._wakeup is not None
        self._wakeup.set()

    def _start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise SinkError(f"{type(self).__name__} needs a running event loop") from None
        self._loop = loop
        self._wakeup = asyncio.Event()
        self._worker = loop.create_task(self._work())

    async def _work(self) -> None:
        queue = self._queue
        assert self._wakeup is not None
        try:
            while True:
                while queue:
                    value = queue.popleft()
                    try:
                        await self.handle(value)
                        self.stats.delivered += 1
                    except asyncio.CancelledError:
                        raise
                    except JetflowError as exc:  # jetflow's own: this sink cannot go on
                        self.stats.count_error(type(exc).__name__)
                        self._fail(exc)
                        return
                    except Exception as exc:  # one failed item must not end the sink
                        self.stats.count_error(type(exc).__name__)
                        if self.on_handle_error is not None:
                            self.on_handle_error(value, exc)
                        else:
                            log.warning(
                                "%s could not deliver an item: %s", type(self).__name__, exc
                            )
                    if self._paused and len(queue) <= self._low_water:
                        self._resume_sources()
                if self._closing:
                    break
                self._wakeup.clear()
                await self._wakeup.wait()
        finally:
            self._resume_sources()
            try:
                await self.finish()
            finally:
                self._done.set()

    def _fail(self, error: JetflowError) -> None:
        """Stop for good (fenced, bad credentials, an unreachable broker at start, a full
        disk): what is queued is dropped and counted, producers are released, and ``error``
        says why."""
        self._failed = True
        self.error = error
        self.stats.dropped += len(self._queue)
        self._queue.clear()
        log.error("%s failed: %s", type(self).__name__, error)
        if self.on_failure is not None:
            self.on_failure(error)

    def _resume_sources(self) -> None:
        for flow in self._paused:
            flow.resume(self)
        self._paused.clear()

    def close(self) -> None:
        """Deliver what is queued, then finish; ``wait()`` returns when that is done."""
        if self._closing:
            return
        self._closing = True
        if self._worker is None:
            self._done.set()
            return
        assert self._wakeup is not None and self._loop is not None
        if self._loop.is_closed():
            self._done.set()
        elif _in_loop(self._loop):
            self._wakeup.set()
        else:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    @property
    def pending(self) -> int:
        """Items queued and not yet delivered."""
        return len(self._queue)


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
