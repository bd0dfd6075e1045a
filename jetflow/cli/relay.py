"""``jetflow relay``: serve a capture as a local relay (for demos, notebooks and tests)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

from jetflow.cli._common import port_number
from jetflow.testing.relay import FakeRelay


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "relay",
        help="serve a capture as a local subscribeRepos relay",
        description=(
            "Serve a capture on 127.0.0.1 as a subscribeRepos relay with seq cursors. Clients "
            "without a cursor get the whole capture, then live silence."
        ),
    )
    parser.add_argument("capture", metavar="CAPTURE", help="the capture file")
    parser.add_argument("--port", type=port_number, default=0, help="port (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--rate", type=float, help="frames per second (default: as fast as read)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    relay = FakeRelay.from_capture(
        args.capture, host=args.host, port=args.port, frames_per_second=args.rate
    )

    async def serve() -> None:
        async with relay:
            print(f"serving {len(relay.frames)} frames on {relay.url}", flush=True)
            print(f"relay {relay.url}", file=sys.stderr, flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0
