"""One registry of sources, operators and sinks by name, for the Python API and pipeline files.

Each :class:`Entry` is the real function (``jetflow.operators.count_by``, ...) plus what a
file needs to call it: an argument schema (a pydantic model derived from the declared
parameters, defaults read from the function's own signature), which arguments are field
paths, durations, windows or user functions, and what kind of items it takes and emits. A
test checks every entry against its function's signature, so the two cannot drift apart.

Argument kinds (what a file writes → what the function receives):

============  ===========================================  ==================================
kind          in a file                                    passed as
============  ===========================================  ==================================
``path``      a field path: ``record.langs.0``             the string, validated
``paths``     a mapping label → field path                 the dict, each path validated
``duration``  ``250ms``, ``90s``, ``5m``, ``1h30m``, or a  the value (windows parse it)
              number of seconds
``seconds``   the same                                     seconds, as a float
``window``    a duration (tumbling) or                     a :class:`WindowSpec`
              ``{size: 5m, step: 1m}`` (sliding)
``function``  ``module:function`` (needs ``allow_python``)  the function (predicates guarded)
``key``       a field path, or ``{function: module:fn}``   the path, or the function (guarded)
============  ===========================================  ==================================

Python code can build entries by name too, with the same validation::

    >>> from jetflow.registry import REGISTRY
    >>> counts = REGISTRY.build("operator", "count_by", {"key": "record.langs.0", "window": "1m"})
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from jetflow import operators as op
from jetflow import sinks, sources
from jetflow.durations import parse_duration
from jetflow.errors import ConfigError
from jetflow.fields import validate_path
from jetflow.operators.window import WindowSpec, sliding, tumbling
from jetflow.userfn import GuardRole, guard

Role = Literal["source", "operator", "sink"]
ROLES: tuple[Role, ...] = ("source", "operator", "sink")

# What flows between steps, for the checks a pipeline file gets before it runs.
FRAMES = "frames"
EVENTS = "events"
BYTES = "bytes"
WINDOWS = "window results"
ANY = "items"
RAW = "frames or events"  # a replay that sniffs its file
SAME = "same"  # an operator that passes its input kind on
KINDS = (FRAMES, EVENTS, BYTES, WINDOWS, ANY, RAW)

DURATION_HINT = "like 250ms, 90s, 15m, 24h, 1h30m"
_FUNCTION_REF = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_REQUIRED = inspect.Parameter.empty


@dataclass(frozen=True)
class Kind:
    """A special argument kind (see the module docstring); ``role`` for functions."""

    name: Literal["path", "paths", "duration", "seconds", "window", "function", "key"]
    role: GuardRole | None = None


PATH = Kind("path")
PATHS = Kind("paths")
DURATION = Kind("duration")
SECONDS = Kind("seconds")
WINDOW = Kind("window")
PREDICATE = Kind("function", "predicate")
FUNCTION = Kind("function")  # called by an operator that handles errors itself (map, tap)
KEY = Kind("key", "key")


@dataclass(frozen=True)
class FunctionRef:
    """A user function named in a file as ``module:function`` (imported only when allowed)."""

    ref: str
    role: GuardRole | None = None

    @property
    def module(self) -> str:
        return self.ref.partition(":")[0]

    @property
    def attribute(self) -> str:
        return self.ref.partition(":")[2]


@dataclass(frozen=True)
class ArgProblem:
    """A problem with one argument: ``where`` is the key path below the entry's arguments."""

    where: tuple[str | int, ...]
    message: str


Resolver = Callable[[FunctionRef], Callable[..., Any]]


