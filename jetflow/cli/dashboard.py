"""``jetflow dashboard``: a live web page of a stream's rates, collections, operations and lag."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING, Any

import reactivex

from jetflow import operators as op
from jetflow import sources
from jetflow.cli._common import (
    PUBLIC_RELAY,
    add_filter_options,
    port_number,
    positive_int,
    require_one_source,
)
from jetflow.errors import ConfigError

if TYPE_CHECKING:
    from jetflow.dashboard import Dashboard

DEFAULT_PORT = 6010


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "dashboard",
        help="serve a live dashboard page of a stream (and of a jetflow server)",
        description=(
            "Serve a web page showing, live, events/s by kind and by collection, the top "
            "collections, the operation mix and the lag behind the relay; with "
            "--server-metrics also a jetflow serve's subscribers. The page updates at least "
            f"once a second. Default source: the public relay ({PUBLIC_RELAY}), or none when "
            "only --server-metrics is given."
        ),
    )
    source = parser.add_argument_group("source (one of)")
    source.add_argument("--relay", metavar="URL", help="a relay or PDS")
    source.add_argument("--jetstream", metavar="URL", help="a Jetstream server")
    source.add_argument("--replay", metavar="FILE", help="a capture or JSON-lines file")
    source.add_argument(
        "--pipeline",
        metavar="FILE",
        help="a pipeline file (see docs/pipelines.md): run it and count one of its streams",
    )
    parser.add_argument(
        "--stream",
        default="pipeline",
        metavar="NAME",
        help="with --pipeline: the stream to count: pipeline (the main one, default), "
        "source, or a named stream",
    )
    parser.add_argument(
        "--allow-python",
        action="store_true",
        help="with --pipeline: allow the file's module:function references",
    )
    parser.add_argument(
        "--rate", type=positive_float, metavar="N", help="replay at most N frames per second"
    )
    parser.add_argument(
        "--cursor", type=int, help="relay seq (relay) or time_us (jetstream) to start from"
    )
    add_filter_options(parser)
    parser.add_argument(
        "--server-metrics",
        metavar="URL",
        help="a jetflow serve metrics endpoint to show (e.g. http://127.0.0.1:6009/metrics)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)"
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--interval",
        type=positive_float,
        default=0.5,
        metavar="SECONDS",
        help="seconds between updates pushed to the page, at most 1 (default 0.5)",
    )
    parser.add_argument(
        "--top", type=positive_int, default=10, help="collections listed (default 10)"
    )
    parser.add_argument(
        "--rate-window",
        type=positive_int,
        default=5,
        metavar="SECONDS",
        help="seconds the rates are averaged over (default 5)",
    )
    parser.set_defaults(run=run)


def build_stream(args: argparse.Namespace) -> tuple[reactivex.Observable[Any] | None, str, str]:
    """The decoded, filtered events, the label of the source and the time basis of lag."""
    require_one_source(args, ("relay", "jetstream", "replay", "pipeline"))
    if args.rate is not None and not args.replay:
        raise ConfigError("--rate: only applies to --replay")
    basis = "relay"
    if args.jetstream:
        upstream: reactivex.Observable[Any] = sources.jetstream(
            args.jetstream, collections=args.collection, dids=args.did, cursor=args.cursor
        )
        label, basis = f"jetstream {args.jetstream}", "jetstream"
    elif args.replay:
        replay = sources.replay(args.replay, rate=args.rate)
        upstream = replay
        label = f"replay {args.replay}"
        if replay.format == "jsonl":
            basis = "jetstream"  # recorded events keep the time_us their server gave them
    elif args.relay or not args.server_metrics:
        relay = args.relay or PUBLIC_RELAY
        upstream = sources.firehose(relay, cursor=args.cursor)
        label = f"relay {relay}"
    else:
        return None, "", "relay"
    stream = upstream.pipe(
        op.decode(time="relay"),
        op.filter(
            collections=args.collection,
            dids=args.did,
            kinds=args.kind,
            operations=args.operation,
            jetstream_semantics=True,
        ),
    )
    return stream, label, basis


def build_dashboard(args: argparse.Namespace) -> Dashboard:
    from jetflow.dashboard import Dashboard, DashboardStats

    options: dict[str, Any] = {
        "server_metrics": args.server_metrics,
        "host": args.host,
        "port": args.port,
        "interval": args.interval,
    }
    if args.pipeline:
        require_one_source(args, ("relay", "jetstream", "replay", "pipeline"))
        for name in ("rate", "cursor", "collection", "did", "kind", "operation"):
            if getattr(args, name) is not None:
                raise ConfigError(
                    f"--{name}: does not apply to --pipeline (the file says what to read)"
                )
        from jetflow.pipeline import Pipeline

        pipeline = Pipeline.from_file(args.pipeline, allow_python=args.allow_python)
        stats = DashboardStats(
            top=args.top,
            rate_window=args.rate_window,
            # The file's decode may stamp wall time; from "source" jetflow decodes with relay time.
            time_basis="relay" if args.stream == "source" else "event",
            source=f"pipeline {pipeline.name} ({args.stream})",
        )
        return Dashboard.for_pipeline(pipeline, stream=args.stream, stats=stats, **options)
    stream, label, basis = build_stream(args)
    stats = DashboardStats(
        top=args.top,
        rate_window=args.rate_window,
        time_basis=basis,  # type: ignore[arg-type]
        source=label,
    )
    return Dashboard(stream, stats=stats, **options)


def run(args: argparse.Namespace) -> int:
    dashboard = build_dashboard(args)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, lambda: loop.create_task(dashboard.stop()))
        await dashboard.start()
        try:
            print(f"dashboard {dashboard.url}", flush=True)
            await dashboard.wait()
        finally:
            await dashboard.stop()

    asyncio.run(serve())
    return 0
