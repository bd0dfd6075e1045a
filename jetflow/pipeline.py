"""``Pipeline``: a source, operators and sinks, run as one unit — in a script, inside an event
loop, in the background of a notebook, or for a bounded number of events.

>>> import jetflow as jf
>>> from jetflow import operators as op
>>> pipeline = jf.Pipeline(
...     jf.sources.replay("synthetic.bin.zst"),
...     [op.decode(time="relay"), op.filter(collections=["app.bsky.feed.post"])],
...     [jf.sinks.jsonl("posts.jsonl.zst")],
... )
>>> pipeline.run()                                  # a script: blocks; Ctrl-C stops cleanly
>>> result = await pipeline.run_async(max_events=100)   # inside a loop (or a notebook cell)
>>> handle = pipeline.start()                       # in the background of the running loop
>>> handle.stats; await handle.stop()

Running
    :meth:`Pipeline.run` blocks until the source ends, :meth:`Pipeline.stop` is called, or
    SIGINT/SIGTERM arrive (a second signal aborts without flushing). Called where an event
    loop already runs (Jupyter), it runs the pipeline on a fresh loop in a worker thread;
    there ``await pipeline.run_async()`` and :meth:`Pipeline.start` are the natural forms.
    ``max_events`` stops after that many items have come out of the streams that feed sinks;
    ``timeout`` after that many seconds. Every run returns a :class:`RunResult`: the items
    each :class:`~jetflow.testing.CollectingSink` collected (one is added when no sink is
    given), the stats, and why it stopped.

Stopping cleanly
    A stop ends the source and then *completes* the stream: open event-time windows are
    emitted (partial, as at the end of a replay), sinks flush and close, and the checkpoint
    is written. Nothing is cancelled half-way through an item.

Branches
    ``streams`` names further streams, each reading ``"source"``, ``"pipeline"`` (the source
    through ``operators``) or another stream, through its own operators; each sink reads one
    stream (:class:`Output`). A stream read by several readers is computed once.

Checkpoints (at-least-once)
    With ``checkpoint="cursor.json"`` the pipeline saves the source's cursor — a firehose
    frame's ``seq``, a Jetstream or NATS event's ``time_us`` — every ``checkpoint_interval``
    seconds, but only after every sink has flushed what came before that cursor (files are
    flushed, asynchronous sinks drained), and once more after a clean stop. On start it resumes
    from it: a firehose or NATS source resumes after that cursor, a Jetstream source rewinds a
    little and drops what it already delivered, other sources (replays) skip forward past it.
    So after a crash events since the last checkpoint are processed again (at-least-once), and
    none is lost. ``checkpoint`` may also be any :class:`~jetflow.sources.Checkpoint`, such
    as :class:`~jetflow.broker.checkpoint.KvCheckpoint` (a NATS KV key): then a worker
    restarted on another machine resumes where the last one stopped. A durable NATS consumer
    needs no checkpoint: its position is in the broker, and the pipeline acknowledges each
    event only at these same points, after the sinks flushed it.
    Two limits: an event-time window still open at a crash is lost with the events in it
    (they were counted but not yet written; a clean stop emits it); and a remote endpoint
    without acknowledgements (the websocket push sink) counts an item as flushed once sent.

Errors in user functions
    ``on_error`` picks the policy for an exception raised by a function of yours (predicate,
    key, ``map``/``tap`` function, callback sink): ``"stop"`` (default: the run fails with
    :class:`~jetflow.userfn.UserFunctionError` naming the event's did/collection/rkey),
    ``"skip"`` (skip, count in ``stats.skipped``, log the first ones), or a sink that receives
    a :class:`~jetflow.userfn.FailedEvent` per failure. Functions wrapped by
    :func:`jetflow.userfn.guard` (``op.map``, ``op.tap``, every function of a pipeline file)
    skip exactly their event; any other exception skips the rest of the source item it came
    from (for a firehose frame with several ops, its later ops). Errors of jetflow itself
    (a sink that cannot write, a source that fails) always stop the run.

Cost
    Items go from the source through the operators to the sinks exactly as with
    ``source.pipe(...).subscribe(sink)``: the per-item loop is the source's own push loop.
    A checkpoint adds one assignment per source item; ``max_events`` one counting call per
    output item; the error policies add nothing until something fails.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from jetflow.codec.frame import Frame
from jetflow.errors import ConfigError, JetflowError, MalformedFrameError, UserFunctionError
from jetflow.events import Event
from jetflow.flow import FlowControl, current_flow
from jetflow.sinks._base import AsyncSink, Sink
from jetflow.sinks.callback import AsyncCallbackSink
from jetflow.sources._base import Source
from jetflow.sources._checkpoint import Checkpoint, CheckpointFile
from jetflow.sources.firehose import FirehoseSource
from jetflow.sources.jetstream import JetstreamSource
from jetflow.sources.memory import MemorySource
from jetflow.testing.collect import CollectingSink
from jetflow.userfn import (
    FailedEvent,
    current_handler,
    failed_from_exception,
    function_name,
)

if TYPE_CHECKING:
    from jetflow.operators._base import Operator

log = logging.getLogger("jetflow.pipeline")

SOURCE = "source"
MAIN = "pipeline"
RESERVED = (SOURCE, MAIN)
Policy = Literal["stop", "skip"]
Reason = Literal["completed", "max_events", "timeout", "stopped", "interrupted", "failed"]
_LOGGED_ERRORS = 10


@dataclass(frozen=True)
class Stream:
    """A named branch: ``upstream`` (``"source"``, ``"pipeline"`` or another stream's name)
    through ``operators``."""

    upstream: str
    operators: Sequence[Operator[Any, Any]] = ()


@dataclass(frozen=True)
class Output:
    """A sink, the stream it reads (default: the main ``"pipeline"`` stream), operators
    applied for this sink only (e.g. ``op.to_json()``), and a name for :class:`RunResult`."""

    sink: Sink[Any]
    stream: str = MAIN
    operators: Sequence[Operator[Any, Any]] = ()
    name: str | None = None


SinkSpec = Sink[Any] | tuple[str, Sink[Any]] | Output
OnError = Policy | Sink[Any] | Output


class PipelineStats:
    """Live counters of a pipeline (read them while it runs: ``handle.stats``).

    Attributes:
        state: ``idle``, ``running``, ``stopping``, or the last run's end reason.
        errors: user-function errors seen (whatever the policy).
        errors_by_type: the same, by exception class name.
        skipped: failures skipped under ``"skip"``.
        routed: failures sent to the error sink.
        checkpoints: checkpoints written in this run.
        cursor: the last cursor written to the checkpoint (or loaded from it).
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self.state = "idle"
        self.errors = 0
        self.errors_by_type: dict[str, int] = {}
        self.skipped = 0
        self.routed = 0
        self.checkpoints = 0
        self.cursor: int | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._read_at_start = 0

    def _reset(self) -> None:
        self.state = "running"
        self.errors = self.skipped = self.routed = self.checkpoints = 0
        self.errors_by_type = {}
        self.started_at = time.monotonic()
        self.finished_at = None
        source = self._pipeline.source
        self._read_at_start = source.stats.delivered if isinstance(source, Source) else 0

    @property
    def read(self) -> int:
        """Items the source delivered in this run."""
        source = self._pipeline.source
        if isinstance(source, Source):
            return source.stats.delivered - self._read_at_start
        return 0

    @property
    def written(self) -> dict[str, int]:
        """Items each sink received, by sink name."""
        return {name: sink.stats.received for name, sink in self._pipeline.sink_items()}

    @property
    def elapsed(self) -> float:
        """Seconds since the run started (until it finished)."""
        if self.started_at is None:
            return 0.0
        end = self.finished_at if self.finished_at is not None else time.monotonic()
        return end - self.started_at

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "read": self.read,
            "written": self.written,
            "errors": self.errors,
            "errors_by_type": dict(self.errors_by_type),
            "skipped": self.skipped,
            "routed": self.routed,
            "checkpoints": self.checkpoints,
            "cursor": self.cursor,
            "elapsed": round(self.elapsed, 3),
        }

    def __repr__(self) -> str:
        return f"PipelineStats({self.as_dict()})"


