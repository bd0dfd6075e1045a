"""The ``jetflow`` command line. Each command lives in its own module with ``register()``.

Exit codes: 0 success, 1 failure, 2 usage error (the message names the bad argument).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from jetflow.cli import (
    convert,
    dashboard,
    dictionary,
    ingest,
    lint,
    record,
    relay,
    run,
    serve,
    synth,
    tail,
    test,
)
from jetflow.errors import ConfigError, JetflowError

COMMANDS = (
    tail,
    convert,
    record,
    synth,
    relay,
    serve,
    ingest,
    dictionary,
    dashboard,
    run,
    lint,
    test,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jetflow",
        description="The AT Protocol firehose as a reactive stream, and a drop-in Jetstream.",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level for messages on stderr (default: WARNING)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.run(args)
    except ConfigError as exc:
        print(f"jetflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except JetflowError as exc:
        print(f"jetflow {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


def entry_point() -> None:
    sys.exit(main())
