"""``filter``: keep the events a pipeline wants (collections with ``prefix.*``, DIDs, ...)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from reactivex import Observable

from jetflow.events import Event
from jetflow.filtering import EventFilter
from jetflow.operators._base import keep
from jetflow.operators.decode import DecodedStream


def filter(
    *,
    collections: Iterable[str] | None = None,
    dids: Iterable[str] | None = None,
    kinds: Iterable[str] | None = None,
    operations: Iterable[str] | None = None,
    predicate: Callable[[Event], bool] | None = None,
    jetstream_semantics: bool = False,
) -> Callable[[Observable[Event]], Observable[Event]]:
    """Keep events matching every given criterion.

    Args:
        collections: NSIDs or ``prefix.*`` patterns (spec §4: ``app.bsky.*`` matches
            ``app.bsky.feed.post``, not ``app.bskyx.foo``). An invalid NSID raises ConfigError.
        dids: repo DIDs.
        kinds: ``commit``, ``identity``, ``account``, ``sync``, ``info``.
        operations: ``create``, ``update``, ``delete``.
        predicate: any function of the event (it may read ``event.record``).
        jetstream_semantics: by default ``collections``/``operations`` keep only commits; set
            True for Jetstream's rule that identity and account events pass collection filters.

    Returns:
        An operator from events to events. Placed right after ``decode()``, the criteria other
        than ``predicate`` run before any record is decoded.

    Example:
        >>> posts = events.pipe(filter(collections=["app.bsky.feed.*"], operations=["create"]))
    """
    criteria = EventFilter(
        collections, dids, kinds, operations, non_commits_bypass=jetstream_semantics
    )
    event_filter = None if criteria.is_empty else criteria

    def operator(source: Observable[Event]) -> Observable[Event]:
        if isinstance(source, DecodedStream):
            return source.refined(event_filter, predicate)
        stream = source
        if event_filter is not None:
            stream = keep(stream, event_filter.wants_event)
        if predicate is not None:
            stream = keep(stream, predicate)
        return stream

    return operator
