"""``jetflow record``: write a relay's raw frames to a capture file."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from reactivex import operators as rx_ops

from jetflow import sinks, sources
from jetflow.cli._common import PUBLIC_RELAY, Progress, drain, positive_int


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "record",
        help="record raw relay frames to a capture file",
        description="Record raw relay frames to a capture file (a .zst name compresses it).",
    )
    parser.add_argument(
        "--relay", metavar="URL", default=PUBLIC_RELAY, help=f"default {PUBLIC_RELAY}"
    )
    parser.add_argument("-o", "--output", metavar="FILE", required=True, help="the capture file")
    parser.add_argument("--cursor", type=int, help="start after this relay seq")
    parser.add_argument("--limit", type=positive_int, help="stop after this many frames")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    progress = Progress("frames", total=args.limit)
    stream = sources.firehose(args.relay, cursor=args.cursor).pipe(
        rx_ops.do_action(lambda _: progress.update())
    )
    try:
        asyncio.run(drain(stream, sinks.capture(args.output), args.limit))
    except KeyboardInterrupt:
        pass  # the capture is flushed and closed by drain()
    finally:
        progress.finish()
    return 0
