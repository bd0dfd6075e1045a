"""FakeRelay speaks subscribeRepos to a plain websockets client."""

from __future__ import annotations

from websockets.asyncio.client import connect

from jetflow.codec.frame import Frame
from jetflow.testing import FakeRelay


async def test_cursor_resumes_after_the_given_seq(corpus_frames: list[bytes]) -> None:
    seq_10 = Frame(corpus_frames[10]).seq
    async with (
        FakeRelay(corpus_frames) as relay,
        connect(
            f"{relay.url}/xrpc/com.atproto.sync.subscribeRepos?cursor={seq_10}", close_timeout=0.1
        ) as ws,
    ):
        first = Frame(await ws.recv())  # type: ignore[arg-type]
    assert first.seq == Frame(corpus_frames[11]).seq
    assert relay.connections[0].cursor == seq_10


async def test_future_cursor_gets_an_error_frame_and_a_close(corpus_frames: list[bytes]) -> None:
    async with (
        FakeRelay(corpus_frames) as relay,
        connect(f"{relay.url}/?cursor=99999999999999") as ws,
    ):
        frame = Frame(await ws.recv())  # type: ignore[arg-type]
        await ws.wait_closed()
    assert frame.is_error and frame.error[0] == "FutureCursor"


async def test_published_frames_reach_live_clients(corpus_frames: list[bytes]) -> None:
    async with FakeRelay([], serve_history_without_cursor=False) as relay, connect(relay.url) as ws:
        await relay.publish(corpus_frames[0])
        assert await ws.recv() == corpus_frames[0]


async def test_drop_fault_cuts_the_connection_without_a_close_frame(
    corpus_frames: list[bytes],
) -> None:
    async with FakeRelay(corpus_frames) as relay:
        relay.drop_after(3)
        async with connect(relay.url) as ws:
            received = [await ws.recv() for _ in range(3)]
            await ws.wait_closed()
            assert ws.close_code is None or ws.close_code == 1006
    assert received == corpus_frames[:3] and relay.connections[0].closed_by_fault == "drop"
