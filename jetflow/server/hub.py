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


class Hub:
    """The live subscribers and their indexes."""

    def __init__(self) -> None:
        self.subscribers: dict[int, Subscriber] = {}
        self._everything: set[Subscriber] = set()
        self._by_did: defaultdict[str, set[Subscriber]] = defaultdict(set)
        self._by_collection: defaultdict[str, set[Subscriber]] = defaultdict(set)
        self._by_prefix: defaultdict[str, set[Subscriber]] = defaultdict(set)
        self._collection_filtered: set[Subscriber] = set()
        self.events_published = 0

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

    def _index(self, subscriber: Subscriber) -> None:
        options = subscriber.options
        if options.dids is not None:
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
        keyed = (
            (self._by_did, options.dids or ()),
            (self._by_collection, options.collections or ()),
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
        """Offer each event to its subscribers, then write once per touched subscriber."""
        touched: set[Subscriber] = set()
        by_did = self._by_did
        by_collection = self._by_collection
        by_prefix = self._by_prefix
        for event in events:
            for subscriber in self._everything:
                if subscriber.offer(event):
                    touched.add(subscriber)
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
        self.events_published += len(events)
        for subscriber in touched:
            subscriber.flush()

    def count_by_state(self) -> dict[str, int]:
        counts = {state.value: 0 for state in State}
        for subscriber in self.subscribers.values():
            counts[subscriber.state.value] += 1
        return counts
