"""``jetflow test``: run the tests next to pipeline files (``name_test.yaml``)."""

from __future__ import annotations

import argparse
from typing import Any

from jetflow.errors import ConfigError


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "test",
        help="run the tests of pipeline files",
        description=(
            "Run the cases of name_test.yaml next to each pipeline file name.yaml (or given "
            "directly): each feeds an input (inline events, a capture, or a synthetic "
            "firehose) through the pipeline and compares what its sinks received. Prints PASS "
            "or FAIL per case, with a diff; exit status 1 if any case fails."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="pipeline or test files")
    parser.add_argument(
        "--allow-python",
        action="store_true",
        help="allow the pipelines' module:function references",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jetflow.pipeline_files import PipelineFileError
    from jetflow.pipeline_tests import paths_for, run_test_file

    passed = failed = 0
    broken = False
    for file in args.files:
        _, test_path = paths_for(file)
        if not test_path.is_file():
            raise ConfigError(f"{file}: no test file {test_path}")
        try:
            tested, results = run_test_file(test_path, allow_python=args.allow_python)
        except PipelineFileError as exc:
            for problem in exc.problems:
                print(problem)
            broken = True
            continue
        print(f"{tested} ({test_path.name})")
        for result in results:
            status = "PASS" if result.passed else "FAIL"
            print(f"  {status}  {result.name} ({result.seconds:.2f} s)")
            if not result.passed:
                for line in result.detail.splitlines():
                    print(f"        {line}")
        passed += sum(result.passed for result in results)
        failed += sum(not result.passed for result in results)
    print(f"{passed} passed, {failed} failed")
    if broken:
        return 2
    return 1 if failed else 0