@dataclass
class RunResult:
    """What a run produced.

    Attributes:
        collected: for each :class:`~jetflow.testing.CollectingSink`, by sink name, the items
            it collected.
        reason: why the run ended: ``completed`` (the source ended), ``max_events``,
            ``timeout``, ``stopped`` (:meth:`Pipeline.stop`), ``interrupted`` (a signal) or
            ``failed``.
        stats: the pipeline's :class:`PipelineStats` (final once the run is over).
        cursor: the cursor saved by the last checkpoint (None without one).
        error: what made the run fail (``reason == "failed"``), else None.
    """

    collected: dict[str, list[Any]]
    reason: Reason
    stats: PipelineStats
    cursor: int | None = None
    error: BaseException | None = None
    elapsed: float = 0.0

    @property
    def items(self) -> list[Any]:
        """The items of the first collecting sink (the one added when no sink was given)."""
        return next(iter(self.collected.values()), [])

    def __repr__(self) -> str:
        sizes = {name: len(items) for name, items in self.collected.items()}
        return (
            f"RunResult(reason={self.reason!r}, collected={sizes}, read={self.stats.read},"
            f" errors={self.stats.errors}, elapsed={self.elapsed:.3f})"
        )


class PipelineHandle:
    """A pipeline running in the background of the current event loop (see
    :meth:`Pipeline.start`). ``await handle`` waits for its :class:`RunResult`."""

    def __init__(self, pipeline: Pipeline, task: asyncio.Task[RunResult]) -> None:
        self.pipeline = pipeline
        self.task = task

    @property
    def stats(self) -> PipelineStats:
        """Live counters."""
        return self.pipeline.stats

    @property
    def done(self) -> bool:
        """True once the run is over (completed, stopped or failed)."""
        return self.task.done()

    def stop(self) -> asyncio.Task[RunResult]:
        """Ask the pipeline to stop cleanly; await the returned task for the result."""
        self.pipeline.stop()
        return self.task

    def result(self) -> RunResult:
        """The result of a finished run (raises what the run raised)."""
        return self.task.result()

    def __await__(self) -> Any:
        return self.task.__await__()

    def __repr__(self) -> str:
        return f"<PipelineHandle {'done' if self.done else 'running'} {self.stats.as_dict()}>"


