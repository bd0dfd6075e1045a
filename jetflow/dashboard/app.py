"""A running dashboard: an event stream counted by :class:`DashboardStats`, an optional
server scraped by :class:`ServerMetricsPoller`, and the page served by :class:`DashboardServer`,
all on the current event loop.

The stream is either an Observable of events (:class:`Dashboard` itself) or one stream of a
:class:`~jetflow.pipeline.Pipeline` (:meth:`Dashboard.for_pipeline`), which then runs in the
background with the dashboard as one more sink.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from reactivex import Observable, abc

from jetflow.dashboard.server import DashboardServer
from jetflow.dashboard.server_metrics import ServerMetricsPoller
from jetflow.dashboard.stats import DashboardStats, StatsSink
from jetflow.errors import ConfigError
from jetflow.events import Event

if TYPE_CHECKING:
    from jetflow.pipeline import Pipeline, PipelineHandle


class Dashboard:
    """Count ``stream`` and serve the live page (and, given ``server_metrics``, a server's).

    Args:
        stream: decoded events (decode with ``op.decode(time="relay")`` for a meaningful lag),
            or None to watch only a server.
        stats: the engine to count into; default ``DashboardStats()``.
        server_metrics: a ``jetflow serve`` metrics URL (``http://127.0.0.1:6009/metrics``).
        host, port, interval: as for :class:`DashboardServer`.

    Example:
        >>> events = jf.sources.replay("demo.bin.zst").pipe(op.decode(time="relay"))
        >>> async with Dashboard(events, port=8080) as dashboard:
        ...     print(dashboard.url)
        ...     await dashboard.wait()
    """

    def __init__(
        self,
        stream: Observable[Event] | None,
        *,
        stats: DashboardStats | None = None,
        server_metrics: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        interval: float = 0.5,
    ) -> None:
        self.stream = stream
        self.stats = stats if stats is not None else DashboardStats()
        self.poller = ServerMetricsPoller(server_metrics) if server_metrics else None
        self.server = DashboardServer(self.snapshot, host=host, port=port, interval=interval)
        self.sink: StatsSink | None = None
        self._subscription: abc.DisposableBase | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self.pipeline: Pipeline | None = None
        self.handle: PipelineHandle | None = None

    @classmethod
    def for_pipeline(
        cls,
        pipeline: Pipeline,
        *,
        stream: str = "pipeline",
        stats: DashboardStats | None = None,
        **options: Any,
    ) -> Dashboard:
        """A dashboard of one stream of ``pipeline``, run in the background by :meth:`start`.

        The dashboard reads ``stream`` as one more sink of the pipeline: ``"pipeline"`` (the
        main stream, after the file's operators), ``"source"`` (what the source delivers,
        decoded with relay time), or a named stream. Items that are not events (window
        results, JSON bytes) are counted in ``other_items`` only.

        Args:
            pipeline: a pipeline that is not running (e.g. ``Pipeline.from_file(path)``).
            stream: which stream to count.
            stats, options: as for :class:`Dashboard`.

        Raises:
            ConfigError: ``stream`` names no stream of the pipeline.
        """
        from jetflow import operators as op
        from jetflow.pipeline import MAIN, SOURCE, Output

        names = [SOURCE, MAIN, *pipeline.streams]
        if stream not in names:
            raise ConfigError(f"--stream: {stream!r} is not one of {', '.join(names)}")
        dashboard = cls(None, stats=stats, **options)
        dashboard.sink = dashboard.stats.sink()
        operators = [op.decode(time="relay")] if stream == SOURCE else []
        pipeline.outputs.append(Output(dashboard.sink, stream, operators, "dashboard"))
        dashboard.pipeline = pipeline
        return dashboard

    def snapshot(self) -> dict[str, Any]:
        """The stats snapshot with ``has_source`` and ``server`` (None without a server)."""
        snapshot = self.stats.snapshot()
        snapshot["has_source"] = self.stream is not None or self.pipeline is not None
        snapshot["server"] = self.poller.snapshot() if self.poller is not None else None
        return snapshot

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> None:
        """Serve the page, then start counting the stream and scraping the server."""
        await self.server.start()
        if self.poller is not None:
            self._poll_task = asyncio.get_running_loop().create_task(self.poller.run())
        if self.stream is not None:
            self.sink = self.stats.sink()
            self._subscription = self.stream.subscribe(self.sink)
        if self.pipeline is not None:
            self.handle = self.pipeline.start()
            self.handle.task.add_done_callback(self._pipeline_done)

    def _pipeline_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            result = task.result()
            error = result.error
        if error is not None or self.stats.state not in ("finished", "failed"):
            self.stats.finish(error)

    async def stop(self) -> None:
        """Stop the stream, the scraping and the server."""
        self._stopped.set()
        if self._subscription is not None:
            self._subscription.dispose()
            self._subscription = None
        if self.handle is not None and not self.handle.done:
            with contextlib.suppress(Exception):
                await self.handle.stop()
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
            self._poll_task = None
        await self.server.stop()

    async def wait(self) -> None:
        """Return once :meth:`stop` was called (the page stays up after the stream ends)."""
        await self._stopped.wait()

    async def __aenter__(self) -> Dashboard:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
