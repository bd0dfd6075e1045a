"""Cursor replay, then live, with no gap, no duplicate and strictly increasing ``time_us``.

Why it is gapless: the subscriber joins the hub *before* the first read, in ``replay`` state,
so every event published from then on is kept aside for it; every event published before
was committed before, so the store has it. Reads continue until one returns less than a full
batch (caught up with what was committed when it ran); then the kept-aside events newer than
the last replayed one are queued and the subscriber is live. Publishing happens on the event
loop right after each commit, and the switch happens on the event loop too, so nothing can
fall between the two. If too many live events pile up during a long replay, they are dropped
from memory and read from the store instead. An empty read means "caught up" (v1 instead
replays the whole store, spec §5).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from jetflow.server.subscriber import State, Subscriber
from jetflow.store.sqlite import ReplayQuery

ReadBatch = Callable[[ReplayQuery, int, int], Awaitable[list[tuple[int, bytes]]]]
BATCH_ROWS = 2000


async def replay_then_live(subscriber: Subscriber, read: ReadBatch, cursor: int) -> int:
    """Replay from ``cursor`` (inclusive) and switch the subscriber to live; return rows sent."""
    subscriber.state = State.REPLAY
    subscriber.replay_buffer = []
    subscriber.replay_overflowed = False
    position = cursor
    sent = 0
    while subscriber.state is State.REPLAY:
        query = subscriber.options.replay_query(subscriber.compress)  # options may change
        rows = await read(query, position, BATCH_ROWS)
        if subscriber.state is not State.REPLAY:
            break
        if rows:
            await subscriber.send_replayed(rows)
            sent += len(rows)
            position = rows[-1][0] + 1
        if len(rows) < BATCH_ROWS:
            if subscriber.replay_overflowed:
                subscriber.replay_overflowed = False  # read what was dropped, from the store
                continue
            subscriber.go_live()
    return sent
