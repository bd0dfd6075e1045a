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

import asyncio
from collections.abc import Awaitable, Callable

from jetflow.server.subscriber import REPLAY_SEND_BUFFER, State, Subscriber
from jetflow.store.sqlite import ReplayBatch, ReplayQuery

ReadBatch = Callable[[ReplayQuery, int, int], Awaitable[ReplayBatch]]
BATCH_EVENTS = 5000


async def replay_then_live(subscriber: Subscriber, read: ReadBatch, cursor: int) -> int:
    """Replay from ``cursor`` (inclusive) and switch the subscriber to live; return rows sent.

    The next batch is read while the current one is being sent (reads run in a thread), and
    a batch read under options that have since changed is read again.
    """
    subscriber.state = State.REPLAY
    subscriber.set_send_buffer(REPLAY_SEND_BUFFER)
    subscriber.replay_buffer = []
    subscriber.replay_overflowed = False
    position = cursor
    sent = 0
    ahead: tuple[ReplayQuery, asyncio.Future[ReplayBatch]] | None = None
    try:
        while subscriber.state is State.REPLAY:
            query = subscriber.options.replay_query(subscriber.compress)  # options may change
            if ahead is not None and ahead[0] == query:
                batch = await ahead[1]
            else:
                batch = await read(query, position, BATCH_EVENTS)
            ahead = None
            if subscriber.state is not State.REPLAY:
                break
            if batch.count >= BATCH_EVENTS:
                following = batch.last_time_us + 1
                ahead = (query, asyncio.ensure_future(read(query, following, BATCH_EVENTS)))
            if batch.count:
                await subscriber.send_replayed(batch)
                sent += batch.count
                position = batch.last_time_us + 1
            if batch.count < BATCH_EVENTS:
                if subscriber.replay_overflowed:
                    subscriber.replay_overflowed = False  # read what was dropped, from the store
                    continue
                subscriber.go_live()
    finally:
        if ahead is not None:
            ahead[1].cancel()
    return sent
