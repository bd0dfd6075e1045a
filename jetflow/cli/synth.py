"""``jetflow synth``: write a synthetic capture (realistic frames, no third-party data)."""

from __future__ import annotations

import argparse
from typing import Any

from jetflow.cli._common import Progress, positive_int


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "synth",
        help="write a synthetic capture",
        description=(
            "Write a capture of synthetic but realistic firehose frames (real CIDs, CAR files "
            "with MST nodes, the network's mix of events). Deterministic for a given seed."
        ),
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", required=True, help="capture file (.zst compresses)"
    )
    parser.add_argument("--frames", type=positive_int, required=True, help="number of frames")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jetflow.testing.synth import write_capture

    progress = Progress("frames", total=args.frames)
    try:
        write_capture(args.output, args.frames, seed=args.seed, progress=progress.update)
    finally:
        progress.finish()
    return 0
