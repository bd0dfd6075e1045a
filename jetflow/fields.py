"""Field paths: one dotted syntax that names a value of an event, for keys everywhere.

The same strings are used by the Python operators (``count_by("commit.collection", ...)``) and
by pipeline files, so a key reads the same in both. A path is compiled once into a small getter
function; events are never parsed as strings.

=====================================  ======================================================
path                                   value
=====================================  ======================================================
``did``, ``time_us``, ``kind``,        the event's own fields (``seq`` is None when unknown)
``seq``
``commit.rev``, ``commit.operation``,  the commit's fields; None on events that are not
``commit.collection``, ``commit.rkey``,  commits, and None where the commit lacks the field
``commit.cid``                         (a delete has no ``cid``)
``record``, ``record.<a>.<b>...``      the record (Jetstream JSON shape) or a value inside it
``identity.<a>...``,                   the body of an identity / account / sync / info event;
``account.<a>...``, ``sync.<a>...``,   None on events of another kind
``info.<a>...``
=====================================  ======================================================

Inside ``record``, ``identity``, ``account``, ``sync`` and ``info`` each segment is a dict key,
and a segment of ASCII digits indexes a list (``record.langs.0`` is the first language; on a
dict the same segment is the key ``"0"``). Whatever does not exist on an event — a missing key,
an index past the end, a segment applied to a string, a delete's record — reads as ``None``:
a getter never raises for a missing value.

A path that can never resolve on any event (an unknown top-level name, ``commit.`` with an
unknown field, a segment below a plain value such as ``did.x``, an empty segment) raises
:class:`~jetflow.errors.ConfigError` naming the path and the bad segment, when it is compiled.

>>> get = compile_path("record.subject.uri")
>>> get(event)
'at://did:plc:.../app.bsky.feed.post/3k...'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from jetflow.errors import ConfigError
from jetflow.events import COMMIT, Event

Getter = Callable[[Event], Any]
# What operators accept as a key: a field path, or any function of the event.
Key = str | Getter

SCALARS: Final = ("did", "time_us", "kind", "seq")
COMMIT_FIELDS: Final = ("rev", "operation", "collection", "rkey", "cid")
PAYLOAD_KINDS: Final = ("identity", "account", "sync", "info")
_TOP_LEVEL: Final = (*SCALARS, "commit", "record", *PAYLOAD_KINDS)

# One step into a JSON value: the dict key, and the list index when the segment is numeric.
_Step = tuple[str, int | None]


def validate_path(path: str) -> None:
    """Check that ``path`` can resolve on some event.

    Args:
        path: a field path such as ``commit.collection`` or ``record.langs.0``.

    Raises:
        ConfigError: the path is not a string, has an empty segment, starts with an unknown
            name, names an unknown commit field, or goes below a plain value (``did.x``).
            The message names the path and the bad segment.

    Example:
        >>> validate_path("commit.colection")
        Traceback (most recent call last):
        ConfigError: field path 'commit.colection': unknown commit field 'colection' ...
    """
    _parse(path)


def compile_path(path: str) -> Getter:
    """Compile a field path into a getter: ``Event -> value``, ``None`` where it is missing.

    The path is parsed once, here; the returned function does attribute and dict lookups
    only. See the module docstring for the syntax.

    Args:
        path: a field path such as ``did``, ``commit.collection`` or ``record.subject.uri``.

    Returns:
        A function of an event that never raises for a missing value (it returns None).

    Raises:
        ConfigError: the path can never resolve (see :func:`validate_path`).

    Example:
        >>> lang = compile_path("record.langs.0")
        >>> [lang(e) for e in events]
        ['en', None, 'ja']
    """
    head, rest = _parse(path)
    if head in SCALARS:
        return _scalar_getter(head)
    if head == COMMIT:
        return _commit_getter(rest[0][0])
    if head == "record":
        return _record_getter(rest)
    return _payload_getter(head, rest)


def key_getter(key: Key, *, name: str = "key") -> Getter:
    """A getter for a key given as a field path or as a function of the event.

    Args:
        key: a field path (compiled with :func:`compile_path`) or a callable, used as is.
        name: the option's name, for the error message.

    Raises:
        ConfigError: ``key`` is neither, or is a path that can never resolve.
    """
    if isinstance(key, str):
        return compile_path(key)
    if callable(key):
        return key
    raise ConfigError(f"{name} must be a field path or a function of the event, not {key!r}")


# -- parsing --------------------------------------------------------------------------------------


def _parse(path: str) -> tuple[str, tuple[_Step, ...]]:
    if not isinstance(path, str):
        raise ConfigError(f"field path must be a string, not {path!r}")
    segments = path.split(".")
    for position, segment in enumerate(segments):
        if not segment:
            raise ConfigError(
                f"field path {path!r}: segment {position + 1} is empty"
                " (paths look like 'commit.collection' or 'record.langs.0')"
            )
    head, rest = segments[0], segments[1:]
    if head not in _TOP_LEVEL:
        hint = f"; did you mean 'commit.{head}'?" if head in COMMIT_FIELDS else ""
        raise ConfigError(
            f"field path {path!r}: unknown field {head!r}{hint}"
            f" (expected one of {', '.join(_TOP_LEVEL)})"
        )
    if head in SCALARS and rest:
        raise ConfigError(
            f"field path {path!r}: {head!r} is a plain value, it has no field {rest[0]!r}"
        )
    if head == COMMIT:
        if not rest or rest[0] not in COMMIT_FIELDS:
            bad = repr(rest[0]) if rest else "(none)"
            raise ConfigError(
                f"field path {path!r}: unknown commit field {bad}"
                f" (expected one of {', '.join(COMMIT_FIELDS)}; record fields are 'record.<key>')"
            )
        if len(rest) > 1:
            raise ConfigError(
                f"field path {path!r}: 'commit.{rest[0]}' is a plain value,"
                f" it has no field {rest[1]!r}"
            )
    steps = tuple(
        (segment, int(segment) if segment.isascii() and segment.isdigit() else None)
        for segment in rest
    )
    return head, steps


# -- getters --------------------------------------------------------------------------------------


def _scalar_getter(name: str) -> Getter:
    if name == "did":
        return lambda event: event.did
    if name == "time_us":
        return lambda event: event.time_us
    if name == "kind":
        return lambda event: event.kind
    return lambda event: event.seq


def _commit_getter(name: str) -> Getter:
    # Non-commit events hold "" in these slots (a sync event holds its rev), and a commit
    # lacking a field holds "" or None: all of them read as None, as the wire JSON omits them.
    if name == "collection":
        return lambda event: event.collection or None
    if name == "operation":
        return lambda event: event.operation or None
    if name == "rkey":
        return lambda event: event.rkey or None
    if name == "cid":
        return lambda event: (event.cid or None) if event.kind == COMMIT else None
    return lambda event: (event.rev or None) if event.kind == COMMIT else None


def _walk(value: Any, steps: tuple[_Step, ...]) -> Any:
    for key, index in steps:
        if isinstance(value, dict):
            value = value.get(key)
        elif index is not None and isinstance(value, list):
            value = value[index] if index < len(value) else None
        else:
            return None
    return value


def _record_getter(steps: tuple[_Step, ...]) -> Getter:
    if not steps:
        return lambda event: event.record
    if len(steps) == 1 and steps[0][1] is None:
        ((key, _),) = steps

        def get_one(event: Event) -> Any:
            record = event.record
            return record.get(key) if record is not None else None

        return get_one

    def get(event: Event) -> Any:
        record = event.record
        return _walk(record, steps) if record is not None else None

    return get


def _payload_getter(kind: str, steps: tuple[_Step, ...]) -> Getter:
    if not steps:
        return lambda event: event.payload if event.kind == kind else None

    def get(event: Event) -> Any:
        if event.kind != kind:
            return None
        return _walk(event.payload, steps)

    return get
