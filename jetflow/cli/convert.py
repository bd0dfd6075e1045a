"""``jetflow convert``: a capture → Jetstream v1 JSON lines, one per event, in relay order."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from reactivex import operators as rx_ops

from jetflow import operators as op
from jetflow import sinks, sources
from jetflow.cli._common import Progress, drain
from jetflow.codec.firehose import DecodeStats

log = logging.getLogger("jetflow.cli")


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "convert",
        help="convert a capture to Jetstream JSON lines",
        description=(
            "Convert a capture (raw relay frames, optionally .zst) to Jetstream v1 JSON lines, "
            "in relay order. The output is deterministic apart from time_us."
        ),
    )
    parser.add_argument("capture", metavar="CAPTURE", help="the capture file")
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="output file (.zst compresses); default stdout"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    stats = DecodeStats()
    progress = Progress("frames")
    stream = sources.replay(args.capture, format="capture").pipe(
        op.decode(stats=stats),
        op.filter(kinds=["commit", "identity", "account"]),
        rx_ops.do_action(lambda _: progress.update(stats.frames)),
    )
    sink = sinks.jsonl(args.output) if args.output else sinks.stdout()
    try:
        asyncio.run(drain(stream, sink))
    finally:
        progress.finish()
        if stats.skipped:
            log.warning("skipped: %s", stats.counts)
    return 0
