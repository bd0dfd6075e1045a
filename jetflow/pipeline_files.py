"""Pipeline files: a pipeline written in YAML, checked whole before anything runs.

::

    # posts per minute by language
    source:
      replay: {path: synthetic.bin.zst}
    pipeline:
      - decode: {time: relay}
      - filter: {collections: [app.bsky.feed.post], operations: [create]}
      - count_by: {key: record.langs.0, window: 1m}
    sinks:
      - stdout

Top-level keys: ``source`` (one source), ``pipeline`` (operators, in order), ``streams``
(named branches: ``{name: {from: source | pipeline | <stream>, pipeline: [...]}}``), ``sinks``
(each a sink, optionally with ``stream: <name>``; default the ``pipeline`` stream),
``on_error`` (``stop``, ``skip`` or a sink), ``checkpoint`` (a path, ``{path: ...,
interval: 5s}``, or a NATS KV key: ``{nats: nats://host:4222, key: my-worker}``),
``allow_python`` (``true`` to name functions as ``module:function``), ``name`` and
``description``. A step is written ``name`` or ``name: {argument: value}``; the
names and arguments are those of the Python API (:mod:`jetflow.registry`). Relative paths in
arguments are relative to the current directory.

Every problem is reported at once, each with its line and key path::

    pipelines/bad.yaml:7: pipeline[2].count_by.window: '5x' is not a duration (like 250ms, ...)

Checked before anything starts: YAML syntax and duplicate keys, unknown keys, wrong types,
unknown source/operator/sink names (with the closest name), missing and unknown arguments,
field paths, durations and windows, what each step takes and gives (``count_by`` needs events:
``decode`` first), streams (unknown ``from``, cycles, streams nobody reads), and
``module:function`` references. Operators and side-effect-free sinks are built as a last
check; sources and file sinks are built when the pipeline is loaded to run.

Python functions are opt-in twice: the file says ``allow_python: true``, and whoever runs it
passes ``--allow-python`` (``allow_python=True`` in Python). The file's directory is put on
``sys.path`` first, so a module next to the file is found.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from jetflow import operators as op
from jetflow.errors import ConfigError
from jetflow.pipeline import MAIN, RESERVED, SOURCE, Output, Pipeline, Stream, find_cycles
from jetflow.registry import (
    ANY,
    EVENTS,
    FRAMES,
    RAW,
    REGISTRY,
    SAME,
    WINDOWS,
    Entry,
    FunctionRef,
    Role,
    check_duration,
    placeholder,
    type_message,
)
from jetflow.sinks import Sink
from jetflow.sources import Checkpoint

Where = tuple[str | int, ...]

TOP_LEVEL = (
    "name",
    "description",
    "source",
    "pipeline",
    "streams",
    "sinks",
    "on_error",
    "checkpoint",
    "allow_python",
)


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in a file: ``file:line: where: message``."""

    file: str
    line: int
    where: str
    message: str

    def __str__(self) -> str:
        if self.where:
            return f"{self.file}:{self.line}: {self.where}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class PipelineFileError(ConfigError):
    """A pipeline file has problems; ``problems`` lists them all, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def format_where(where: Where) -> str:
    """``("pipeline", 2, "count_by", "window")`` → ``pipeline[2].count_by.window``."""
    out = ""
    for part in where:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# -- YAML with line numbers ----------------------------------------------------------------------


class LineComposer:
    """Turns PyYAML nodes into plain values, remembering the line of every key path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Where, int] = {(): 1}
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def load(self, text: str) -> Any:
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            problem = exc.problem or exc.context or "not valid YAML"
            self.problems.append(Problem(self.file, line, "", f"YAML syntax: {problem}"))
            return None
        except yaml.YAMLError as exc:
            self.problems.append(Problem(self.file, 1, "", f"YAML: {exc}"))
            return None
        if node is None:
            return None
        return self._value(node, ())

    def _value(self, node: yaml.Node, where: Where) -> Any:
        self.lines.setdefault(where, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node)
                line = key_node.start_mark.line + 1
                if not isinstance(key, str | int | float | bool) and key is not None:
                    self._problem(line, where, f"keys must be plain values, got {key!r}")
                    continue
                if key in first:
                    self._problem(
                        line, where, f"duplicate key {key!r} (first at line {first[key]})"
                    )
                    continue
                first[key] = line
                child = (*where, key if isinstance(key, str) else str(key))
                self.lines[child] = line
                out[key] = self._value(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                child = (*where, index)
                self.lines[child] = item.start_mark.line + 1
                items.append(self._value(item, child))
            return items
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self._constructor.construct_object(node, deep=True)
        return f"<{type(node).__name__}>"

    def _problem(self, line: int, where: Where, message: str) -> None:
        self.problems.append(Problem(self.file, line, format_where(where), message))


# -- checking --------------------------------------------------------------------------------------


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = None
    description: str | None = None
    source: Any
    pipeline: list[Any] | None = None
    streams: dict[str, Any] | None = None
    sinks: list[Any]
    on_error: Any = "stop"
    checkpoint: Any = None
    allow_python: bool = False


@dataclass
class Step:
    """A checked source, operator or sink of a file."""

    entry: Entry
    args: dict[str, Any]
    where: Where  # of the step's name key (or bare name)

    def functions(self) -> Iterator[tuple[FunctionRef, Where]]:
        base = (*self.where, self.entry.name) if self.where else (self.entry.name,)
        for name, value in self.args.items():
            if isinstance(value, FunctionRef):
                yield value, (*base, name)


@dataclass
class SinkPlan:
    """A sink of a file, the stream it reads and whether it gets ``to_json()`` first."""

    step: Step
    stream: str
    to_json: bool
    index: int


@dataclass(frozen=True)
class KvCheckpointPlan:
    """``checkpoint: {nats: URL, key: K, bucket: B}``: a cursor kept in a NATS KV bucket."""

    url: str
    key: str
    bucket: str | None


@dataclass
class Plan:
    """A checked pipeline file, ready to be built (possibly with a different source or sinks,
    as ``jetflow test`` does)."""

    path: Path
    source: Step | None  # None only while a file with a bad source is being checked
    operators: list[Step]
    streams: dict[str, tuple[str, list[Step]]]
    sinks: list[SinkPlan]
    on_error: str | SinkPlan
    checkpoint: str | KvCheckpointPlan | None
    checkpoint_interval: float
    allow_python: bool
    name: str
    lines: dict[Where, int] = field(default_factory=dict)

    def steps(self) -> Iterator[Step]:
        if self.source is not None:
            yield self.source
        yield from self.operators
        for _, operators in self.streams.values():
            yield from operators
        for sink in self.sinks:
            yield sink.step
        if isinstance(self.on_error, SinkPlan):
            yield self.on_error.step

    def functions(self) -> list[tuple[FunctionRef, Where]]:
        return [item for step in self.steps() for item in step.functions()]

    def line(self, where: Where) -> int:
        return _line(self.lines, where)

    def problem(self, where: Where, message: str) -> Problem:
        return Problem(str(self.path), self.line(where), format_where(where), message)

    def build(
        self,
        *,
        allow_python: bool = False,
        source: Any = None,
        sink_for: Callable[[SinkPlan], Sink[Any] | None] | None = None,
        checkpoint: bool = True,
    ) -> Pipeline:
        """The :class:`~jetflow.pipeline.Pipeline` this plan describes.

        Args:
            allow_python: import ``module:function`` references (else they are refused).
            source: a source to use instead of the file's (``jetflow test``).
            sink_for: a sink to use instead of a file's sink (return None to keep it).
            checkpoint: honour the file's checkpoint.

        Raises:
            PipelineFileError: functions not allowed or not importable, or a source, operator
                or sink that refused its arguments (with its location).
        """
        problems: list[Problem] = []
        resolve = self._resolver(allow_python, problems)
        if problems:
            raise PipelineFileError(problems)

        def make(step: Step) -> Any:
            try:
                return step.entry.build(step.args, resolve)
            except ConfigError as exc:
                problems.append(self.problem((*step.where, step.entry.name), str(exc)))
                return None

        if source is not None:
            built_source = source
        else:
            assert self.source is not None
            built_source = make(self.source)
        operators = [make(step) for step in self.operators]
        streams = {
            name: Stream(upstream, [make(step) for step in steps])
            for name, (upstream, steps) in self.streams.items()
        }
        outputs = []
        for plan in self.sinks:
            sink = sink_for(plan) if sink_for is not None else None
            if sink is None:
                sink = make(plan.step)
            ops = [op.to_json()] if plan.to_json else []
            outputs.append(Output(sink, plan.stream, ops, f"sinks[{plan.index}]"))
        on_error: Any = self.on_error
        if isinstance(self.on_error, SinkPlan):
            error_sink = sink_for(self.on_error) if sink_for is not None else None
            if error_sink is None:
                error_sink = make(self.on_error.step)
            on_error = Output(
                error_sink, MAIN, [op.to_json()] if self.on_error.to_json else [], "on_error"
            )
        if problems:
            raise PipelineFileError(problems)
        try:
            return Pipeline(
                built_source,
                operators,
                outputs,
                streams=streams,
                checkpoint=self._checkpoint() if checkpoint else None,
                checkpoint_interval=self.checkpoint_interval,
                on_error=on_error,
                name=self.name,
            )
        except ConfigError as exc:
            raise PipelineFileError([Problem(str(self.path), 1, "", str(exc))]) from None

    def _checkpoint(self) -> str | Checkpoint | None:
        if not isinstance(self.checkpoint, KvCheckpointPlan):
            return self.checkpoint
        from jetflow.broker.checkpoint import DEFAULT_BUCKET, KvCheckpoint

        spec = self.checkpoint
        return KvCheckpoint(
            spec.url,
            spec.key,
            bucket=spec.bucket or DEFAULT_BUCKET,
            interval=self.checkpoint_interval,
        )

    def _resolver(
        self, allow_python: bool, problems: list[Problem]
    ) -> Callable[[FunctionRef], Callable[..., Any]]:
        functions = self.functions()
        if functions and not allow_python:
            for ref, where in functions:
                problems.append(
                    self.problem(
                        where,
                        f"{ref.ref} is Python code: allow it with --allow-python"
                        " (allow_python=True in Python)",
                    )
                )
        resolved: dict[str, Callable[..., Any]] = {}
        if allow_python:
            for ref, where in functions:
                try:
                    resolved[ref.ref] = import_function(ref, self.path.parent)
                except ConfigError as exc:
                    problems.append(self.problem(where, str(exc)))

        def resolve(ref: FunctionRef) -> Callable[..., Any]:
            return resolved.get(ref.ref) or placeholder(ref)

        return resolve


def import_function(ref: FunctionRef, directory: Path) -> Callable[..., Any]:
    """Import ``module:function`` (with ``directory`` on ``sys.path``); ConfigError if not."""
    folder = str(directory.resolve())
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        try:
            target: Any = importlib.import_module(ref.module)
        except Exception as exc:
            raise ConfigError(f"cannot import {ref.module!r}: {exc}") from None
        for part in ref.attribute.split("."):
            try:
                target = getattr(target, part)
            except AttributeError:
                raise ConfigError(f"{ref.module!r} has no {ref.attribute!r}") from None
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)
    if not callable(target):
        raise ConfigError(f"{ref.ref} is not callable")
    return target  # type: ignore[no-any-return]


