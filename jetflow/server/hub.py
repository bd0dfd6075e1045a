"""Fan-out: hand each committed event to the subscribers that want it, found by index.

A subscriber is indexed in one place, by its most selective filter: by DID if it names DIDs,
else by exact collection and by collection prefix, else in "everything". So an event costs a
few dictionary lookups, not a scan of every subscriber. Identity and account events pass
collection filters (spec §4), so they also go to every subscriber filtered by collection only.

``publish`` runs on the event loop right after a batch is committed to the store, which is what
makes replay → live cutover gapless (see :mod:`jetflow.server.replay`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from jetflow.server.options import SubscriberOptions
from jetflow.server.subscriber import COMMIT_CODE, State, Subscriber
from jetflow.store.sqlite import StoredEvent


class Run:
    """Consecutive events bound for the same subscribers, with their frames listed once.

    Subscribers that take a whole run (no size cap, nothing already seen) extend their pending
    list with it in one step, so their cost per batch does not grow with the events in it.
    """

    __slots__ = ("_binary", "_text", "events")

    def __init__(self, events: Sequence[StoredEvent]) -> None:
        self.events = events
        self._text: tuple[list[bytes], int] | None = None
        self._binary: tuple[list[bytes], int] | None = None

    def frames(self, compressed: bool) -> tuple[list[bytes], int]:
        """The frames and their total size, built on first use."""
        if compressed:
            if self._binary is None:
                frames = [event.binary for event in self.events]
                self._binary = (frames, sum(map(len, frames)))
            return self._binary
        if self._text is None:
            frames = [event.text for event in self.events]
            self._text = (frames, sum(map(len, frames)))
        return self._text


class Hub:
    """The live subscribers and their indexes."""

    def __init__(self) -> None:
        self.subscribers: dict[int, Subscriber] = {}
        self._everything: set[Subscriber] = set()
        # One exact collection, no prefix, no DID: served a run per collection per batch.
        self._single: defaultdict[str, set[Subscriber]] = defaultdict(set)
        self._by_did: defaultdict[str, set[Subscriber]] = defaultdict(set)
        # Every other collection filter: served event by event.
        self._by_collection: defaultdict[str, set[Subscriber]] = defaultdict(set)
        self._by_prefix: defaultdict[str, set[Subscriber]] = defaultdict(set)
        self._collection_filtered: set[Subscriber] = set()
        self.events_published = 0
        self.newest_time_us = 0  # of the last published event: a cursor past it is "live"

    def __len__(self) -> int:
        return len(self.subscribers)

    # -- membership -----------------------------------------------------------------------------

    def add(self, subscriber: Subscriber) -> None:
        self.subscribers[subscriber.id] = subscriber
        self._index(subscriber)

    def remove(self, subscriber: Subscriber) -> None:
        if self.subscribers.pop(subscriber.id, None) is not None:
            self._unindex(subscriber)

    def update_options(self, subscriber: Subscriber, options: SubscriberOptions) -> None:
        """Give a subscriber new options and re-file it under them."""
        present = subscriber.id in self.subscribers
        if present:
            self._unindex(subscriber)
        subscriber.set_options(options)
        if present:
            self._index(subscriber)

    @staticmethod
    def _single_collection(subscriber: Subscriber) -> str | None:
        options = subscriber.options
        if (
            options.dids is None
            and options.collections is not None
            and not options.prefixes
            and len(options.collections) == 1
        ):
            return next(iter(options.collections))
        return None

    def _index(self, subscriber: Subscriber) -> None:
        options = subscriber.options
        single = self._single_collection(subscriber)
        if single is not None:
            self._single[single].add(subscriber)
        elif options.dids is not None:
            for did in options.dids:
                self._by_did[did].add(subscriber)
        elif options.collections is not None:
            self._collection_filtered.add(subscriber)
            for collection in options.collections:
                self._by_collection[collection].add(subscriber)
            for prefix in options.prefixes:
                self._by_prefix[prefix].add(subscriber)
        else:
            self._everything.add(subscriber)

    def _unindex(self, subscriber: Subscriber) -> None:
        """Undo ``_index`` (the subscriber's options are still the ones it was filed by)."""
        options = subscriber.options
        self._everything.discard(subscriber)
        self._collection_filtered.discard(subscriber)
        single = self._single_collection(subscriber)
        keyed = (
            (self._single, (single,) if single is not None else ()),
            (self._by_did, options.dids or ()),
            (self._by_collection, () if single is not None else options.collections or ()),
            (self._by_prefix, options.prefixes),
        )
        for index, keys in keyed:
            for key in keys:
                members = index.get(key)
                if members is not None:
                    members.discard(subscriber)
                    if not members:
                        del index[key]

    # -- fan-out -------------------------------------------------------------------------------

    def publish(self, events: Sequence[StoredEvent]) -> None:
        """Offer a committed batch to its subscribers, then write once per touched subscriber."""
        if not events:
            return
        touched: set[Subscriber] = set()
        if self._everything:
            run = Run(events)
            for subscriber in self._everything:
                if subscriber.offer_run(run):
                    touched.add(subscriber)
        if self._single:
            self._publish_single(events, touched)
        if self._by_did or self._collection_filtered:
            self._publish_each(events, touched)
        self.events_published += len(events)
        self.newest_time_us = events[-1].time_us
        for subscriber in touched:
            subscriber.flush()

    def _publish_single(self, events: Sequence[StoredEvent], touched: set[Subscriber]) -> None:
        """One run per wanted collection: its commits plus every identity/account event."""
        by_collection: defaultdict[str, list[StoredEvent]] = defaultdict(list)
        passing: list[StoredEvent] = []  # events every collection filter lets through
        for event in events:
            if event.kind != COMMIT_CODE or not event.collection:
                passing.append(event)
            else:
                by_collection[event.collection].append(event)
        for collection, members in self._single.items():
            selected = by_collection.get(collection, [])
            if passing:
                selected = sorted([*selected, *passing], key=_time_us)
            if not selected:
                continue
            run = Run(selected)
            for subscriber in members:
                if subscriber.offer_run(run):
                    touched.add(subscriber)

    def _publish_each(self, events: Sequence[StoredEvent], touched: set[Subscriber]) -> None:
        by_did = self._by_did
        by_collection = self._by_collection
        by_prefix = self._by_prefix
        for event in events:
            for subscriber in by_did.get(event.did, ()):
                if (
                    event.kind != COMMIT_CODE or subscriber.wants_collection(event.collection)
                ) and subscriber.offer(event):
                    touched.add(subscriber)
            if event.kind != COMMIT_CODE or not event.collection:
                candidates: Iterable[Subscriber] = self._collection_filtered
            else:
                candidates = by_collection.get(event.collection, ())
                if by_prefix:
                    candidates = [
                        *candidates,
                        *(
                            subscriber
                            for prefix, members in by_prefix.items()
                            if event.collection.startswith(prefix)
                            for subscriber in members
                        ),
                    ]
            for subscriber in candidates:
                if subscriber.offer(event):
                    touched.add(subscriber)

    def count_by_state(self) -> dict[str, int]:
        counts = {state.value: 0 for state in State}
        for subscriber in self.subscribers.values():
            counts[subscriber.state.value] += 1
        return counts


def _time_us(event: StoredEvent) -> int:
    return event.time_us
