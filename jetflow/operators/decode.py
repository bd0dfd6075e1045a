"""``decode``: firehose frames → events (spec §9), with filters fused in front of record work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from reactivex import Observable, abc

from jetflow.codec.firehose import DecodeStats, FirehoseDecoder
from jetflow.codec.frame import Frame
from jetflow.errors import ConfigError
from jetflow.events import Event
from jetflow.filtering import AllOf, EventFilter

Predicate = Callable[[Event], bool]
# What decode() accepts: raw frames, or events already decoded (which pass through).
Decodable = Frame | bytes | Event


class DecodedStream(Observable[Event]):
    """The events of a frame stream.

    A ``filter`` applied directly to a DecodedStream is fused into it: its did / collection /
    kind / operation criteria run inside the decoder, before any record is located or
    rendered (hot-path rule 8), and its predicate runs on the decoded events. The result is the
    same as decoding first and filtering after, only cheaper.
    """

    def __init__(
        self,
        source: Observable[Any],
        *,
        clock: Callable[[], int] | None,
        stats: DecodeStats,
        event_filter: EventFilter | None = None,
        predicates: tuple[Predicate, ...] = (),
        relay_time: bool = False,
    ) -> None:
        self.source = source
        self.relay_time = relay_time
        self.clock = clock
        self.stats = stats
        self.event_filter = event_filter
        self.predicates = predicates
        super().__init__(self._subscribe_decoded)

    def refined(
        self, event_filter: EventFilter | None, predicate: Predicate | None
    ) -> DecodedStream:
        """This stream with one more filter fused in."""
        merged = event_filter
        if self.event_filter is not None and event_filter is not None:
            merged = AllOf(self.event_filter, event_filter)
        elif event_filter is None:
            merged = self.event_filter
        predicates = self.predicates + ((predicate,) if predicate is not None else ())
        return DecodedStream(
            self.source,
            clock=self.clock,
            stats=self.stats,
            event_filter=merged,
            predicates=predicates,
            relay_time=self.relay_time,
        )

    def _subscribe_decoded(
        self, observer: abc.ObserverBase[Event], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        decoder = FirehoseDecoder(
            clock=self.clock,
            event_filter=self.event_filter,
            stats=self.stats,
            relay_time=self.relay_time,
        )
        decode_frame = decoder.decode
        on_next = observer.on_next
        predicates = self.predicates

        event_filter = self.event_filter
        stats = self.stats

        def passes(event: Event) -> bool:
            if event_filter is not None and not event_filter.wants_event(event):
                return False
            return all(predicate(event) for predicate in predicates)

        def forward(item: Decodable) -> None:
            if isinstance(item, Event):  # already decoded (a Jetstream or JSON-lines source)
                if passes(item):
                    on_next(item)
                else:
                    stats.filtered += 1
                return
            for event in decode_frame(item):
                if not predicates or all(predicate(event) for predicate in predicates):
                    on_next(event)
                else:
                    stats.filtered += 1

        return self.source.subscribe(
            forward, observer.on_error, observer.on_completed, scheduler=scheduler
        )


def decode(
    *,
    clock: Callable[[], int] | None = None,
    stats: DecodeStats | None = None,
    time: Literal["wall", "relay"] = "wall",
) -> Callable[[Observable[Decodable]], DecodedStream]:
    """Decode raw firehose frames into :class:`~jetflow.events.Event` objects.

    Events that are already decoded (from a Jetstream server or a JSON-lines replay) pass
    through, so one pipeline works on every source.

    Malformed frames, error frames, ``tooBig`` commits and records Jetstream would refuse are
    counted in ``stats`` (by reason) and skipped; the stream never stops for bad input.

    Args:
        clock: gives each event its ``time_us``; default: a new monotonic µs clock.
        stats: a :class:`DecodeStats` to count into (pass one to read the counts).
        time: ``"wall"`` stamps events when they are decoded, as Jetstream does; ``"relay"``
            uses each frame's relay ``time`` (still strictly increasing), so event-time
            windows over a replayed capture follow when the events happened.

    Returns:
        An operator from frames (``Frame`` or ``bytes``) to events.

    Example:
        >>> stats = DecodeStats()
        >>> posts = frames.pipe(decode(stats=stats), filter(collections=["app.bsky.feed.post"]))
    """
    if time not in ("wall", "relay"):
        raise ConfigError(f"time: {time!r} is not 'wall' or 'relay'")
    shared_stats = stats if stats is not None else DecodeStats()

    def operator(source: Observable[Decodable]) -> DecodedStream:
        return DecodedStream(source, clock=clock, stats=shared_stats, relay_time=time == "relay")

    return operator
