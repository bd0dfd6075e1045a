"""Which events a consumer wants: collections (with ``prefix.*``), DIDs, kinds, operations.

The rules are Jetstream's (spec §3–§4): a collection is an exact NSID, validated like indigo
does, or any string ending in ``.*``, matched as a plain string prefix that keeps its final dot.
The same :class:`EventFilter` serves the ``filter`` operator, the decoder (which applies it before
decoding any record) and the ``/subscribe`` server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from jetflow.errors import ConfigError
from jetflow.events import ALL_KINDS, COMMIT, OPERATIONS

if TYPE_CHECKING:
    from jetflow.events import Event

_NSID = re.compile(
    r"[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+"
    r"(\.[a-zA-Z][a-zA-Z0-9]{0,62})"
)
_DID = re.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]")


def is_valid_nsid(value: str) -> bool:
    """indigo's NSID syntax check."""
    return len(value) <= 317 and _NSID.fullmatch(value) is not None


def is_valid_did(value: str) -> bool:
    """indigo's DID syntax check."""
    return 0 < len(value) <= 2048 and _DID.fullmatch(value) is not None


def parse_collections(values: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """Split wanted collections into exact NSIDs and prefixes; raise ConfigError on a bad one.

    The error message is Jetstream's: ``invalid collection: <value>``.
    """
    exact: set[str] = set()
    prefixes: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise ConfigError(f"invalid collection: {value!r}")
        if value.endswith(".*"):
            prefixes.append(value[:-1])
        elif is_valid_nsid(value):
            exact.add(value)
        else:
            raise ConfigError(f"invalid collection: {value}")
    return frozenset(exact), tuple(prefixes)


class EventFilter:
    """A conjunction of optional criteria; ``None`` means "any".

    Args:
        collections: exact NSIDs and ``prefix.*`` patterns.
        dids: repo DIDs.
        kinds: event kinds (``commit``, ``identity``, ``account``, ``sync``, ``info``).
        operations: ``create``, ``update``, ``delete``.
        non_commits_bypass: Jetstream's rule (spec §4) that identity and account events pass
            the collection filter. The ``filter`` operator is strict by default: asking for
            collections or operations keeps only commits.
    """

    __slots__ = ("_prefixes", "collections", "dids", "kinds", "non_commits_bypass", "operations")

    def __init__(
        self,
        collections: Iterable[str] | None = None,
        dids: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        operations: Iterable[str] | None = None,
        *,
        non_commits_bypass: bool = False,
    ) -> None:
        self.non_commits_bypass = non_commits_bypass
        self.collections: frozenset[str] | None = None
        self._prefixes: tuple[str, ...] = ()
        if collections is not None:
            self.collections, self._prefixes = parse_collections(
                _as_list(collections, "collections")
            )
        self.dids = None if dids is None else frozenset(_as_list(dids, "dids"))
        self.kinds = None if kinds is None else frozenset(_as_list(kinds, "kinds"))
        if self.kinds is not None and not self.kinds <= ALL_KINDS:
            bad = sorted(self.kinds - ALL_KINDS)
            raise ConfigError(f"kinds: unknown kind {bad[0]!r} (expected {sorted(ALL_KINDS)})")
        self.operations = (
            None if operations is None else frozenset(_as_list(operations, "operations"))
        )
        if self.operations is not None and not self.operations <= OPERATIONS:
            bad = sorted(self.operations - OPERATIONS)
            raise ConfigError(
                f"operations: unknown operation {bad[0]!r} (expected {sorted(OPERATIONS)})"
            )

    @property
    def prefixes(self) -> tuple[str, ...]:
        """Collection prefixes, each keeping its final dot (``app.bsky.``)."""
        return self._prefixes

    @property
    def is_empty(self) -> bool:
        """True if the filter lets everything through."""
        return (
            self.collections is None
            and self.dids is None
            and self.kinds is None
            and self.operations is None
        )

    def wants(self, kind: str, did: str, collection: str = "", operation: str = "") -> bool:
        """Decide from the fields known before a record is decoded."""
        if self.kinds is not None and kind not in self.kinds:
            return False
        if self.dids is not None and did not in self.dids:
            return False
        if kind != COMMIT:
            return self.non_commits_bypass or (self.collections is None and self.operations is None)
        if self.operations is not None and operation not in self.operations:
            return False
        if self.collections is None:
            return True
        if not collection:
            return self.non_commits_bypass
        return collection in self.collections or collection.startswith(self._prefixes)

    def wants_event(self, event: Event) -> bool:
        return self.wants(event.kind, event.did, event.collection, event.operation)

    def __and__(self, other: EventFilter) -> EventFilter:
        """The filter that passes what both pass (used to fuse consecutive filters)."""
        return AllOf(self, other)

    def __repr__(self) -> str:
        parts = []
        if self.collections is not None:
            parts.append(
                f"collections={sorted(self.collections) + [p + '*' for p in self._prefixes]}"
            )
        for name in ("dids", "kinds", "operations"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={sorted(value)}")
        return f"EventFilter({', '.join(parts)})"


class AllOf(EventFilter):
    """Passes an event only if every one of its filters does."""

    __slots__ = ("filters",)

    def __init__(self, *filters: EventFilter) -> None:
        super().__init__()
        self.filters: tuple[EventFilter, ...]
        flat: list[EventFilter] = []
        for item in filters:
            flat.extend(item.filters if isinstance(item, AllOf) else [item])
        self.filters = tuple(flat)

    @property
    def is_empty(self) -> bool:
        return all(item.is_empty for item in self.filters)

    def wants(self, kind: str, did: str, collection: str = "", operation: str = "") -> bool:
        return all(item.wants(kind, did, collection, operation) for item in self.filters)

    def __repr__(self) -> str:
        return " & ".join(repr(item) for item in self.filters)


def _as_list(values: Iterable[str], name: str) -> list[str]:
    if isinstance(values, str):
        return [values]
    try:
        items = list(values)
    except TypeError:
        raise ConfigError(
            f"{name}: expected a list of strings, got {type(values).__name__}"
        ) from None
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{name}: expected strings, got {item!r}")
    return items