@dataclass
class Entry:
    """A registered source, operator or sink; see the module docstring."""

    name: str
    role: Role
    factory: Callable[..., Any]
    params: dict[str, Any]  # name → a Python type for plain values, or a Kind
    hidden: frozenset[str]  # parameters of the function a file cannot set
    accepts: frozenset[str]  # kinds of items taken (operators, sinks)
    emits: str | Callable[[Mapping[str, Any]], str]  # kind of items produced
    signature_of: Callable[..., Any]
    json_input: bool = False  # a sink that writes JSON: other items get to_json() first
    pure: bool = True  # building it touches nothing outside (lint builds it to check it)
    summary: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    model: type[BaseModel] = field(init=False)

    def __post_init__(self) -> None:
        signature = inspect.signature(self.signature_of)
        fields: dict[str, Any] = {}
        for name, kind in self.params.items():
            parameter = signature.parameters[name]
            default = parameter.default
            if default is not _REQUIRED:
                default = getattr(default, "value", default)  # enums: their plain value
                self.defaults[name] = default
            annotation = Any if isinstance(kind, Kind) else kind
            fields[name] = (annotation, ... if default is _REQUIRED else default)
        self.model = create_model(
            f"{self.role}_{self.name}_args",
            __config__=ConfigDict(extra="forbid", strict=True),
            **fields,
        )
        if not self.summary:
            doc = inspect.getdoc(self.factory) or ""
            self.summary = doc.split("\n\n")[0].replace("\n", " ")

    @property
    def required(self) -> list[str]:
        return [name for name in self.params if name not in self.defaults]

    def emits_for(self, args: Mapping[str, Any]) -> str:
        return self.emits(args) if callable(self.emits) else self.emits

    def validate(self, args: Mapping[str, Any]) -> tuple[dict[str, Any], list[ArgProblem]]:
        """Check ``args`` (as read from a file); return the converted arguments and problems.

        Only the arguments given are returned (the function's defaults apply to the rest).
        """
        problems: list[ArgProblem] = []
        try:
            self.model.model_validate(dict(args))
        except ValidationError as exc:
            problems += [self._problem(error) for error in exc.errors()]
        bad = {problem.where[0] for problem in problems if problem.where}
        converted: dict[str, Any] = {}
        for name, value in args.items():
            if name in bad or name not in self.params:
                continue
            kind = self.params[name]
            if not isinstance(kind, Kind) or (value is None and self.defaults.get(name, 0) is None):
                converted[name] = value
                continue
            try:
                converted[name] = convert(kind, value)
            except _Invalid as exc:
                problems.append(ArgProblem((name, *exc.where), exc.message))
        return converted, problems

    def _problem(self, error: Any) -> ArgProblem:
        loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "missing":
            return ArgProblem(loc[:-1], f"missing required argument {loc[-1]!r}")
        if kind == "extra_forbidden":
            name = str(loc[-1])
            close = difflib.get_close_matches(name, list(self.params), n=1, cutoff=0.6)
            hint = (
                f"; did you mean {close[0]!r}?"
                if close
                else f" (arguments: {', '.join(self.params) or 'none'})"
            )
            return ArgProblem(loc, f"unknown argument {name!r} for {self.name!r}{hint}")
        return ArgProblem(loc, type_message(error))

    def build(self, args: Mapping[str, Any], resolve: Resolver | None = None) -> Any:
        """Call the function with converted ``args``; function references go through
        ``resolve`` (guarded by role). Raises ConfigError from the function itself."""
        kwargs = {name: _resolved(value, resolve) for name, value in args.items()}
        return self.factory(**kwargs)


def type_message(error: Any) -> str:
    """A short message for a pydantic type error."""
    kind = error["type"]
    given = error.get("input")
    expected = {
        "int_type": "an integer",
        "int_parsing": "an integer",
        "float_type": "a number",
        "float_parsing": "a number",
        "string_type": "a string",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
        "list_type": "a list",
        "dict_type": "a mapping",
        "greater_than_equal": None,
    }.get(kind)
    if expected is not None:
        return f"expected {expected}, got {given!r}"
    if kind == "literal_error":
        return f"expected {error['ctx']['expected']}, got {given!r}"
    return str(error["msg"])


