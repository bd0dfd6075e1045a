"""Tests that sit next to a pipeline file: ``name_test.yaml`` for ``name.yaml``.

::

    pipeline: posts_per_minute_by_language.yaml   # optional: this file's name minus _test
    cases:
      - name: two english posts and one in japanese, in one minute
        events:                      # inline Jetstream events (mappings or JSON strings)
          - {did: did:plc:a, time_us: 1700000000000000, kind: commit,
             commit: {rev: 3l, operation: create, collection: app.bsky.feed.post, rkey: a1,
                      record: {text: hi, langs: [en]}}}
          - ...
        expect:
          - sink: 0                  # which sink (index, or on_error); default 0
            windows:                 # window results, each compared on the keys given
              - {start_us: 1699999980000000, value: {en: 2, ja: 1}}
      - name: the synthetic firehose
        synth: {frames: 2000, seed: 1}     # or capture: relative/to/this/file.bin.zst
        expect:
          - {sink: 0, count: 1}

Each case runs the pipeline with its source replaced by the case's input and every sink by a
collector (a Prometheus sink keeps counting, without a listener, and is checked with
``metrics:``). An expectation holds ``lines`` (the exact output, as JSON documents, in
order), ``windows`` (window results, only the keys given are compared), ``count`` (the
number of items), ``metrics`` (``{'name{label="v"}': value}``) or ``error`` (the run must
fail with a message containing this text). A failed case shows a diff.
"""

from __future__ import annotations

import difflib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from jetflow.errors import ConfigError, DecodeError, JetflowError
from jetflow.events import Event
from jetflow.operators.tojson import item_json
from jetflow.pipeline_files import (
    LineComposer,
    PipelineFileError,
    Plan,
    Problem,
    SinkPlan,
    format_where,
    plan_file,
)
from jetflow.registry import REGISTRY
from jetflow.sinks import Sink
from jetflow.sinks.prometheus import PrometheusSink
from jetflow.sources import memory, replay
from jetflow.testing.collect import CollectingSink

CASE_KEYS = ("name", "events", "capture", "synth", "expect", "timeout")
EXPECT_KEYS = ("sink", "lines", "windows", "count", "metrics", "error")
_MAX_DIFF_LINES = 60


@dataclass
class CaseResult:
    """One case: its name, whether it passed, and (if not) why, with a diff."""

    name: str
    passed: bool
    detail: str = ""
    seconds: float = 0.0


def paths_for(path: str | Path) -> tuple[Path, Path]:
    """(pipeline file, test file) for either of them."""
    target = Path(path)
    if target.stem.endswith("_test"):
        return target.with_name(target.stem.removesuffix("_test") + target.suffix), target
    return target, target.with_name(f"{target.stem}_test{target.suffix}")


def is_test_file(path: str | Path) -> bool:
    """True for a ``*_test.yaml`` (or ``.yml``) file."""
    target = Path(path)
    return target.stem.endswith("_test") and target.suffix in (".yaml", ".yml")


def check_test_file(test_path: str | Path) -> tuple[Path, list[Any], list[Problem]]:
    """Read and check a test file: (pipeline file, cases, problems)."""
    test_path = Path(test_path)
    try:
        text = test_path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"{test_path}: {exc.strerror or exc}") from None
    composer = LineComposer(str(test_path))
    data = composer.load(text)
    problems = list(composer.problems)
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        problems.append(Problem(str(test_path), 1, "", "a test file is a mapping with 'cases'"))
        return paths_for(test_path)[0], [], sorted(problems)
    for key in data:
        if key not in ("pipeline", "cases"):
            line = composer.lines.get((key,), 1)
            problems.append(Problem(str(test_path), line, key, "unknown key (pipeline, cases)"))
    pipeline_name = data.get("pipeline")
    if pipeline_name is None:
        pipeline_path = paths_for(test_path)[0]
    else:
        pipeline_path = test_path.parent / str(pipeline_name)
    cases = data["cases"]
    for index, case in enumerate(cases):
        problems += _check_case(case, ("cases", index), composer.lines, str(test_path))
    if not pipeline_path.is_file():
        line = composer.lines.get(("pipeline",), 1)
        problems.append(
            Problem(str(test_path), line, "", f"the pipeline file {pipeline_path} does not exist")
        )
    return pipeline_path, cases, sorted(problems)


