"""``jetflow lint``: check pipeline files and report every problem with its location."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "lint",
        help="check pipeline files",
        description=(
            "Check pipeline files without running them: print every problem as "
            "FILE:LINE: KEY.PATH: MESSAGE. Exit status 1 if any file has a problem."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="pipeline files (YAML)")
    parser.add_argument(
        "--allow-python",
        action="store_true",
        help="also import the files' module:function references to check them",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jetflow.pipeline_files import lint_file

    failed = 0
    for file in args.files:
        problems = lint_file(file, allow_python=args.allow_python)
        for problem in problems:
            print(problem)
        if problems:
            failed += 1
        else:
            print(f"{file}: ok")
    if failed:
        print(
            f"jetflow lint: {failed} of {len(args.files)} file{'s' if len(args.files) != 1 else ''}"
            " have problems",
            file=sys.stderr,
        )
    return 1 if failed else 0
