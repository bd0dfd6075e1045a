"""The registry: one set of names for files and Python, checked against the real signatures."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import reactivex as rx

from jetflow import operators as op
from jetflow import sinks
from jetflow.errors import ConfigError
from jetflow.events import Event
from jetflow.operators.window import WindowSpec
from jetflow.registry import REGISTRY, ROLES, FunctionRef, placeholder
from jetflow.testing import CollectingSink

S = 1_000_000


def ev(seconds: float, lang: str | None, rkey: str = "r") -> Event:
    record: dict[str, Any] = {"$type": "app.bsky.feed.post", "text": "hi"}
    if lang is not None:
        record["langs"] = [lang]
    return Event(
        "commit",
        "did:plc:a",
        round(seconds * S),
        operation="create",
        collection="app.bsky.feed.post",
        rkey=rkey,
        record=record,
    )


def run(operator: Any, events: list[Event]) -> list[Any]:
    sink: CollectingSink[Any] = CollectingSink()
    rx.from_iterable(events).pipe(operator).subscribe(sink)
    return sink.items


@pytest.mark.parametrize(
    "entry",
    [entry for role in ROLES for entry in REGISTRY.entries[role].values()],
    ids=lambda entry: f"{entry.role}-{entry.name}",
)
def test_every_entry_matches_its_functions_signature(entry: Any) -> None:
    signature = inspect.signature(entry.signature_of)
    parameters = {
        name: parameter
        for name, parameter in signature.parameters.items()
        if name != "self" and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    }
    # Every parameter is either settable from a file or deliberately hidden ...
    assert set(entry.params) | entry.hidden == set(parameters), entry.name
    assert not set(entry.params) & entry.hidden
    # ... and the defaults a file gets are the function's own.
    for name in entry.params:
        default = parameters[name].default
        if default is inspect.Parameter.empty:
            assert name in entry.required
        else:
            assert entry.defaults[name] == getattr(default, "value", default)


def test_every_public_operator_and_sink_is_registered() -> None:
    helpers = {"sliding", "tumbling", "windowed"}  # window specs; windowed needs 3 functions
    functions = {
        name for name in op.__all__ if inspect.isfunction(getattr(op, name)) and name not in helpers
    }
    hint = "register it in jetflow/registry.py, or list it here as not meant for files"
    assert functions == set(REGISTRY.names("operator")), hint
    sink_functions = {name for name in sinks.__all__ if inspect.isfunction(getattr(sinks, name))}
    assert sink_functions == set(REGISTRY.names("sink")), hint


def test_arguments_are_validated_and_converted_like_a_file_writes_them() -> None:
    entry = REGISTRY.get("operator", "count_by")
    assert entry is not None
    args, problems = entry.validate(
        {"key": "record.langs.0", "window": {"size": "5m", "step": "1m"}, "lateness": "10s"}
    )
    assert problems == []
    assert args["window"] == WindowSpec(300 * S, 60 * S) and args["lateness"] == "10s"
    _, problems = entry.validate({"key": "commit.colection", "window": "5x", "lateness": True})
    assert [(p.where, p.message) for p in problems] == [
        (
            ("key",),
            "field path 'commit.colection': unknown commit field 'colection' (expected one of"
            " rev, operation, collection, rkey, cid; record fields are 'record.<key>')",
        ),
        (("window",), "'5x' is not a duration (like 250ms, 90s, 15m, 24h, 1h30m)"),
        (("lateness",), "True is not a duration (like 250ms, 90s, 15m, 24h, 1h30m)"),
    ]


def test_a_window_step_longer_than_its_size_is_refused() -> None:
    entry = REGISTRY.get("operator", "rate")
    assert entry is not None
    _, problems = entry.validate({"window": {"size": "1m", "step": "5m"}})
    assert problems[0].where == ("window",) and "at most the size" in problems[0].message


def test_seconds_arguments_arrive_as_seconds() -> None:
    entry = REGISTRY.get("sink", "jsonl")
    assert entry is not None
    args, problems = entry.validate({"path": "x.jsonl", "rotate_seconds": "1h30m"})
    assert problems == [] and args["rotate_seconds"] == 5400.0


def test_a_built_operator_behaves_as_the_python_one() -> None:
    events = [ev(1, "en"), ev(2, "ja"), ev(61, "en"), ev(62, None)]
    by_name = REGISTRY.build("operator", "count_by", {"key": "record.langs.0", "window": "1m"})
    direct = op.count_by("record.langs.0", window=op.tumbling("1m"))
    assert run(by_name, events) == run(direct, events)
    assert [w.value for w in run(by_name, events)] == [{"en": 1, "ja": 1}, {"en": 1, None: 1}]


def test_unknown_names_and_arguments_get_the_closest_suggestion() -> None:
    with pytest.raises(ConfigError, match="unknown operator 'count_bye'; did you mean 'count_by'"):
        REGISTRY.build("operator", "count_bye", {})
    with pytest.raises(ConfigError, match="unknown argument 'windw' for 'rate'; did you mean"):
        REGISTRY.build("operator", "rate", {"windw": "1m"})
    with pytest.raises(ConfigError, match="missing required argument 'key'"):
        REGISTRY.build("operator", "top_k", {"k": 3, "window": "1m"})


def test_function_references_are_only_imported_through_a_resolver() -> None:
    entry = REGISTRY.get("operator", "filter")
    assert entry is not None
    args, problems = entry.validate({"predicate": "mymodule:is_spam"})
    assert problems == [] and args["predicate"] == FunctionRef("mymodule:is_spam", "predicate")
    with pytest.raises(ConfigError, match="not allowed"):
        entry.build(args)
    _, problems = entry.validate({"predicate": "import os; os.system('x')"})
    assert problems[0].message.startswith("expected a Python function as module:function")

    seen: list[str] = []

    def resolve(ref: FunctionRef) -> Any:
        seen.append(ref.ref)
        return lambda event: event.rkey == "keep"

    kept = run(entry.build(args, resolve), [ev(1, "en", "keep"), ev(2, "en", "drop")])
    assert seen == ["mymodule:is_spam"] and [e.rkey for e in kept] == ["keep"]


def test_a_placeholder_function_refuses_to_run() -> None:
    stand_in = placeholder(FunctionRef("m:f"))
    with pytest.raises(ConfigError, match="m:f was not imported"):
        stand_in(ev(1, "en"))


def test_key_arguments_take_a_path_or_a_function() -> None:
    entry = REGISTRY.get("operator", "count_by")
    assert entry is not None
    args, problems = entry.validate({"key": {"function": "keys:lang"}, "window": 60})
    assert problems == [] and args["key"] == FunctionRef("keys:lang", "key")
    _, problems = entry.validate({"key": {"fn": "keys:lang"}, "window": 60})
    assert problems[0].message.startswith("expected a field path or {function: module:name}")
