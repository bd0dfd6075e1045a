"""``jetflow tail``: print Jetstream JSON lines from a relay, a Jetstream server or a capture."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import reactivex

from jetflow import operators as op
from jetflow import sinks, sources
from jetflow.cli._common import (
    PUBLIC_RELAY,
    add_filter_options,
    drain,
    positive_int,
    require_one_source,
)


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "tail",
        help="print events as Jetstream JSON lines",
        description="Print events as Jetstream JSON lines. Default source: the public relay.",
    )
    source = parser.add_argument_group("source (one of)")
    source.add_argument("--relay", metavar="URL", help=f"a relay or PDS (default {PUBLIC_RELAY})")
    source.add_argument("--jetstream", metavar="URL", help="a Jetstream server")
    source.add_argument("--replay", metavar="FILE", help="a capture or JSON-lines file")
    parser.add_argument(
        "--cursor", type=int, help="relay seq (relay) or time_us (jetstream) to start from"
    )
    add_filter_options(parser)
    parser.add_argument("--limit", type=positive_int, help="stop after this many events")
    parser.set_defaults(run=run)


def build_stream(args: argparse.Namespace) -> reactivex.Observable[Any]:
    require_one_source(args, ("relay", "jetstream", "replay"))
    if args.jetstream:
        upstream: reactivex.Observable[Any] = sources.jetstream(
            args.jetstream, collections=args.collection, dids=args.did, cursor=args.cursor
        )
    elif args.replay:
        upstream = sources.replay(args.replay)
    else:
        upstream = sources.firehose(args.relay or PUBLIC_RELAY, cursor=args.cursor)
    return upstream.pipe(
        op.decode(),
        op.filter(
            collections=args.collection,
            dids=args.did,
            kinds=args.kind or ["commit", "identity", "account"],
            operations=args.operation,
            jetstream_semantics=True,
        ),
    )


def run(args: argparse.Namespace) -> int:
    stream = build_stream(args)
    asyncio.run(drain(stream, sinks.stdout(line_buffered=args.limit is None), args.limit))
    return 0
