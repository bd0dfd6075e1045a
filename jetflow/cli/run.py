"""``jetflow run``: run a pipeline file until its source ends, a limit, or Ctrl-C."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from jetflow.cli._common import positive_int
from jetflow.durations import parse_duration
from jetflow.errors import ConfigError


def seconds(text: str) -> float:
    try:
        return parse_duration(text, "--timeout")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "run",
        help="run a pipeline file",
        description=(
            "Run a pipeline file (see docs/pipelines.md). The file is checked first: any "
            "problem is reported with its line, and nothing starts. Ctrl-C (or SIGTERM) stops "
            "cleanly: open windows are emitted, sinks flushed, the checkpoint written."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="the pipeline file (YAML)")
    parser.add_argument(
        "--max-events",
        type=positive_int,
        metavar="N",
        help="stop after N items reached the sinks",
    )
    parser.add_argument(
        "--timeout", type=seconds, metavar="S", help="stop after S (seconds, or 90s, 5m, 1h)"
    )
    parser.add_argument(
        "--allow-python",
        action="store_true",
        help="allow the file's module:function references (imports and runs that code)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jetflow.pipeline_files import PipelineFileError, load_pipeline

    try:
        pipeline = load_pipeline(args.file, allow_python=args.allow_python)
    except PipelineFileError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(
            f"jetflow run: {args.file}: {count} problem{'s' if count != 1 else ''};"
            " nothing was started",
            file=sys.stderr,
        )
        return 2
    result = pipeline.run(max_events=args.max_events, timeout=args.timeout)
    stats = result.stats
    written = ", ".join(f"{name} {count:,}" for name, count in stats.written.items())
    errors = f", {stats.errors:,} user-function errors" if stats.errors else ""
    print(
        f"jetflow run: {pipeline.name}: {result.reason} after {result.elapsed:.1f} s:"
        f" read {stats.read:,}, wrote {written}{errors}",
        file=sys.stderr,
    )
    return 0
