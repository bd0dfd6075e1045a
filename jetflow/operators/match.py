"""``match``: keep events whose field (by field path) equals, contains or matches something.

The declarative cousin of ``filter(predicate=...)``: what a pipeline file can say without
Python, e.g. posts whose text mentions a keyword.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from reactivex import Observable

from jetflow.errors import ConfigError
from jetflow.events import Event
from jetflow.fields import compile_path
from jetflow.operators._base import keep
from jetflow.operators.decode import DecodedStream


def match(
    path: str,
    *,
    equals: Iterable[Any] | None = None,
    contains: Iterable[str] | None = None,
    regex: str | None = None,
    ignore_case: bool = False,
    invert: bool = False,
) -> Callable[[Observable[Event]], Observable[Event]]:
    """Keep the events whose value at ``path`` passes every criterion given.

    A value that is a list (``record.langs``) passes when one of its items does. A missing
    value passes nothing (with ``invert``: everything).

    Args:
        path: a field path (:mod:`jetflow.fields`), e.g. ``record.text``.
        equals: the value must equal one of these.
        contains: the value must be a string containing one of these substrings.
        regex: the value must be a string in which this regular expression is found.
        ignore_case: compare strings case-insensitively (``equals``, ``contains``, ``regex``).
        invert: keep the events that do *not* pass instead.

    Returns:
        An operator from events to events. Right after ``decode()`` it runs inside the
        decoder, like ``filter``'s predicate.

    Raises:
        ConfigError: a bad path, a bad regular expression, or no criterion at all.

    Example:
        >>> posts.pipe(op.match("record.text", contains=["bluesky", "atproto"], ignore_case=True))
    """
    get = compile_path(path)
    tests: list[Callable[[Any], bool]] = []
    if equals is not None:
        wanted = list(equals)
        if ignore_case:
            folded = {v.casefold() if isinstance(v, str) else v for v in _hashables(wanted)}
            tests.append(
                lambda v: _hashable(v) and (v.casefold() if isinstance(v, str) else v) in folded
            )
        else:
            exact = set(_hashables(wanted))
            tests.append(lambda v: _hashable(v) and v in exact)
    if contains is not None:
        needles = list(contains)
        if not all(isinstance(n, str) for n in needles):
            raise ConfigError(f"match contains: expected strings, got {needles!r}")
        if ignore_case:
            needles = [n.casefold() for n in needles]
            tests.append(lambda v: isinstance(v, str) and any(n in v.casefold() for n in needles))
        else:
            tests.append(lambda v: isinstance(v, str) and any(n in v for n in needles))
    if regex is not None:
        try:
            pattern = re.compile(regex, re.IGNORECASE if ignore_case else 0)
        except (re.error, TypeError) as exc:
            raise ConfigError(
                f"match regex: {regex!r} is not a regular expression ({exc})"
            ) from None
        search = pattern.search
        tests.append(lambda v: isinstance(v, str) and search(v) is not None)
    if not tests:
        raise ConfigError("match: give at least one of equals, contains, regex")

    def one(value: Any) -> bool:
        return all(test(value) for test in tests)

    def passes(event: Event) -> bool:
        value = get(event)
        if isinstance(value, list):
            found = any(one(item) for item in value)
        else:
            found = value is not None and one(value)
        return found != invert

    def operator(source: Observable[Event]) -> Observable[Event]:
        if isinstance(source, DecodedStream):
            return source.refined(None, passes)
        return keep(source, passes)

    return operator


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _hashables(values: list[Any]) -> list[Any]:
    bad = [v for v in values if not _hashable(v)]
    if bad:
        raise ConfigError(f"match equals: expected plain values, got {bad[0]!r}")
    return values
