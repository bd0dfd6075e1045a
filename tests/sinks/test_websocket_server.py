"""The websocket server sink: real websocket clients (and plain HTTP) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from jetflow import operators as op
from jetflow.codec.firehose import FirehoseDecoder
from jetflow.errors import ConfigError
from jetflow.events import Event
from jetflow.pipeline import Pipeline, PipelineHandle
from jetflow.sinks import websocket_server
from jetflow.sinks.websocket_server import WebsocketServerSink


@pytest.fixture(scope="module")
def events(synthetic_frames: list[bytes]) -> list[Event]:
    decoder = FirehoseDecoder()
    return [event for frame in synthetic_frames for event in decoder.decode(frame)]


class Gate:
    """A source that waits for ``go``, yields its items, then stays open until ``done``."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.go = asyncio.Event()
        self.done = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[Any]:
        await self.go.wait()
        for count, item in enumerate(self.items):
            yield item
            if count % 20 == 0:
                await asyncio.sleep(0)  # as a network source does, now and then
        await self.done.wait()


async def started(sink: WebsocketServerSink, gate: Gate, *operators: Any) -> PipelineHandle:
    handle = Pipeline(gate, list(operators), [sink]).start()
    while sink.url is None:
        await asyncio.sleep(0.005)
    return handle


async def read_all(client: ClientConnection) -> tuple[list[str], int | None, str | None]:
    messages = []
    try:
        async for message in client:
            assert isinstance(message, str)
            messages.append(message)
    except ConnectionClosed:
        pass
    return messages, client.close_code, client.close_reason


async def test_every_client_gets_every_event_as_jetstream_json(events: list[Event]) -> None:
    sink = websocket_server("127.0.0.1:0")
    gate = Gate(events)
    handle = await started(sink, gate)
    assert sink.url is not None
    async with (
        connect(sink.url) as first,
        connect(sink.url) as second,
        connect(
            sink.url + "?wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.graph.*"
        ) as filtered,
    ):
        while sink.clients < 3:
            await asyncio.sleep(0.005)
        gate.go.set()
        readers = [asyncio.create_task(read_all(c)) for c in (first, second, filtered)]
        while sink.stats.received < len(events):
            await asyncio.sleep(0.01)
        gate.done.set()
        (one, code, reason), (two, _, _), (some, _, _) = await asyncio.gather(*readers)
    await handle
    wire = [e for e in events if e.kind in ("commit", "identity", "account")]
    assert one == two == [e.json.decode() for e in wire]
    assert code == 1001 and reason == "stream ended"
    wanted = [
        e.json.decode()
        for e in wire
        if e.kind != "commit"
        or e.collection == "app.bsky.feed.post"
        or e.collection.startswith("app.bsky.graph.")
    ]
    assert some == wanted and len(wanted) < len(wire)


async def test_window_results_are_served_as_json() -> None:
    s = 1_000_000
    likes = [
        Event(
            "commit",
            "did:plc:a",
            t * s,
            operation="create",
            collection="app.bsky.feed.like",
            rkey=str(t),
        )
        for t in (1, 2, 61)
    ]
    sink = websocket_server("127.0.0.1:0")
    gate = Gate(likes)
    handle = await started(sink, gate, op.rate(window="1m"))
    assert sink.url is not None
    async with connect(sink.url) as client:
        while sink.clients < 1:
            await asyncio.sleep(0.005)
        gate.go.set()
        first = json.loads(await client.recv())
        gate.done.set()
        rest, _, _ = await read_all(client)
    await handle
    assert first == {"start_us": 0, "end_us": 60 * s, "events": 2, "late": 0, "value": 2 / 60}
    assert [json.loads(m)["start_us"] for m in rest] == [60 * s]  # flushed at the end


async def test_a_slow_client_is_dropped_with_1008_and_slows_nobody(events: list[Event]) -> None:
    items = events * 4  # ~2.4 MB of JSON: more than the socket buffers hold
    sink = websocket_server("127.0.0.1:0", max_backlog_bytes=256 * 1024)
    gate = Gate(items)
    handle = await started(sink, gate)
    assert sink.url is not None
    async with connect(sink.url) as fast, connect(sink.url, max_queue=1) as slow:
        while sink.clients < 2:
            await asyncio.sleep(0.005)
        gate.go.set()
        fast_reader = asyncio.create_task(read_all(fast))
        while sink.stats.received < len(items):  # the pipeline goes at full speed
            await asyncio.sleep(0.01)
        assert sink.dropped_clients == 1 and sink.clients == 1
        slow_messages, slow_code, slow_reason = await read_all(slow)
        gate.done.set()
        fast_messages, fast_code, _ = await fast_reader
    await handle
    wire = [e for e in items if e.kind in ("commit", "identity", "account")]
    assert len(fast_messages) == len(wire) and fast_code == 1001
    assert (slow_code, slow_reason) == (1008, "consumer too slow")
    assert 0 < len(slow_messages) < len(wire)
    assert slow_messages == fast_messages[: len(slow_messages)]  # what it got was in order


async def test_plain_http_gets_a_page_and_other_paths_404(events: list[Event]) -> None:
    sink = websocket_server("127.0.0.1:0")
    gate = Gate([])
    handle = await started(sink, gate)
    port = sink.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    page = (await reader.read()).decode()
    writer.close()
    assert page.startswith("HTTP/1.1 200 OK")
    assert "connect a websocket to /subscribe (0 clients)" in page
    with pytest.raises(Exception, match="404"):
        async with connect(f"ws://127.0.0.1:{port}/elsewhere"):
            pass
    gate.go.set()
    gate.done.set()
    await handle


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="listen: '8765' is not HOST:PORT"):
        WebsocketServerSink("8765")
    with pytest.raises(ConfigError, match="path: must start with '/'"):
        WebsocketServerSink("127.0.0.1:0", path="subscribe")