class _Checker:
    """Checks the plain data of a file, collecting every problem."""

    def __init__(self, file: str, lines: dict[Where, int]) -> None:
        self.file = file
        self.lines = lines
        self.problems: list[Problem] = []
        self.source_kind = ANY
        self.source_name = "source"

    def add(self, where: Where, message: str) -> None:
        self.problems.append(
            Problem(self.file, _line(self.lines, where), format_where(where), message)
        )

    def plan(self, data: Any, path: Path) -> Plan | None:
        if not isinstance(data, dict):
            self.add((), "a pipeline file is a mapping with source, pipeline and sinks")
            return None
        try:
            _FileModel.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                self._top_level(error, data)
        source = self.step(data.get("source"), ("source",), "source") if "source" in data else None
        operators = self.steps(data.get("pipeline"), ("pipeline",), "operator")
        streams: dict[str, tuple[str, list[Step]]] = {}
        raw_streams = data.get("streams")
        if isinstance(raw_streams, dict):
            for name, spec in raw_streams.items():
                stream = self.stream(name, spec)
                if stream is not None:
                    streams[name] = stream
        sinks = []
        raw_sinks = data.get("sinks")
        if isinstance(raw_sinks, list):
            for index, item in enumerate(raw_sinks):
                sink = self.sink(item, ("sinks", index), index)
                if sink is not None:
                    sinks.append(sink)
            if not raw_sinks:
                self.add(("sinks",), "expected at least one sink")
        on_error = self.on_error(data.get("on_error", "stop"))
        checkpoint, interval = self.checkpoint(data.get("checkpoint"))
        allow_python = data.get("allow_python") is True
        plan = Plan(
            path,
            source,
            operators,
            streams,
            sinks,
            on_error,
            checkpoint,
            interval,
            allow_python,
            str(data.get("name") or path.stem),
            self.lines,
        )
        self.graph(plan, raw_streams if isinstance(raw_streams, dict) else {}, data)
        self.kinds(plan)
        if not allow_python:
            for ref, where in plan.functions():
                self.add(
                    where,
                    f"{ref.ref} is Python code: the file must say 'allow_python: true'"
                    " (and be run with --allow-python)",
                )
        return plan if source is not None else None

    def _top_level(self, error: Any, data: dict[str, Any]) -> None:
        loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(loc[0])
            close = difflib.get_close_matches(key, TOP_LEVEL, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f" (keys: {', '.join(TOP_LEVEL)})"
            self.add(loc[:1], f"unknown key {key!r}{hint}")
        elif kind == "missing":
            what = {"source": "one source", "sinks": "a list of sinks"}.get(str(loc[0]), "")
            self.add((), f"missing {loc[0]!r} ({what})" if what else f"missing {loc[0]!r}")
        else:
            self.add(loc, type_message(error))

    def entry_of(
        self, value: Any, where: Where, role: Role, extra: tuple[str, ...] = ()
    ) -> tuple[Entry, dict[str, Any], dict[str, Any]] | None:
        """(entry, arguments, extra keys) of ``name`` / ``{name: {args}}``, or None."""
        example = {"source": "replay", "operator": "decode", "sink": "stdout"}[role]
        if isinstance(value, str):
            name, args, extras = value, None, {}
        elif isinstance(value, dict):
            extras = {key: value[key] for key in extra if key in value}
            names = [key for key in value if key not in extra]
            known = [key for key in names if isinstance(key, str) and REGISTRY.get(role, key)]
            if len(known) == 1:
                for other in names:
                    if other != known[0]:
                        hint = f" (expected the {role} and {', '.join(extra)})" if extra else ""
                        self.add((*where, other), f"unknown key {other!r}{hint}")
                name = known[0]
            elif len(known) > 1:
                listed = " and ".join(repr(k) for k in known)
                if role == "source":
                    self.add(where, f"only one source, got {listed}")
                else:
                    self.add(where, f"one {role} per list item, got {listed}")
                return None
            elif names:
                name = names[0]
            else:
                self.add(where, f"expected a {role} name, e.g. {example!r}")
                return None
            args = value[name]
            if isinstance(name, str):
                where = (*where, name)
        else:
            self.add(
                where,
                f"expected a {role} name or {{name: {{arguments}}}}, got {value!r}",
            )
            return None
        if not isinstance(name, str):
            self.add(where, f"expected a {role} name, got {name!r}")
            return None
        entry = REGISTRY.get(role, name)
        if entry is None:
            self.add(where, self.unknown(role, name))
            return None
        if role == "source":  # what it emits, even if its arguments turn out wrong
            given = args if isinstance(args, dict) else {}
            self.source_kind = entry.emits_for({"format": given.get("format", "auto")})
            self.source_name = name
        if args is None:
            args = {}
        if not isinstance(args, dict):
            self.add(where, f"arguments of {name!r} must be a mapping (name: value), got {args!r}")
            return None
        return entry, args, extras

    def unknown(self, role: Role, name: str) -> str:
        other = REGISTRY.role_of(name)
        if other is not None and other != role:
            place = {"source": "under 'source:'", "operator": "in a pipeline", "sink": "in sinks"}
            return f"{name!r} is a {other}, not {_a(role)} (it belongs {place[other]})"
        hint = REGISTRY.suggest(role, name)
        if hint is not None:
            return f"unknown {role} {name!r}; did you mean {hint!r}?"
        return f"unknown {role} {name!r} (known: {', '.join(REGISTRY.names(role))})"

    def step(
        self,
        value: Any,
        where: Where,
        role: Role,
        found: tuple[Entry, dict[str, Any], dict[str, Any]] | None = None,
    ) -> Step | None:
        if found is None:
            found = self.entry_of(value, where, role)
        if found is None:
            return None
        entry, args, _ = found
        base = (*where, entry.name)
        converted, problems = entry.validate(args)
        for problem in problems:
            self.add((*base, *problem.where), problem.message)
        if problems:
            return None
        step = Step(entry, converted, where)
        if entry.pure:
            try:
                entry.build(converted, placeholder)
            except ConfigError as exc:
                self.add(base, str(exc))
                return None
        return step

    def steps(self, value: Any, where: Where, role: Role) -> list[Step]:
        if not isinstance(value, list):
            return []
        found = [self.step(item, (*where, index), role) for index, item in enumerate(value)]
        return [step for step in found if step is not None]

    def stream(self, name: Any, spec: Any) -> tuple[str, list[Step]] | None:
        where: Where = ("streams", str(name))
        if not isinstance(name, str):
            self.add(where, f"a stream name must be a string, got {name!r}")
            return None
        if name in RESERVED:
            self.add(where, f"{name!r} is reserved (the source and the main pipeline)")
            return None
        if not isinstance(spec, dict):
            self.add(where, f"expected {{from: ..., pipeline: [...]}}, got {spec!r}")
            return None
        for key in spec:
            if key not in ("from", "pipeline"):
                self.add((*where, key), f"unknown key {key!r} (a stream has from and pipeline)")
        upstream = spec.get("from")
        if "from" not in spec:
            self.add(where, "missing 'from' (source, pipeline or a stream's name)")
            upstream = SOURCE
        elif not isinstance(upstream, str):
            self.add((*where, "from"), f"expected a stream name, got {upstream!r}")
            upstream = SOURCE
        operators = spec.get("pipeline", [])
        if not isinstance(operators, list):
            self.add((*where, "pipeline"), f"expected a list, got {operators!r}")
            operators = []
        return upstream, self.steps(operators, (*where, "pipeline"), "operator")

    def sink(self, value: Any, where: Where, index: int) -> SinkPlan | None:
        found = self.entry_of(value, where, "sink", ("stream",))
        if found is None:
            return None
        extras = found[2]
        step = self.step(value, where, "sink", found)
        stream = extras.get("stream", MAIN)
        if not isinstance(stream, str):
            self.add((*where, "stream"), f"expected a stream name, got {stream!r}")
            stream = MAIN
        if step is None:
            return None
        return SinkPlan(step, stream, False, index)

    def on_error(self, value: Any) -> str | SinkPlan:
        if value in ("stop", "skip"):
            return str(value)
        if isinstance(value, str) and REGISTRY.get("sink", value) is None:
            self.add(("on_error",), f"expected stop, skip or a sink, got {value!r}")
            return "stop"
        step = self.step(value, ("on_error",), "sink")
        if step is None:
            return "stop"
        return SinkPlan(step, MAIN, step.entry.json_input, -1)

    def checkpoint(self, value: Any) -> tuple[str | KvCheckpointPlan | None, float]:
        where: Where = ("checkpoint",)
        if value is None:
            return None, 1.0
        if isinstance(value, str):
            return value, 1.0
        if isinstance(value, dict):
            in_nats = "nats" in value
            allowed = ("nats", "key", "bucket", "interval") if in_nats else ("path", "interval")
            for key in value:
                if key not in allowed:
                    self.add((*where, key), f"unknown key {key!r} ({', '.join(allowed)})")
            spec: str | KvCheckpointPlan | None = None
            if in_nats:
                url, kv_key, bucket = value.get("nats"), value.get("key"), value.get("bucket")
                if not isinstance(url, str) or not url.startswith(("nats://", "tls://")):
                    self.add((*where, "nats"), f"expected a nats:// URL, got {url!r}")
                elif not isinstance(kv_key, str) or not kv_key:
                    self.add((*where, "key"), f"expected a KV key (a name), got {kv_key!r}")
                elif bucket is not None and not isinstance(bucket, str):
                    self.add((*where, "bucket"), f"expected a bucket name, got {bucket!r}")
                else:
                    spec = KvCheckpointPlan(url, kv_key, bucket)
            else:
                spec = value.get("path")
                if not isinstance(spec, str):
                    self.add(where, f"expected a path, got {spec!r}")
                    spec = None
            interval = 1.0
            if "interval" in value:
                try:
                    interval = check_duration(value["interval"], allow_zero=False)
                except Exception as exc:
                    self.add((*where, "interval"), getattr(exc, "message", str(exc)))
            return spec, interval
        self.add(
            where,
            f"expected a path, {{path: ..., interval: ...}} or {{nats: ..., key: ...}}, "
            f"got {value!r}",
        )
        return None, 1.0

    def graph(self, plan: Plan, raw_streams: dict[Any, Any], data: dict[str, Any]) -> None:
        names = [SOURCE, MAIN, *plan.streams]
        for name, (upstream, _) in plan.streams.items():
            if upstream not in names:
                close = difflib.get_close_matches(upstream, names, n=1, cutoff=0.6)
                hint = (
                    f"; did you mean {close[0]!r}?" if close else f" (streams: {', '.join(names)})"
                )
                self.add(("streams", name, "from"), f"unknown stream {upstream!r}{hint}")
        cycles = find_cycles(
            {name: upstream for name, (upstream, _) in plan.streams.items() if upstream in names}
        )
        for cycle in cycles:
            self.add(("streams", cycle[0], "from"), f"cycle: {' -> '.join(cycle)}")
        for sink in plan.sinks:
            if sink.stream not in names:
                close = difflib.get_close_matches(sink.stream, names, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.add(("sinks", sink.index, "stream"), f"unknown stream {sink.stream!r}{hint}")
        raw_sinks = data.get("sinks")
        raw_sinks = raw_sinks if isinstance(raw_sinks, list) else []
        read = {
            sink.get("stream", MAIN) if isinstance(sink, dict) else MAIN for sink in raw_sinks
        } | {upstream for upstream, _ in plan.streams.values()}
        for name in raw_streams:
            if isinstance(name, str) and name in plan.streams and name not in read:
                self.add(("streams", name), f"stream {name!r} is read by no sink or stream")
        if data.get("pipeline") and MAIN not in read and raw_sinks:
            self.add(
                ("pipeline",),
                "read by no sink or stream (sinks read 'pipeline' unless they say 'stream:')",
            )

    def kinds(self, plan: Plan) -> None:
        """Check what each step takes against what its input carries."""
        if plan.source is None:
            kinds: dict[str, str] = {SOURCE: self.source_kind}
            source_name = self.source_name
        else:
            kinds = {SOURCE: plan.source.entry.emits_for(plan.source.args)}
            source_name = plan.source.entry.name

        def flow(name: str, upstream: str, steps: list[Step], trail: set[str]) -> str:
            if name in kinds:
                return kinds[name]
            if name in trail:
                return ANY  # a cycle, reported elsewhere
            if upstream not in kinds:
                if upstream in plan.streams:
                    flow(upstream, *plan.streams[upstream], trail | {name})
                else:
                    kinds[upstream] = ANY
            kind = kinds.get(upstream, ANY)
            origin = f"'{upstream}'" if upstream != SOURCE else f"source '{source_name}'"
            for step in steps:
                entry = step.entry
                if kind != ANY and kind not in entry.accepts:
                    hint = (
                        " (add 'decode' before it)"
                        if kind in (FRAMES, RAW) and (EVENTS in entry.accepts)
                        else ""
                    )
                    self.add(
                        (*step.where, entry.name),
                        f"{entry.name!r} takes {_takes(entry)}, but its input is {kind}"
                        f" from {origin}{hint}",
                    )
                emitted = entry.emits_for(step.args)
                kind = kind if emitted == SAME else emitted
                origin = f"'{entry.name}'"
            kinds[name] = kind
            return kind

        flow(MAIN, SOURCE, plan.operators, set())
        for name, (upstream, steps) in plan.streams.items():
            flow(name, upstream, steps, set())
        for sink in [
            *plan.sinks,
            *([plan.on_error] if isinstance(plan.on_error, SinkPlan) else []),
        ]:
            if sink.index < 0:
                continue  # the error sink receives failure records, always JSON-able
            kind = kinds.get(sink.stream, ANY)
            entry = sink.step.entry
            if kind != ANY and kind not in entry.accepts:
                hint = (
                    " (add 'decode' to the pipeline)"
                    if kind in (FRAMES, RAW) and EVENTS in entry.accepts
                    else ""
                )
                self.add(
                    (*sink.step.where, entry.name),
                    f"{entry.name!r} takes {_takes(entry)}, but stream {sink.stream!r}"
                    f" carries {kind}{hint}",
                )
            sink.to_json = entry.json_input and kind in (WINDOWS, ANY)


def _a(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


def _takes(entry: Entry) -> str:
    order = [EVENTS, FRAMES, "bytes", WINDOWS]
    names = [kind for kind in order if kind in entry.accepts]
    return " or ".join(names) if names else "nothing"


def _line(lines: dict[Where, int], where: Where) -> int:
    while where and where not in lines:
        where = where[:-1]
    return lines.get(where, 1)


# -- entry points ---------------------------------------------------------------------------------


def plan_file(path: str | Path) -> tuple[Plan | None, list[Problem]]:
    """Read and check a pipeline file: its :class:`Plan` (None if unusable) and every problem."""
    target = Path(path)
    try:
        text = target.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"{target}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        return None, [Problem(str(target), 1, "", "not a UTF-8 text file")]
    return plan_text(text, target)


def plan_text(text: str, path: str | Path = "<pipeline>") -> tuple[Plan | None, list[Problem]]:
    """:func:`plan_file` for text already read (``path`` names it in messages)."""
    target = Path(path)
    composer = LineComposer(str(path))
    data = composer.load(text)
    if composer.problems and data is None:
        return None, sorted(composer.problems)
    checker = _Checker(str(path), composer.lines)
    plan = checker.plan(data, target)
    return plan, sorted(composer.problems + checker.problems)


def lint_file(path: str | Path, *, allow_python: bool = False) -> list[Problem]:
    """Every problem of a pipeline file, in file order (empty: it is fine).

    With ``allow_python`` the file's ``module:function`` references are imported too. A test
    file (``*_test.yaml``, see :mod:`jetflow.pipeline_tests`) is checked as one.
    """
    from jetflow.pipeline_tests import check_test_file, is_test_file

    if is_test_file(path):
        return check_test_file(path)[2]
    plan, problems = plan_file(path)
    if plan is not None and not problems and allow_python:
        resolve_problems: list[Problem] = []
        plan._resolver(True, resolve_problems)
        problems += resolve_problems
    return sorted(problems)


def load_pipeline(path: str | Path, *, allow_python: bool = False) -> Pipeline:
    """Check a pipeline file and build its :class:`~jetflow.pipeline.Pipeline`.

    Raises:
        PipelineFileError: every problem found, with its location.
        ConfigError: the file cannot be read.
    """
    plan, problems = plan_file(path)
    if problems or plan is None:
        raise PipelineFileError(problems)
    return plan.build(allow_python=allow_python)