def run_test_file(
    test_path: str | Path, *, allow_python: bool = False
) -> tuple[Path, list[CaseResult]]:
    """Run every case of a ``*_test.yaml`` file.

    Returns:
        The pipeline file tested, and one :class:`CaseResult` per case.

    Raises:
        PipelineFileError: the test file or the pipeline file has problems.
        ConfigError: a file cannot be read.
    """
    test_path = Path(test_path)
    pipeline_path, cases, problems = check_test_file(test_path)
    if problems:
        raise PipelineFileError(problems)
    plan, pipeline_problems = plan_file(pipeline_path)
    if pipeline_problems or plan is None:
        raise PipelineFileError(pipeline_problems)
    results = [
        _run_case(plan, case, index, test_path.parent, allow_python)
        for index, case in enumerate(cases)
    ]
    return pipeline_path, results


def _check_case(
    case: Any, where: tuple[Any, ...], lines: dict[Any, int], file: str
) -> list[Problem]:
    def problem(at: tuple[Any, ...], message: str) -> Problem:
        key = at
        while key and key not in lines:
            key = key[:-1]
        return Problem(file, lines.get(key, 1), format_where(at), message)

    if not isinstance(case, dict):
        return [problem(where, "a case is a mapping with name, an input and expect")]
    found = []
    for key in case:
        if key not in CASE_KEYS:
            found.append(problem((*where, key), f"unknown key ({', '.join(CASE_KEYS)})"))
    inputs = [key for key in ("events", "capture", "synth") if key in case]
    if len(inputs) != 1:
        found.append(problem(where, "give exactly one input: events, capture or synth"))
    expectations = case.get("expect")
    if isinstance(expectations, dict):
        expectations = [expectations]
    if not isinstance(expectations, list) or not expectations:
        found.append(problem(where, "missing 'expect' (a list of expectations)"))
        return found
    for index, expectation in enumerate(expectations):
        at = (*where, "expect", index)
        if not isinstance(expectation, dict):
            found.append(problem(at, "an expectation is a mapping"))
            continue
        for key in expectation:
            if key not in EXPECT_KEYS:
                found.append(problem((*at, key), f"unknown key ({', '.join(EXPECT_KEYS)})"))
    return found


def _source(case: dict[str, Any], directory: Path, scratch: Path) -> Any:
    if "events" in case:
        events = []
        for item in case["events"]:
            try:
                if isinstance(item, str):
                    events.append(Event.from_json(item))
                else:
                    events.append(Event.from_json(orjson.dumps(item)))
            except DecodeError as exc:
                raise ConfigError(f"events: {item!r:.80} is not a Jetstream event: {exc}") from None
        return memory(events)
    if "capture" in case:
        return replay(directory / str(case["capture"]))
    options = case["synth"] if isinstance(case["synth"], dict) else {}
    from jetflow.testing.synth import write_capture

    path = scratch / "synth.bin"
    write_capture(path, int(options.get("frames", 1000)), seed=int(options.get("seed", 0)))
    return replay(path)


def _collector(plan: SinkPlan) -> Sink[Any]:
    if plan.step.entry.name == "prometheus":
        args = dict(plan.step.args, listen=None)
        sink: Sink[Any] = REGISTRY.build("sink", "prometheus", args)
        return sink
    return CollectingSink()


