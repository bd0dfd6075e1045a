"""``to_json``: any item → one JSON document as bytes, for file, stdout and websocket sinks.

Events become their Jetstream JSON (built once, cached); bytes pass through; a window result
becomes ``{"start_us", "end_us", "events", "late", "value"}``; a
:class:`~jetflow.userfn.FailedEvent` its error record; anything else what orjson makes of it
(dicts, lists, numbers, strings, dataclasses, pydantic models).

Like Jetstream's, the JSON escapes ``& < >`` and U+2028/U+2029, so a line never breaks in two.
Keys that JSON cannot hold are rendered as strings: ``None`` → ``"null"``, numbers →
``"1"``, a tuple (a ``count_by`` over a list field) → its JSON array as a string
(``'["en","ja"]'``). ``top_k`` values are lists of ``[key, count]`` pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from reactivex import Observable

from jetflow.codec.jsonfmt import go_escape
from jetflow.events import WIRE_KINDS, Event
from jetflow.operators._base import transform
from jetflow.operators.window import WindowResult
from jetflow.userfn import FailedEvent

_OPTIONS = orjson.OPT_NON_STR_KEYS


def window_to_dict(result: WindowResult[Any]) -> dict[str, Any]:
    """A window result as a JSON-ready dict (see the module docstring for keys)."""
    return {
        "start_us": result.start_us,
        "end_us": result.end_us,
        "events": result.events,
        "late": result.late,
        "value": jsonable(result.value),
    }


def jsonable(value: Any) -> Any:
    """``value`` with every dict key made a JSON string and tuples made lists, deeply."""
    if isinstance(value, dict):
        return {_key(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, tuple):
        return orjson.dumps(jsonable(list(key)), default=repr).decode()
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def item_json(item: Any, *, wire_only: bool = True) -> bytes | None:
    """One item's JSON bytes; None for an event the Jetstream wire does not carry (with
    ``wire_only``)."""
    if type(item) is Event:
        if wire_only and item.kind not in WIRE_KINDS:
            return None
        return item.json
    if isinstance(item, bytes):
        return item
    if isinstance(item, WindowResult):
        return go_escape(orjson.dumps(window_to_dict(item), default=repr))
    if isinstance(item, FailedEvent):
        return item.json
    if isinstance(item, str):
        return item.encode()
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        item = dump(mode="json")
    return go_escape(orjson.dumps(jsonable(item), default=repr, option=_OPTIONS))


def to_json(*, wire_only: bool = True) -> Callable[[Observable[Any]], Observable[bytes]]:
    """Turn every item into JSON bytes (one document per item, no newline).

    Args:
        wire_only: skip ``sync`` and ``info`` events, as ``encode()`` does.

    Returns:
        An operator from any items to bytes; :func:`jetflow.sinks.jsonl`,
        :func:`~jetflow.sinks.stdout` and the websocket sinks write them as they are.
        Pipeline files insert it on their own in front of those sinks.

    Example:
        >>> counts.pipe(op.to_json()).subscribe(jf.sinks.jsonl("langs.jsonl"))
        # {"start_us":1725000000000000,"end_us":1725000060000000,"events":412,"late":0,
        #  "value":{"en":301,"ja":77,"null":34}}
    """

    def encode(item: Any) -> bytes | None:
        return item_json(item, wire_only=wire_only)

    def operator(source: Observable[Any]) -> Observable[bytes]:
        return transform(source, encode)

    return operator