class _Stop(Exception):
    """Raised through the push loop once the run has failed."""


class Pipeline:
    """A source, operators and sinks; see the module docstring.

    Args:
        source: a jetflow source (any :class:`~jetflow.sources.Source`), any async iterable,
            any iterable (e.g. a list of events), or a reactivex Observable (then without
            checkpoints or ``"skip"`` of the rest of a source item).
        operators: the main stream's operators, applied in order (``"pipeline"``).
        sinks: sinks reading the main stream, ``(stream, sink)`` pairs, or :class:`Output`
            objects. Without any, a :class:`~jetflow.testing.CollectingSink` is added.
        streams: named branches (:class:`Stream`), for graphs.
        checkpoint: a file (or any :class:`~jetflow.sources.Checkpoint`) to save the source
            cursor in and resume from (at-least-once).
        checkpoint_interval: seconds between checkpoints.
        on_error: ``"stop"``, ``"skip"``, or a sink (or :class:`Output`) for
            :class:`~jetflow.userfn.FailedEvent` records.
        close_timeout: seconds to wait for each sink to finish after the stream ended.
        name: a name for log messages.

    Raises:
        ConfigError: unknown stream names, a cycle, a stream nobody reads, a bad policy, or a
            checkpoint both here and on a firehose source.
    """

    def __init__(
        self,
        source: Any,
        operators: Sequence[Operator[Any, Any]] = (),
        sinks: Sequence[SinkSpec] = (),
        *,
        streams: dict[str, Stream] | None = None,
        checkpoint: str | Path | Checkpoint | None = None,
        checkpoint_interval: float = 1.0,
        on_error: OnError = "stop",
        close_timeout: float = 10.0,
        name: str | None = None,
    ) -> None:
        self.source = _as_source(source)
        self.operators = list(operators)
        self.streams = dict(streams or {})
        self.outputs = [_as_output(spec, index) for index, spec in enumerate(sinks)]
        self._auto_collect = not self.outputs
        if self._auto_collect:
            self.outputs = [Output(CollectingSink(), MAIN, (), "collected")]
        self.name = name or "pipeline"
        self.close_timeout = close_timeout
        self.policy: Policy | None
        self.error_output: Output | None
        if on_error in ("stop", "skip"):
            self.policy, self.error_output = on_error, None
        elif isinstance(on_error, Output):
            self.policy, self.error_output = None, on_error
        elif isinstance(on_error, abc.ObserverBase):
            self.policy, self.error_output = None, Output(on_error, MAIN, (), "on_error")
        else:
            raise ConfigError(f"on_error: expected 'stop', 'skip' or a sink, got {on_error!r}")
        if checkpoint_interval <= 0:
            raise ConfigError(f"checkpoint_interval: must be positive, got {checkpoint_interval}")
        self.checkpoint: Checkpoint | None
        if checkpoint is None or isinstance(checkpoint, Checkpoint):
            self.checkpoint = checkpoint
        elif isinstance(checkpoint, str | Path):
            self.checkpoint = CheckpointFile(checkpoint, checkpoint_interval)
        else:
            raise ConfigError(f"checkpoint: expected a path or a Checkpoint, got {checkpoint!r}")

        self.checkpoint_interval = checkpoint_interval
        if self.checkpoint is not None:
            if isinstance(self.source, FirehoseSource) and self.source.checkpoint is not None:
                raise ConfigError(
                    "checkpoint: give it to the Pipeline, not to firehose(): the source's own "
                    "checkpoint is written on delivery, before the sinks have flushed"
                )
            if isinstance(self.source, Observable) and not isinstance(self.source, Source):
                raise ConfigError(
                    "checkpoint: needs a jetflow source (or an async iterable), not an Observable"
                )
        _check_graph(self.streams, [output.stream for output in self.outputs], self.operators)
        self.stats = PipelineStats(self)
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._flow: FlowControl | None = None
        self._stop_requested = False
        self._hard = False
        self._signals = 0
        self._reason: Reason = "completed"
        self._failure: BaseException | None = None
        self._last_item: Any = None
        # A source that acknowledges upstream (a durable NATS consumer) hears "done up to here"
        # only at checkpoints, after the sinks flushed (see the module docstring).
        self._acknowledging = False
        self._acknowledged: Any = None
        self._failed_in_sink = False
        self._open_iterator: AsyncIterator[Any] | None = None
        self._error_emit: Callable[[Any], None] | None = None
        self._starting = False
        self._stop_early = False

    # -- public API ---------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path, *, allow_python: bool = False) -> Pipeline:
        """A pipeline from a YAML pipeline file (see :mod:`jetflow.pipeline_files`).

        Raises:
            jetflow.pipeline_files.PipelineFileError: every problem, with its location.
        """
        from jetflow.pipeline_files import load_pipeline

        return load_pipeline(path, allow_python=allow_python)

    def sink_items(self) -> list[tuple[str, Sink[Any]]]:
        """``(name, sink)`` for every sink, the error sink last."""
        items = [(_label(output, i), output.sink) for i, output in enumerate(self.outputs)]
        if self.error_output is not None:
            items.append((self.error_output.name or "on_error", self.error_output.sink))
        return items

    def run(self, *, max_events: int | None = None, timeout: float | None = None) -> RunResult:
        """Run to the end and return the :class:`RunResult` (see the module docstring).

        In a script this blocks, with SIGINT/SIGTERM stopping cleanly. Where an event loop is
        already running in this thread (Jupyter), the pipeline runs on its own loop in a worker
        thread while this call blocks; Ctrl-C (interrupting the kernel) stops it cleanly.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._run_with_signals(max_events, timeout))
        return self._run_in_thread(max_events, timeout)

    async def run_async(
        self, *, max_events: int | None = None, timeout: float | None = None
    ) -> RunResult:
        """Run on the current event loop until the end; return the :class:`RunResult`.

        Raises:
            UserFunctionError: a user function raised under ``on_error="stop"``.
            JetflowError: the source or a sink failed.
        """
        if self._running:
            raise JetflowError(f"{self.name} is already running")
        if max_events is not None and max_events < 1:
            raise ConfigError(f"max_events: must be at least 1, got {max_events}")
        if timeout is not None and timeout < 0:
            raise ConfigError(f"timeout: must not be negative, got {timeout}")
        self._running = True
        self._starting = False
        try:
            return await self._run(max_events, timeout)
        finally:
            self._running = False
            self._stop_early = False

    def start(
        self, *, max_events: int | None = None, timeout: float | None = None
    ) -> PipelineHandle:
        """Run in the background of the running event loop (a notebook's, for instance).

        Returns:
            A :class:`PipelineHandle` with live ``stats``, ``done``, ``stop()`` and
            ``await handle`` for the :class:`RunResult`.

        Raises:
            JetflowError: no event loop is running in this thread (use :meth:`run`).
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise JetflowError(
                "Pipeline.start() needs a running event loop (in a script use run())"
            ) from None
        if self._running or self._starting:
            raise JetflowError(f"{self.name} is already running")
        self._starting = True
        self._stop_early = False
        task = loop.create_task(
            self.run_async(max_events=max_events, timeout=timeout), name=f"jetflow-{self.name}"
        )
        return PipelineHandle(self, task)

    def stop(self) -> None:
        """Ask a running pipeline to stop cleanly (from any thread); a no-op when idle."""
        if self._starting and not self._running:
            self._stop_early = True  # start() was called; the run has not begun yet
            return
        loop = self._loop
        if loop is None or loop.is_closed() or not self._running:
            return
        if _in_loop(loop):
            self._request_stop("stopped")
        else:
            loop.call_soon_threadsafe(self._request_stop, "stopped")

    # -- running --------------------------------------------------------------------------------

    async def _run_with_signals(self, max_events: int | None, timeout: float | None) -> RunResult:
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self._on_signal)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError):  # pragma: no cover - not POSIX
                    pass
        try:
            return await self.run_async(max_events=max_events, timeout=timeout)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def _on_signal(self) -> None:
        self._signals += 1
        if self._signals == 1:
            log.warning("%s: stopping (signal again to abort without flushing)", self.name)
            self._request_stop("interrupted")
        else:
            self._hard = True
            if self._pump_task is not None:
                self._pump_task.cancel()

    def _run_in_thread(self, max_events: int | None, timeout: float | None) -> RunResult:
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = asyncio.run(self.run_async(max_events=max_events, timeout=timeout))
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=target, name=f"jetflow-{self.name}", daemon=True)
        thread.start()
        try:
            while thread.is_alive():
                thread.join(0.05)
        except KeyboardInterrupt:
            self._request_stop_threadsafe("interrupted")
            thread.join()
        if "error" in box:
            raise box["error"]
        result: RunResult = box["result"]
        return result

    def _request_stop_threadsafe(self, reason: Reason) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._request_stop, reason)

    def _request_stop(self, reason: Reason) -> None:
        if self._stop_requested:
            return
        self._stop_requested = True
        self._reason = reason
        self.stats.state = "stopping"
        if self._flow is not None:
            self._flow.pause(self)  # the push loop looks at the flow after every item
        task = self._pump_task
        if task is not None and not task.done() and asyncio.current_task() is not task:
            task.cancel()  # wakes a source that waits for input; the loop ends cleanly

    def _fail(self, error: BaseException) -> None:
        if self._failure is None:
            self._failure = error
        self._request_stop("failed")

    async def _run(self, max_events: int | None, timeout: float | None) -> RunResult:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop_requested = self._hard = False
        if self._stop_early:
            self._stop_requested, self._reason = True, "stopped"
        self._signals = 0
        if not self._stop_requested:
            self._reason = "completed"
        self._failure = None
        self._last_item = None
        self._pump_task = None
        self._flow = None
        if self._auto_collect:  # a fresh collector per run: a notebook cell may run it again
            self.outputs = [Output(CollectingSink(), MAIN, (), "collected")]
        closed = [name for name, sink in self.sink_items() if sink.done]
        if closed:
            raise JetflowError(
                f"{self.name}: sink {closed[0]} is closed (a pipeline's sinks serve one run;"
                " build the pipeline again with new sinks)"
            )
        self.stats._reset()
        cursor = None
        if self.checkpoint is not None:
            cursor = await asyncio.to_thread(self.checkpoint.load)  # a file, or a KV round trip
        self.stats.cursor = cursor
        acknowledge_later = getattr(self.source, "acknowledge_later", None)
        self._acknowledging = bool(callable(acknowledge_later) and acknowledge_later())
        self._acknowledged = None
        self._failed_in_sink = False
        head, error_head = self._wire(max_events)
        timer: asyncio.TimerHandle | None = None
        checkpointer: asyncio.Task[None] | None = None
        try:
            await self._start_sinks()
            if isinstance(self.source, Observable) and not isinstance(self.source, Source):
                pump = self._pump_observable(head)
            else:
                pump = self._pump(self._items(cursor), head.emit)
            self._pump_task = loop.create_task(pump, name=f"jetflow-{self.name}-pump")
            if self.checkpoint is not None or self._acknowledging:
                checkpointer = loop.create_task(self._checkpoint_forever())
            if timeout is not None:
                timer = loop.call_later(timeout, self._request_stop, "timeout")
            try:
                await self._pump_task
            except asyncio.CancelledError:
                if not self._hard:
                    raise
        except BaseException:
            self._hard = True
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if checkpointer is not None:
                checkpointer.cancel()
                await asyncio.gather(checkpointer, return_exceptions=True)
            await self._finish(head, error_head)
        if self._hard:
            raise KeyboardInterrupt
        failure = self._failure
        result = RunResult(
            {
                name: list(sink.items)
                for name, sink in self.sink_items()
                if isinstance(sink, CollectingSink)
            },
            "failed" if failure is not None else self._reason,
            self.stats,
            self.stats.cursor,
            failure,
            self.stats.elapsed,
        )
        if failure is not None:
            failure.result = result
            raise failure
        return result

    async def _finish(self, head: _Head, error_head: _Head | None) -> None:
        """Complete (or fail) the stream, wait for the sinks, write the last checkpoint."""
        failure = self._failure
        try:
            if failure is None and not self._hard:
                head.on_completed()
            else:
                head.on_error(failure if isinstance(failure, Exception) else _Stop("aborted"))
        except Exception as exc:  # a user function failing while windows flush
            if self._failure is None:
                self._failure = exc
                log.error("%s: failed while completing: %s", self.name, exc)
        iterator, self._open_iterator = self._open_iterator, None
        try:
            if error_head is not None:
                error_head.on_completed()
            timeout = 1.0 if self._hard else self.close_timeout
            sinks_done = True
            for name, sink in self.sink_items():
                sink.close()
                if not await sink.wait_async(timeout):
                    log.warning("%s: sink %s not finished after %.0f s", self.name, name, timeout)
                    sinks_done = False
                elif sink.error is not None:
                    sinks_done = False  # it lost what it had not delivered
            # Only what every sink took care of may be checkpointed or acknowledged.
            clean = (
                sinks_done
                and not self._hard
                and not self._failed_in_sink
                and (self._failure is None or isinstance(self._failure, UserFunctionError))
            )
            if clean:
                await self._commit_progress(self._last_item)
        finally:
            if iterator is not None:
                await _aclose(iterator)
            close = getattr(self.checkpoint, "close", None)
            if callable(close):  # e.g. a KvCheckpoint's connection; it reconnects if used again
                await asyncio.to_thread(close)
        self.stats.finished_at = time.monotonic()
        self.stats.state = "failed" if self._failure is not None else self._reason

    # -- wiring -------------------------------------------------------------------------------

    def _wire(self, max_events: int | None) -> tuple[_Head, _Head | None]:
        """Build every stream once and subscribe every sink; nothing flows yet."""
        head = _Head()
        sinks_of: dict[str, list[Output]] = {}
        for output in self.outputs:
            sinks_of.setdefault(output.stream, []).append(output)
        readers: dict[str, int] = dict.fromkeys(sinks_of, 1)
        for stream in self.streams.values():
            readers[stream.upstream] = readers.get(stream.upstream, 0) + 1
        built: dict[str, Observable[Any]] = {SOURCE: head}

        def output_of(name: str) -> Observable[Any]:
            """A stream's output, computed once and shared when several read it."""
            if name not in built:
                operators: Sequence[Operator[Any, Any]]
                if name == MAIN:
                    upstream, operators = SOURCE, self.operators
                else:
                    upstream, operators = self.streams[name].upstream, self.streams[name].operators
                observable = output_of(upstream)
                if operators:
                    observable = observable.pipe(*operators)
                if readers.get(name, 0) > 1:
                    observable = _Shared(observable)
                built[name] = observable
            return built[name]

        counter = _Counter(max_events, self) if max_events is not None else None
        for name, outputs in sinks_of.items():
            observable = output_of(name)
            if counter is not None:
                observable = counter.limit(observable)
            if len(outputs) > 1:
                observable = _Shared(observable)
            for output in outputs:
                self._guard_sink(output.sink)
                target = observable.pipe(*output.operators) if output.operators else observable
                target.subscribe(output.sink)
        error_head: _Head | None = None
        self._error_emit = None
        if self.error_output is not None:
            error_head = _Head()
            output = self.error_output
            target = error_head.pipe(*output.operators) if output.operators else error_head
            target.subscribe(output.sink)
            self._error_emit = error_head.on_next
        return head, error_head

    def _guard_sink(self, sink: Sink[Any]) -> None:
        """Fail the run when an async sink fails for good, and put an async callback's
        exceptions under the policy (by default an AsyncSink only counts them)."""
        if isinstance(sink, AsyncSink) and sink.on_failure is None:
            sink.on_failure = self._fail
        if not isinstance(sink, AsyncCallbackSink) or sink.on_handle_error is not None:
            return
        name = function_name(sink.fn)

        def apply_policy(value: Any, exc: Exception) -> None:
            if isinstance(exc, JetflowError):
                self._fail(exc)
                return
            failed = FailedEvent(value if isinstance(value, Event) else None, value, exc, name)
            try:
                self._handle_error(failed)
            except UserFunctionError as error:
                # Items pushed after this one may be flushed already: a checkpoint now would
                # also cover the failed one, so none is written (see _finish).
                self._failed_in_sink = True
                self._fail(error)

        sink.on_handle_error = apply_policy

    async def _start_sinks(self) -> None:
        """Await ``start()`` of sinks that serve something (listeners must be up first)."""
        for _, sink in self.sink_items():
            start = getattr(sink, "start", None)
            if start is not None and inspect.iscoroutinefunction(start):
                await start()

    # -- the push loop -------------------------------------------------------------------------

    def _items(self, cursor: int | None) -> AsyncIterator[Any]:
        source = self.source
        if cursor is not None:
            if isinstance(source, FirehoseSource):
                if source.cursor is None:
                    source.resume_after(cursor)
                return source.__aiter__()
            if isinstance(source, JetstreamSource):
                if source.last_time_us is None:
                    source.last_time_us = cursor  # resumes a little earlier, drops repeats
                return source.__aiter__()
            resume_after = getattr(source, "resume_after", None)
            if callable(resume_after):  # e.g. a NATS source: seeks exactly past the cursor
                resume_after(cursor)
                return source.__aiter__()  # type: ignore[no-any-return]
            return _skip_to(source.__aiter__(), cursor)
        return source.__aiter__()  # type: ignore[no-any-return]

    async def _pump(self, iterator: AsyncIterator[Any], emit: Callable[[Any], None]) -> None:
        """Push every item; the same loop as a source's own, plus the error policy."""
        flow = FlowControl()
        self._flow = flow
        current_flow.set(flow)
        current_handler.set(self._handle_error)
        failed = self._item_failed
        try:
            if self._stop_requested:  # stopped before it began
                return
            if self.checkpoint is not None or self._acknowledging:
                async for item in iterator:
                    try:
                        emit(item)
                    except Exception as exc:
                        failed(item, exc)
                    self._last_item = item
                    if flow.paused:
                        if self._stop_requested:
                            break
                        await flow.wait()
            else:
                async for item in iterator:
                    try:
                        emit(item)
                    except Exception as exc:
                        failed(item, exc)
                    if flow.paused:
                        if self._stop_requested:
                            break
                        await flow.wait()
        except asyncio.CancelledError:
            if self._hard or not self._stop_requested:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        except _Stop:
            pass
        except Exception as exc:  # the source failed
            self._fail(exc)
        finally:
            if self._acknowledging and not self._hard:
                self._open_iterator = iterator  # acknowledged and closed once the sinks flushed
            else:
                await _aclose(iterator)

    async def _pump_observable(self, head: _Head) -> None:
        """Drive a reactivex Observable source: subscribe, wait, dispose on stop."""
        self._flow = None
        current_handler.set(self._handle_error)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        emit = head.emit
        failed = self._item_failed

        def on_next(item: Any) -> None:
            try:
                emit(item)
            except _Stop:
                raise
            except Exception as exc:
                failed(item, exc)

        def on_error(error: Exception) -> None:
            if not isinstance(error, _Stop):
                self._fail(error)
            if not done.done():
                done.set_result(None)

        def on_completed() -> None:
            if not done.done():
                done.set_result(None)

        subscription = self.source.subscribe(on_next, on_error, on_completed)
        try:
            await done
        except asyncio.CancelledError:
            if self._hard or not self._stop_requested:
                subscription.dispose()
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        subscription.dispose()

    def _item_failed(self, item: Any, error: Exception) -> None:
        """An exception escaped pushing ``item``: apply the policy, or stop the run."""
        if isinstance(error, _Stop):
            raise error
        if isinstance(error, JetflowError):
            self._fail(error)
            raise _Stop from error
        failed = failed_from_exception(item, error)
        try:
            self._handle_error(failed)
        except UserFunctionError as stop:
            self._fail(stop)
            raise _Stop from error

    def _handle_error(self, failed: FailedEvent) -> None:
        """The policy: raise :class:`UserFunctionError` to stop, or count (and route)."""
        stats = self.stats
        stats.errors += 1
        kind = type(failed.error).__name__
        stats.errors_by_type[kind] = stats.errors_by_type.get(kind, 0) + 1
        if self.policy == "stop":
            raise UserFunctionError(failed) from failed.error
        if stats.errors <= _LOGGED_ERRORS:
            log.warning(
                "%s: %s; %s%s",
                self.name,
                failed.message,
                "skipped" if self.policy == "skip" else "sent to the error sink",
                " (further errors are counted, not logged)"
                if stats.errors == _LOGGED_ERRORS
                else "",
            )
        if self.policy == "skip" or self._error_emit is None:
            stats.skipped += 1
            return
        stats.routed += 1
        self._error_emit(failed)

    # -- checkpoints --------------------------------------------------------------------------

    async def _checkpoint_forever(self) -> None:
        while True:
            await asyncio.sleep(self.checkpoint_interval)
            await self._checkpoint_once()

    async def _checkpoint_once(self) -> None:
        """Save the cursor of the last item pushed (and acknowledge it upstream), once every
        sink has flushed it and what sinks pass on (a broker) has confirmed it."""
        last_item = self._last_item
        if not self._progress_to_commit(last_item) or self._failure is not None:
            return
        targets = [(sink, sink.stats.received) for _, sink in self.sink_items()]
        for sink, _ in targets:
            flush = getattr(sink, "flush", None)
            if callable(flush) and not inspect.iscoroutinefunction(flush):
                flush()
        try:
            for sink, received in targets:
                if isinstance(sink, AsyncSink):
                    while _processed(sink) < received and not sink.done:
                        await asyncio.sleep(0.01)
                    await sink.settle()
        except (JetflowError, TimeoutError) as exc:
            log.warning("%s: no checkpoint this time, a sink is not settled: %s", self.name, exc)
            return
        if self._failure is None and not any(sink.error for sink, _ in targets):
            await self._commit_progress(last_item)

    def _progress_to_commit(self, item: Any) -> bool:
        cursor = _cursor_of(item)
        saving = self.checkpoint is not None and cursor is not None and cursor != self.stats.cursor
        return saving or (self._acknowledging and item is not self._acknowledged)

    async def _commit_progress(self, item: Any) -> None:
        """Write ``item``'s cursor to the checkpoint and acknowledge it to the source. A failure
        is logged and retried at the next checkpoint: until then, a restart repeats work."""
        if item is None or not self._progress_to_commit(item):
            return
        cursor = _cursor_of(item)
        try:
            if self.checkpoint is not None and cursor is not None and cursor != self.stats.cursor:
                await asyncio.to_thread(self.checkpoint.save, cursor)  # a file fsync, a KV put
                self.stats.cursor = cursor
                self.stats.checkpoints += 1
            if (
                self._acknowledging
                and item is not self._acknowledged
                and await self.source.acknowledge_through(item)
            ):
                self._acknowledged = item
        except (JetflowError, OSError) as exc:
            log.warning("%s: checkpoint failed (retried at the next one): %s", self.name, exc)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name} {self.stats.state}>"