class _Invalid(Exception):
    def __init__(self, message: str, where: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.where = where


def check_duration(value: Any, *, allow_zero: bool = True) -> float:
    """Seconds in a duration written as in a file; raises ``_Invalid`` with the file message."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Invalid(f"{value!r} is not a duration ({DURATION_HINT})")
    try:
        seconds = parse_duration(value, "\0")
    except ConfigError as exc:
        message = str(exc).removeprefix("\0: ")
        if "is not a duration" in message:
            message = f"{value!r} is not a duration ({DURATION_HINT})"
        raise _Invalid(message) from None
    if seconds == 0 and not allow_zero:
        raise _Invalid(f"{value!r} must be longer than zero")
    return seconds


def convert(kind: Kind, value: Any) -> Any:
    """One argument of a special kind, checked and converted (raises ``_Invalid``)."""
    if kind.name == "path":
        return _path(value)
    if kind.name == "paths":
        if not isinstance(value, dict):
            raise _Invalid(f"expected a mapping of names to field paths, got {value!r}")
        out = {}
        for name, path in value.items():
            try:
                out[name] = _path(path)
            except _Invalid as exc:
                raise _Invalid(exc.message, (name,)) from None
        return out
    if kind.name == "duration":
        check_duration(value)
        return value
    if kind.name == "seconds":
        return check_duration(value)
    if kind.name == "window":
        return _window(value)
    if kind.name == "function":
        return _function(value, kind.role)
    # key: a field path, or {function: module:name}
    if isinstance(value, dict):
        if set(value) != {"function"}:
            raise _Invalid(f"expected a field path or {{function: module:name}}, got {value!r}")
        try:
            return _function(value["function"], kind.role)
        except _Invalid as exc:
            raise _Invalid(exc.message, ("function",)) from None
    return _path(value)


def _path(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a field path, got {value!r}")
    try:
        validate_path(value)
    except ConfigError as exc:
        raise _Invalid(str(exc)) from None
    return value


def _window(value: Any) -> WindowSpec:
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"size", "step"})
        if unknown:
            raise _Invalid(f"unknown key {unknown[0]!r} (a window has size and step)", ())
        if "size" not in value:
            raise _Invalid("a window needs a size (and optionally a step)")
        size, step = value["size"], value.get("step")
        for name, item in (("size", size), ("step", step)):
            if item is not None:
                try:
                    check_duration(item, allow_zero=False)
                except _Invalid as exc:
                    raise _Invalid(exc.message, (name,)) from None
        try:
            return tumbling(size) if step is None else sliding(size, step)
        except ConfigError as exc:
            raise _Invalid(str(exc)) from None
    check_duration(value, allow_zero=False)
    try:
        return tumbling(value)
    except ConfigError as exc:  # pragma: no cover - check_duration caught it
        raise _Invalid(str(exc)) from None


def _function(value: Any, role: GuardRole | None) -> FunctionRef | Callable[..., Any]:
    if callable(value):  # the Python API may pass functions directly
        function: Callable[..., Any] = value
        return function
    if not isinstance(value, str) or not _FUNCTION_REF.fullmatch(value):
        raise _Invalid(f"expected a Python function as module:function, got {value!r}")
    return FunctionRef(value, role)


def _resolved(value: Any, resolve: Resolver | None) -> Any:
    if isinstance(value, FunctionRef):
        if resolve is None:
            raise ConfigError(f"{value.ref}: Python functions are not allowed here")
        function = resolve(value)
        return guard(function, value.role) if value.role is not None else function
    return value


def placeholder(ref: FunctionRef) -> Callable[..., Any]:
    """A stand-in for a function that was not imported (lint without ``--allow-python``)."""

    def unresolved(*args: Any) -> Any:
        raise ConfigError(f"{ref.ref} was not imported (run with --allow-python)")

    unresolved.__qualname__ = ref.ref
    return unresolved


class Registry:
    """Entries by role and name."""

    def __init__(self) -> None:
        self.entries: dict[Role, dict[str, Entry]] = {role: {} for role in ROLES}

    def add(self, entry: Entry) -> Entry:
        self.entries[entry.role][entry.name] = entry
        return entry

    def get(self, role: Role, name: str) -> Entry | None:
        return self.entries[role].get(name)

    def names(self, role: Role) -> list[str]:
        return sorted(self.entries[role])

    def role_of(self, name: str) -> Role | None:
        """The role under which ``name`` is registered (the first, if several)."""
        for role in ROLES:
            if name in self.entries[role]:
                return role
        return None

    def suggest(self, role: Role, name: str) -> str | None:
        """The closest registered name of ``role`` to a misspelt ``name``."""
        close = difflib.get_close_matches(name, self.names(role), n=1, cutoff=0.6)
        return close[0] if close else None

    def build(
        self, role: Role, name: str, args: Mapping[str, Any], resolve: Resolver | None = None
    ) -> Any:
        """Validate ``args`` for entry ``name`` and build it (ConfigError lists problems)."""
        entry = self.get(role, name)
        if entry is None:
            hint = self.suggest(role, name)
            raise ConfigError(
                f"unknown {role} {name!r}" + (f"; did you mean {hint!r}?" if hint else "")
            )
        converted, problems = entry.validate(args)
        if problems:
            raise ConfigError(
                "; ".join(
                    f"{name}.{'.'.join(map(str, p.where))}: {p.message}"
                    if p.where
                    else f"{name}: {p.message}"
                    for p in problems
                )
            )
        return entry.build(converted, resolve or _import_function)


def _import_function(ref: FunctionRef) -> Callable[..., Any]:
    import importlib

    module = importlib.import_module(ref.module)
    target: Any = module
    for part in ref.attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise ConfigError(f"{ref.ref} is not callable")
    return target  # type: ignore[no-any-return]


# -- the entries ------------------------------------------------------------------------------

OVERFLOW = Literal["block", "drop_newest", "drop_oldest", "error"]
REGISTRY = Registry()


def _replay_emits(args: Mapping[str, Any]) -> str:
    return {"capture": FRAMES, "jsonl": EVENTS}.get(args.get("format", "auto"), RAW)


_ALL = frozenset(KINDS)
_JSONABLE = frozenset({EVENTS, BYTES, WINDOWS, ANY, RAW})

for _entry in (
    # sources
    Entry(
        "firehose",
        "source",
        sources.firehose,
        {
            "url": str,
            "cursor": int | None,
            "idle_timeout": SECONDS,
            "open_timeout": SECONDS,
            "ping_interval": SECONDS,
            "max_frame_bytes": int,
            "buffer_size": int,
            "overflow": OVERFLOW,
        },
        frozenset({"checkpoint", "backoff"}),
        frozenset(),
        FRAMES,
        sources.FirehoseSource.__init__,
    ),
    Entry(
        "jetstream",
        "source",
        sources.jetstream,
        {
            "url": str,
            "collections": list[str] | None,
            "dids": list[str] | None,
            "cursor": int | None,
            "compress": bool,
            "dictionary": str | None,
            "max_message_size": int,
            "rewind_us": int,
            "idle_timeout": SECONDS,
            "open_timeout": SECONDS,
            "buffer_size": int,
            "overflow": OVERFLOW,
        },
        frozenset({"backoff"}),
        frozenset(),
        EVENTS,
        sources.JetstreamSource.__init__,
        pure=False,
    ),
    Entry(
        "replay",
        "source",
        sources.replay,
        {
            "path": str,
            "format": Literal["auto", "capture", "jsonl"],
            "rate": float | None,
            "buffer_size": int,
            "overflow": OVERFLOW,
        },
        frozenset(),
        frozenset(),
        _replay_emits,
        sources.ReplaySource.__init__,
        pure=False,
    ),
    # operators
    Entry(
        "decode",
        "operator",
        op.decode,
        {"time": Literal["wall", "relay"]},
        frozenset({"clock", "stats"}),
        frozenset({FRAMES, EVENTS, RAW}),
        EVENTS,
        op.decode,
    ),
    Entry(
        "filter",
        "operator",
        op.filter,
        {
            "collections": list[str] | None,
            "dids": list[str] | None,
            "kinds": list[str] | None,
            "operations": list[str] | None,
            "predicate": PREDICATE,
            "jetstream_semantics": bool,
        },
        frozenset(),
        frozenset({EVENTS}),
        EVENTS,
        op.filter,
    ),
    Entry(
        "match",
        "operator",
        op.match,
        {
            "path": PATH,
            "equals": list[Any] | None,
            "contains": list[str] | None,
            "regex": str | None,
            "ignore_case": bool,
            "invert": bool,
        },
        frozenset(),
        frozenset({EVENTS}),
        EVENTS,
        op.match,
    ),
    Entry(
        "encode",
        "operator",
        op.encode,
        {"wire_only": bool},
        frozenset(),
        frozenset({EVENTS}),
        BYTES,
        op.encode,
    ),
    Entry(
        "compress",
        "operator",
        op.compress,
        {"dictionary": str | None, "level": int, "wire_only": bool},
        frozenset(),
        frozenset({EVENTS, BYTES}),
        BYTES,
        op.compress,
    ),
    Entry(
        "decompress",
        "operator",
        op.decompress,
        {"dictionary": str | None},
        frozenset(),
        frozenset({BYTES}),
        BYTES,
        op.decompress,
    ),
    Entry(
        "parse",
        "operator",
        op.parse,
        {},
        frozenset({"on_error"}),
        frozenset({BYTES}),
        EVENTS,
        op.parse,
    ),
    Entry(
        "count_by",
        "operator",
        op.count_by,
        {"key": KEY, "window": WINDOW, "lateness": DURATION},
        frozenset({"on_late", "stats"}),
        frozenset({EVENTS}),
        WINDOWS,
        op.count_by,
    ),
    Entry(
        "top_k",
        "operator",
        op.top_k,
        {"k": int, "key": KEY, "window": WINDOW, "lateness": DURATION},
        frozenset({"on_late", "stats"}),
        frozenset({EVENTS}),
        WINDOWS,
        op.top_k,
    ),
    Entry(
        "rate",
        "operator",
        op.rate,
        {"window": WINDOW, "lateness": DURATION, "key": KEY},
        frozenset({"on_late", "stats"}),
        frozenset({EVENTS}),
        WINDOWS,
        op.rate,
    ),
    Entry(
        "distinct_count",
        "operator",
        op.distinct_count,
        {"key": KEY, "window": WINDOW, "lateness": DURATION, "precision": int},
        frozenset({"on_late", "stats"}),
        frozenset({EVENTS}),
        WINDOWS,
        op.distinct_count,
    ),
    Entry(
        "map",
        "operator",
        op.map,
        {"fn": FUNCTION},
        frozenset(),
        _ALL,
        ANY,
        op.map,
    ),
    Entry(
        "tap",
        "operator",
        op.tap,
        {"fn": FUNCTION},
        frozenset(),
        _ALL,
        SAME,
        op.tap,
    ),
    Entry(
        "to_json",
        "operator",
        op.to_json,
        {"wire_only": bool},
        frozenset(),
        _JSONABLE,
        BYTES,
        op.to_json,
    ),
    # sinks
    Entry(
        "stdout",
        "sink",
        sinks.stdout,
        {"line_buffered": bool},
        frozenset(),
        _JSONABLE,
        ANY,
        sinks.stdout,
        json_input=True,
    ),
    Entry(
        "jsonl",
        "sink",
        sinks.jsonl,
        {
            "path": str,
            "rotate_bytes": int | None,
            "rotate_seconds": SECONDS,
            "compress": bool | None,
            "level": int,
        },
        frozenset(),
        _JSONABLE,
        ANY,
        sinks.jsonl,
        json_input=True,
        pure=False,
    ),
    Entry(
        "websocket",
        "sink",
        sinks.websocket,
        {"url": str, "buffer_size": int, "overflow": OVERFLOW},
        frozenset(),
        _JSONABLE,
        ANY,
        sinks.websocket,
        json_input=True,
    ),
    Entry(
        "websocket_server",
        "sink",
        sinks.websocket_server,
        {"listen": str, "path": str, "max_backlog_bytes": int, "wire_only": bool},
        frozenset(),
        _JSONABLE,
        ANY,
        sinks.websocket_server,
    ),
    Entry(
        "prometheus",
        "sink",
        sinks.prometheus,
        {
            "metric": str,
            "kind": Literal["counter", "gauge"],
            "help": str,
            "labels": PATHS,
            "value": PATH,
            "key_label": str,
            "listen": str | None,
            "max_series": int,
        },
        frozenset(),
        frozenset({EVENTS, WINDOWS}),
        ANY,
        sinks.prometheus,
    ),
    Entry(
        "capture",
        "sink",
        sinks.capture,
        {"path": str, "level": int},
        frozenset(),
        frozenset({FRAMES, RAW}),
        ANY,
        sinks.capture,
        pure=False,
    ),
    Entry(
        "callback",
        "sink",
        sinks.callback,
        {"fn": FUNCTION, "buffer_size": int, "overflow": OVERFLOW},
        frozenset(),
        _ALL,
        ANY,
        sinks.callback,
    ),
):
    REGISTRY.add(_entry)

# The NATS JetStream broker (scale-out): a source and a sink, needing the ``nats`` extra only
# when a pipeline actually runs them.
for _entry in (
    Entry(
        "nats",
        "source",
        sources.nats,
        {
            "url": str,
            "collections": list[str] | None,
            "dids": list[str] | None,
            "start": int | Literal["new", "all"],
            "durable": str | None,
            "stream": str | None,
            "subject": str | None,
            "checkpoint": str | None,
            "batch": int,
            "ack_wait": SECONDS,
            "buffer_size": int,
            "overflow": OVERFLOW,
        },
        frozenset({"client"}),
        frozenset(),
        EVENTS,
        sources.NatsSource.__init__,
        pure=False,
    ),
    Entry(
        "nats",
        "sink",
        sinks.nats,
        {
            "url": str,
            "stream": str | None,
            "subject": str | None,
            "create": bool,
            "event_ttl": SECONDS,
            "duplicate_window": SECONDS,
            "max_pending": int,
            "ack_timeout": SECONDS,
            "ordered": bool,
            "buffer_size": int,
            "overflow": OVERFLOW,
        },
        frozenset({"fence", "client"}),
        frozenset({EVENTS}),
        ANY,
        sinks.NatsSink.__init__,
        pure=False,
    ),
):
    REGISTRY.add(_entry)

del _entry