def _run_case(
    plan: Plan, case: dict[str, Any], index: int, directory: Path, allow_python: bool
) -> CaseResult:
    name = str(case.get("name") or f"case {index + 1}")
    started = time.monotonic()
    collectors: dict[str, Sink[Any]] = {}

    def sink_for(sink_plan: SinkPlan) -> Sink[Any]:
        sink = _collector(sink_plan)
        collectors["on_error" if sink_plan.index < 0 else str(sink_plan.index)] = sink
        return sink

    error: BaseException | None = None
    with tempfile.TemporaryDirectory(prefix="jetflow-test-") as scratch:
        try:
            source = _source(case, directory, Path(scratch))
            pipeline = plan.build(
                allow_python=allow_python,
                source=source,
                sink_for=sink_for,
                checkpoint=False,
            )
            pipeline.run(timeout=float(case.get("timeout", 60)))
        except PipelineFileError:
            raise
        except JetflowError as exc:
            error = exc
    expectations = case["expect"] if isinstance(case["expect"], list) else [case["expect"]]
    failures = [
        message
        for expectation in expectations
        if (message := _check(expectation, collectors, error)) is not None
    ]
    if error is not None and not any("error" in e for e in expectations):
        failures.insert(0, f"the run failed: {error}")
    seconds = time.monotonic() - started
    return CaseResult(name, not failures, "\n".join(failures), seconds)


def _check(
    expectation: dict[str, Any], collectors: dict[str, Sink[Any]], error: BaseException | None
) -> str | None:
    if "error" in expectation:
        text = str(expectation["error"])
        if error is None:
            return f"expected the run to fail with {text!r}, but it did not"
        if text not in str(error):
            return f"expected an error containing {text!r}, got: {error}"
    which = str(expectation.get("sink", 0))
    sink = collectors.get(which)
    if sink is None:
        if set(expectation) <= {"error", "sink"}:
            return None
        return f"sink {which}: no such sink (sinks: {', '.join(collectors)})"
    label = "on_error" if which == "on_error" else f"sinks[{which}]"
    if "metrics" in expectation:
        if not isinstance(sink, PrometheusSink):
            return f"{label}: 'metrics' applies to a prometheus sink"
        actual = sink.samples()
        wanted_metrics = {str(k): float(v) for k, v in dict(expectation["metrics"]).items()}
        shown = {k: actual.get(k) for k in wanted_metrics}
        if shown != wanted_metrics:
            return _diff(label + " metrics", _json_lines(wanted_metrics), _json_lines(actual))
    items = sink.items if isinstance(sink, CollectingSink) else []
    documents = [_document(item) for item in items]
    if "count" in expectation and len(documents) != int(expectation["count"]):
        return f"{label}: expected {expectation['count']} items, got {len(documents)}"
    if "lines" in expectation:
        wanted = [_expected_document(line) for line in expectation["lines"]]
        if wanted != documents:
            return _diff(label, list(_pretty(wanted)), list(_pretty(documents)))
    if "windows" in expectation:
        wanted_windows = list(expectation["windows"])
        picked = [
            {key: document.get(key) for key in want} if isinstance(document, dict) else document
            for want, document in zip(wanted_windows, documents, strict=False)
        ]
        picked += documents[len(wanted_windows) :]
        if wanted_windows != picked:
            return _diff(label + " windows", list(_pretty(wanted_windows)), list(_pretty(picked)))
    return None


def _document(item: Any) -> Any:
    data = item_json(item, wire_only=False)
    if data is None:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data.decode("utf-8", "replace")


def _expected_document(line: Any) -> Any:
    if isinstance(line, str):
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            return line
    return line


def _pretty(documents: list[Any]) -> Iterator[str]:
    for document in documents:
        yield orjson.dumps(document, option=orjson.OPT_SORT_KEYS, default=str).decode()


def _json_lines(values: dict[str, float]) -> list[str]:
    return [f"{key} {value:g}" for key, value in sorted(values.items())]


def _diff(label: str, expected: list[str], actual: list[str]) -> str:
    lines = list(difflib.unified_diff(expected, actual, "expected", "actual", lineterm="", n=2))
    if len(lines) > _MAX_DIFF_LINES:
        lines = [*lines[:_MAX_DIFF_LINES], f"... ({len(lines) - _MAX_DIFF_LINES} more lines)"]
    return f"{label} differs:\n" + "\n".join(lines)