# -- helpers -----------------------------------------------------------------------------------


class _Head(Observable[Any]):
    """Where the push loop hands items: forwards to its subscribers (fan-out if several)."""

    def __init__(self) -> None:
        self._observers: list[abc.ObserverBase[Any]] = []
        super().__init__(self._subscribe_head)
        self.emit: Callable[[Any], None] = _drop

    def _subscribe_head(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        self._observers.append(observer)
        self.emit = _fan_out(self._observers)

        def dispose() -> None:
            if observer in self._observers:
                self._observers.remove(observer)
                self.emit = _fan_out(self._observers)

        return Disposable(dispose)

    def on_next(self, item: Any) -> None:
        self.emit(item)

    def on_completed(self) -> None:
        for observer in list(self._observers):
            observer.on_completed()

    def on_error(self, error: Exception) -> None:
        for observer in list(self._observers):
            observer.on_error(error)


class _Shared(Observable[Any]):
    """One subscription upstream, however many subscribers (all subscribe before items flow)."""

    def __init__(self, upstream: Observable[Any]) -> None:
        self._upstream = upstream
        self._head = _Head()
        self._connected = False
        super().__init__(self._subscribe_shared)

    def _subscribe_shared(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        disposable = self._head.subscribe(observer)
        if not self._connected:
            self._connected = True
            head = self._head
            self._upstream.subscribe(head.on_next, head.on_error, head.on_completed)
        return disposable


def _drop(item: Any) -> None:
    return None


def _fan_out(observers: list[abc.ObserverBase[Any]]) -> Callable[[Any], None]:
    if not observers:
        return _drop
    if len(observers) == 1:
        return observers[0].on_next
    calls = [observer.on_next for observer in observers]

    def emit(item: Any) -> None:
        for call in calls:
            call(item)

    return emit


class _Counter:
    """``max_events``: counts output items across streams, stops the run at the limit."""

    def __init__(self, maximum: int, pipeline: Pipeline) -> None:
        self.maximum = maximum
        self.count = 0
        self.pipeline = pipeline

    def limit(self, upstream: Observable[Any]) -> Observable[Any]:
        counter = self

        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            on_next = observer.on_next

            def forward(item: Any) -> None:
                if counter.count >= counter.maximum:
                    return
                counter.count += 1
                on_next(item)
                if counter.count >= counter.maximum:
                    counter.pipeline._request_stop("max_events")

            return upstream.subscribe(
                forward, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)


def _cursor_of(item: Any) -> int | None:
    """A source item's cursor: a frame's ``seq``, an event's ``time_us``."""
    if item is None:
        return None
    if isinstance(item, Frame):
        try:
            return item.seq
        except MalformedFrameError:
            return None
    if isinstance(item, Event):
        return item.time_us
    return None


async def _skip_to(iterator: AsyncIterator[Any], cursor: int) -> AsyncIterator[Any]:
    """Skip items up to and including ``cursor`` (for sources that cannot resume)."""
    try:
        async for item in iterator:
            position = _cursor_of(item)
            if position is not None and position <= cursor:
                continue
            yield item
            break
        async for item in iterator:
            yield item
    finally:
        await _aclose(iterator)


async def _aclose(iterator: Any) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


def _processed(sink: AsyncSink[Any]) -> int:
    stats = sink.stats
    return stats.delivered + stats.dropped + sum(stats.errors.values())


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _as_source(source: Any) -> Any:
    if isinstance(source, Source | Observable) or hasattr(source, "__aiter__"):
        return source
    if isinstance(source, Iterable) and not isinstance(source, str | bytes):
        return MemorySource(source)
    raise ConfigError(
        f"source: expected a jetflow source, an async iterable or an iterable, got {source!r}"
    )


def _as_output(spec: SinkSpec, index: int) -> Output:
    if isinstance(spec, Output):
        return spec
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        return Output(spec[1], spec[0])
    if isinstance(spec, abc.ObserverBase):
        return Output(spec)
    raise ConfigError(f"sinks[{index}]: expected a sink, (stream, sink) or Output, got {spec!r}")


def _label(output: Output, index: int) -> str:
    return output.name or f"sinks[{index}]"


def _check_graph(
    streams: dict[str, Stream], sink_streams: list[str], operators: Sequence[Any]
) -> None:
    """Unknown names, cycles, and streams nobody reads raise ConfigError."""
    for name, stream in streams.items():
        if name in RESERVED:
            raise ConfigError(f"streams: {name!r} is reserved (the source and the main pipeline)")
        if stream.upstream not in streams and stream.upstream not in RESERVED:
            raise ConfigError(f"streams.{name}: reads unknown stream {stream.upstream!r}")
    for cycle in find_cycles({name: stream.upstream for name, stream in streams.items()}):
        raise ConfigError(f"streams: cycle {' -> '.join(cycle)}")
    for name in sink_streams:
        if name not in streams and name not in RESERVED:
            raise ConfigError(f"sinks: unknown stream {name!r}")
    read = set(sink_streams) | {stream.upstream for stream in streams.values()}
    for name in streams:
        if name not in read:
            raise ConfigError(f"streams.{name}: read by no sink or stream")
    if operators and MAIN not in read:
        raise ConfigError("pipeline: its operators are read by no sink or stream")


def find_cycles(upstream_of: dict[str, str]) -> list[list[str]]:
    """Every cycle in a graph where each node reads one upstream, each listed once, starting
    at its first node in ``upstream_of`` order: ``[["a", "b", "a"]]``."""
    cycles: list[list[str]] = []
    seen: set[str] = set()
    for start in upstream_of:
        path: list[str] = []
        node = start
        while node in upstream_of and node not in seen and node not in path:
            path.append(node)
            node = upstream_of[node]
        if node in path:
            cycle = path[path.index(node) :]
            cycles.append([*cycle, cycle[0]])
        seen.update(path)
    return cycles
