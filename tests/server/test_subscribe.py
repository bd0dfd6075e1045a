"""``GET /subscribe`` parameters, limits, compression, ``requireHello`` and ``options_update``
against a real ``jetflow serve`` (spec §3–§7, §12, with the §0 fixes)."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
import zstandard
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from jetflow.codec.zstd import V1_DICTIONARY_ID, frame_dictionary_id
from tests.server.harness import ServeProcess, http_get, parsed, receive, without_time

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def wire(ingested: ServeProcess, synthetic_events: list[dict[str, Any]]) -> list[str]:
    """Every stored event as sent, with the server's time_us (one full replay)."""
    async with connect(f"{ingested.url}/subscribe?cursor=0", max_size=None) as websocket:
        messages = await receive(websocket, len(synthetic_events))
    assert len(messages) == len(synthetic_events)
    return [message for message in messages if isinstance(message, str)]


@pytest.fixture(scope="module")
def stored(wire: list[str]) -> list[dict[str, Any]]:
    return parsed(wire)


async def subscribe(
    server: ServeProcess, query: str, count: int | None = None, **options: Any
) -> list[Any]:
    # A short close timeout: leaving mid-replay, the server's close frame sits behind data.
    async with connect(
        f"{server.url}/subscribe?{query}", max_size=None, close_timeout=0.2, **options
    ) as websocket:
        return await receive(websocket, count, idle=0.7)


def commits(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for event in events if event["kind"] == "commit"]


# -- replay and filters --------------------------------------------------------------------------


async def test_cursor_zero_replays_every_event_in_relay_order(
    stored: list[dict[str, Any]], synthetic_events: list[dict[str, Any]]
) -> None:
    assert [without_time(event) for event in stored] == synthetic_events
    stamps = [event["time_us"] for event in stored]
    assert all(a < b for a, b in itertools.pairwise(stamps))


async def test_wanted_collections_match_exact_names_and_prefixes(
    ingested: ServeProcess, stored: list[dict[str, Any]]
) -> None:
    query = "cursor=0&wantedCollections=app.bsky.feed.like&wantedCollections=app.bsky.graph.*"
    got = parsed(await subscribe(ingested, query))
    wanted = [
        event
        for event in stored
        if event["kind"] != "commit"  # identity and account pass collection filters (spec §4)
        or event["commit"]["collection"] == "app.bsky.feed.like"
        or event["commit"]["collection"].startswith("app.bsky.graph.")
    ]
    assert got == wanted
    assert {e["kind"] for e in got} == {"commit", "identity", "account"}


async def test_prefix_keeps_its_dot(ingested: ServeProcess, stored: list[dict[str, Any]]) -> None:
    got = parsed(
        await subscribe(
            ingested, "cursor=0&wantedCollections=app.bsky.feed.*&wantedDids=did:plc:none"
        )
    )
    assert got == []
    got = parsed(await subscribe(ingested, "cursor=0&wantedCollections=app.bs.*"))
    assert commits(got) == []


async def test_wanted_dids_filter_every_kind(
    ingested: ServeProcess, stored: list[dict[str, Any]]
) -> None:
    dids = sorted({event["did"] for event in stored if event["kind"] == "identity"})[:3]
    dids.append(stored[0]["did"])
    query = "cursor=0&" + "&".join(f"wantedDids={did}" for did in dids)
    got = parsed(await subscribe(ingested, query))
    assert got == [event for event in stored if event["did"] in dids]
    assert {event["kind"] for event in got} >= {"commit", "identity"}


async def test_cursor_is_inclusive_and_numeric(
    ingested: ServeProcess, stored: list[dict[str, Any]]
) -> None:
    cursor = stored[100]["time_us"]
    got = parsed(await subscribe(ingested, f"cursor={cursor}", 5))
    assert got == stored[100:105]
    # A short cursor is a number, not text: it replays everything (v1 compares text).
    assert parsed(await subscribe(ingested, "cursor=5", 3)) == stored[:3]
    assert parsed(await subscribe(ingested, "cursor=-42", 3)) == stored[:3]
    assert parsed(await subscribe(ingested, "cursor=%2B0", 3)) == stored[:3]


async def test_future_cursor_and_no_cursor_are_a_live_tail(ingested: ServeProcess) -> None:
    future = time.time_ns() // 1000 + 3600 * 10**6
    assert await subscribe(ingested, f"cursor={future}") == []
    assert await subscribe(ingested, "") == []


async def test_cursor_between_the_newest_event_and_now_goes_live_without_replaying_the_store(
    ingested: ServeProcess, stored: list[dict[str, Any]]
) -> None:
    assert await subscribe(ingested, f"cursor={stored[-1]['time_us'] + 1}") == []


# -- compression --------------------------------------------------------------------------------


async def test_compress_true_sends_binary_zstd_frames_with_the_v1_dictionary(
    ingested: ServeProcess, stored: list[dict[str, Any]], dictionary_path: Path
) -> None:
    messages = await subscribe(ingested, "cursor=0&compress=true")
    assert messages and all(isinstance(message, bytes) for message in messages)
    assert {frame_dictionary_id(message) for message in messages} == {V1_DICTIONARY_ID}
    dictionary = zstandard.ZstdCompressionDict(dictionary_path.read_bytes())
    decoder = zstandard.ZstdDecompressor(dict_data=dictionary)
    decoded = [orjson.loads(decoder.decompressobj().decompress(message)) for message in messages]
    assert decoded == stored
    assert any(len(message) < 256 for message in messages)  # small frames decode too


async def test_socket_encoding_header_turns_compression_on(
    ingested: ServeProcess, stored: list[dict[str, Any]], dictionary_path: Path
) -> None:
    messages = await subscribe(
        ingested, "cursor=0", 3, additional_headers={"Socket-Encoding": "gzip, zstd"}
    )
    assert parsed(messages, dictionary_path.read_bytes()) == stored[:3]
    text = await subscribe(ingested, "cursor=0&compress=True", 1)
    assert isinstance(text[0], str)  # only exactly "true" counts


# -- size cap ---------------------------------------------------------------------------------


async def test_max_message_size_skips_bigger_events(
    ingested: ServeProcess, wire: list[str]
) -> None:
    messages = await subscribe(ingested, "cursor=0&maxMessageSizeBytes=600")
    assert messages == [message for message in wire if len(message.encode()) <= 600]
    assert len(messages) < len(wire)


async def test_max_message_size_counts_compressed_bytes_when_compressed(
    ingested: ServeProcess, dictionary_path: Path
) -> None:
    messages = await subscribe(ingested, "cursor=0&compress=true&maxMessageSizeBytes=300")
    assert messages and all(len(message) <= 300 for message in messages)
    assert any(
        len(event) > 300
        for event in (orjson.dumps(e) for e in parsed(messages, dictionary_path.read_bytes()))
    )


@pytest.mark.parametrize("value", ["4294967296", "4294967297", "0", "-5", "abc", ""])
async def test_max_message_size_values_that_mean_no_limit(
    ingested: ServeProcess, stored: list[dict[str, Any]], value: str
) -> None:
    got = parsed(await subscribe(ingested, f"cursor=0&maxMessageSizeBytes={value}"))
    assert len(got) == len(stored)


# -- bad requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ("cursor=abc", "invalid cursor: abc"),
        ("cursor=1.5", "invalid cursor: 1.5"),
        ("cursor=99999999999999999999", "invalid cursor: 99999999999999999999"),
        ("cursor=abc&cursor=1", "invalid cursor: abc"),
        ("cursor=%E2%9C%93", "invalid cursor: \u2713"),
        (
            "wantedCollections=app.bsky.graph.fo*",
            "invalid subscriber options: invalid collection: app.bsky.graph.fo*",
        ),
        ("wantedCollections=*", "invalid subscriber options: invalid collection: *"),
        (
            "wantedCollections=app+bsky.feed.post",
            "invalid subscriber options: invalid collection: app bsky.feed.post",
        ),
        (
            "wantedCollections=%C3%A9t%C3%A9.bsky.post",
            "invalid subscriber options: invalid collection: \u00e9t\u00e9.bsky.post",
        ),
        ("wantedDids=notadid", "invalid subscriber options"),
        ("wantedDids=did:plc:ok&wantedDids=did:PLC:bad", "invalid subscriber options"),
        (
            "&".join(f"wantedCollections=a.b.c{n}" for n in range(101)),
            "invalid subscriber options: too many wanted collections",
        ),
    ],
)
async def test_bad_parameters_get_http_400_with_jetstream_text(
    ingested: ServeProcess, query: str, body: str
) -> None:
    with pytest.raises(InvalidStatus) as raised:
        async with connect(f"{ingested.url}/subscribe?{query}"):
            pass
    response = raised.value.response
    assert response.status_code == 400
    assert response.body.decode() == body


async def test_one_hundred_collections_and_duplicate_names_are_accepted(
    ingested: ServeProcess,
) -> None:
    query = (
        "&".join(f"wantedCollections=a.b.c{n}" for n in range(100)) + "&wantedCollections=a.b.c1"
    )
    got = parsed(await subscribe(ingested, query + "&cursor=0"))
    assert got and {event["kind"] for event in got} <= {"identity", "account"}  # no commit matches


async def test_pairs_holding_a_semicolon_are_dropped_like_go(
    ingested: ServeProcess, stored: list[dict[str, Any]]
) -> None:
    # "cursor=0;x=1" is one pair with a ';': dropped, so there is no cursor and no replay.
    assert await subscribe(ingested, "cursor=0;x=1") == []
    assert parsed(await subscribe(ingested, "x=1;&cursor=0", 2)) == stored[:2]


async def test_http_routes(ingested: ServeProcess) -> None:
    assert http_get(f"{ingested.http}/") == (200, b"Welcome to Jetstream")
    assert http_get(f"{ingested.http}/healthz") == (200, b"ok")
    assert http_get(f"{ingested.http}/readyz") == (200, b"ready")
    assert http_get(f"{ingested.http}/nope") == (404, b'{"message":"Not Found"}')
    status, body = http_get(f"{ingested.http}/subscribe?cursor=x")
    assert (status, body) == (400, b"invalid cursor: x")


# -- requireHello and options_update ---------------------------------------------------------


async def test_require_hello_sends_nothing_until_a_valid_options_update(
    ingested: ServeProcess, stored: list[dict[str, Any]]
) -> None:
    async with connect(
        f"{ingested.url}/subscribe?cursor=0&requireHello=true", max_size=None
    ) as websocket:
        assert await receive(websocket, idle=0.5) == []
        await websocket.send(orjson.dumps({"type": "ping"}).decode())  # unknown types are ignored
        await websocket.send(b"\x00binary frames are ignored")
        assert await receive(websocket, idle=0.3) == []
        update = {
            "type": "options_update",
            "payload": {"wantedCollections": ["app.bsky.graph.follow"]},
        }
        await websocket.send(orjson.dumps(update).decode())
        got = parsed(await receive(websocket, idle=0.7))
    wanted = [
        e
        for e in stored
        if e["kind"] != "commit" or e["commit"]["collection"] == "app.bsky.graph.follow"
    ]
    assert got == wanted


@pytest.mark.parametrize("payload", ["{}", "null"])
async def test_an_empty_or_null_payload_clears_the_filters(
    ingested: ServeProcess, stored: list[dict[str, Any]], payload: str
) -> None:
    query = "cursor=0&requireHello=true&wantedCollections=app.bsky.feed.like"
    async with connect(f"{ingested.url}/subscribe?{query}", max_size=None) as websocket:
        await websocket.send('{"type":"options_update","payload":' + payload + "}")
        got = parsed(await receive(websocket, len(stored)))
    assert got == stored


async def test_field_names_match_case_insensitively_like_go(
    ingested: ServeProcess, stored: list[dict[str, Any]]
) -> None:
    message = (
        '{"TYPE":"options_update","Payload":{"WANTEDDIDS":["'
        + stored[0]["did"]
        + '"],"unknown":1}}'
    )
    async with connect(
        f"{ingested.url}/subscribe?cursor=0&requireHello=true", close_timeout=0.2
    ) as websocket:
        await websocket.send(message)
        got = parsed(await receive(websocket))
    assert got == [e for e in stored if e["did"] == stored[0]["did"]]


async def test_max_message_size_from_options_update_is_applied(
    ingested: ServeProcess, wire: list[str]
) -> None:
    async with connect(f"{ingested.url}/subscribe?cursor=0&requireHello=true") as websocket:
        await websocket.send('{"type":"options_update","payload":{"maxMessageSizeBytes":500}}')
        got = await receive(websocket)
    assert got == [message for message in wire if len(message.encode()) <= 500]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("{not json", "invalid message"),
        (
            '{"type":"options_update"}',
            "invalid options_update payload: unexpected end of JSON input",
        ),
        (
            '{"type":"options_update","payload":[]}',
            "invalid options_update payload: cannot unmarshal array",
        ),
        (
            '{"type":"options_update","payload":{"wantedCollections":"app.bsky.feed.post"}}',
            "wantedCollections must be an array",
        ),
        (
            '{"type":"options_update","payload":{"wantedCollections":["nope"]}}',
            "invalid subscriber options: invalid collection: nope",
        ),
        ('{"type":"options_update","payload":{"wantedDids":["x"]}}', "invalid subscriber options"),
        (
            '{"type":"options_update","payload":{"maxMessageSizeBytes":"5"}}',
            "cannot unmarshal string into maxMessageSizeBytes",
        ),
        (
            '{"type":"options_update","payload":{"maxMessageSizeBytes":1.5}}',
            "cannot unmarshal number into maxMessageSizeBytes",
        ),
        ('{"type":5}', "type must be a string"),
        ('{"type":"options_update","payload":{}} trailing', "invalid message"),
    ],
)
async def test_an_invalid_options_update_closes_with_1000_and_the_reason(
    ingested: ServeProcess, message: str, reason: str
) -> None:
    async with connect(f"{ingested.url}/subscribe?requireHello=true") as websocket:
        await websocket.send(message)
        await websocket.wait_closed()
    assert websocket.close_code == 1000
    assert websocket.close_reason is not None and reason in websocket.close_reason
    assert len(websocket.close_reason.encode()) <= 123


async def test_too_many_dids_in_an_options_update(ingested: ServeProcess) -> None:
    dids = [f"did:plc:{n:024d}" for n in range(10_001)]
    async with connect(f"{ingested.url}/subscribe?requireHello=true") as websocket:
        await websocket.send(
            orjson.dumps({"type": "options_update", "payload": {"wantedDids": dids}}).decode()
        )
        await websocket.wait_closed()
    assert (websocket.close_code, websocket.close_reason) == (
        1000,
        "invalid subscriber options: too many wanted DIDs",
    )


async def test_ten_thousand_dids_fit_in_an_options_update(
    ingested: ServeProcess, stored: list[dict[str, Any]]
) -> None:
    dids = [f"did:plc:{n:024d}" for n in range(9_999)] + [stored[0]["did"]]
    async with connect(
        f"{ingested.url}/subscribe?cursor=0&requireHello=true", max_size=None
    ) as websocket:
        await websocket.send(
            orjson.dumps({"type": "options_update", "payload": {"wantedDids": dids}}).decode()
        )
        got = parsed(await receive(websocket))
    assert got == [e for e in stored if e["did"] == stored[0]["did"]]


async def test_an_oversize_client_message_is_refused_without_hurting_others(
    ingested: ServeProcess,
) -> None:
    async with connect(
        f"{ingested.url}/subscribe?cursor=0", max_size=None, close_timeout=0.2
    ) as bystander:
        # No "async with": the server ends this connection itself, mid-send.
        websocket = await connect(f"{ingested.url}/subscribe?requireHello=true", max_size=None)
        sending = asyncio.create_task(websocket.send("x" * 10_000_001))
        await websocket.wait_closed()
        await asyncio.gather(sending, return_exceptions=True)
        assert websocket.close_code == 1009  # refused by its size, not read whole
        assert len(await receive(bystander, 10)) == 10


# -- observability ---------------------------------------------------------------------------


async def test_metrics_use_jetstream_names_and_no_address_labels(ingested: ServeProcess) -> None:
    status, body = http_get(f"http://127.0.0.1:{ingested.metrics_port}/metrics")
    text = body.decode()
    assert status == 200
    for name in (
        "jetstream_subscribers_connected",
        "jetstream_events_emitted_total",
        "jetstream_events_delivered_total",
        "consumer_events_processed_total",
        "consumer_last_seq",
        "consumer_events_persisted_total",
        "process_resident_memory_bytes",
    ):
        assert f"\n{name}" in text or text.startswith(name)
    assert "ip_address" not in text and "address=" not in text
    assert "\njetstream_subscribers_connected " in text  # one unlabelled series


async def test_delivered_counters_include_subscribers_still_connected(
    ingested: ServeProcess, synthetic_events: list[dict[str, Any]]
) -> None:
    events_before = ingested.metric("jetstream_events_delivered_total")
    bytes_before = ingested.metric("jetstream_bytes_delivered_total")
    async with connect(f"{ingested.url}/subscribe?cursor=0", max_size=None) as websocket:
        received = await receive(websocket, 10)
        events_now = ingested.metric("jetstream_events_delivered_total")
        bytes_now = ingested.metric("jetstream_bytes_delivered_total")
        assert events_now - events_before >= 10
        assert bytes_now - bytes_before >= sum(len(message) for message in received)
    await asyncio.sleep(0.2)  # after the disconnect: counted once, not twice
    events_after = ingested.metric("jetstream_events_delivered_total")
    assert events_now <= events_after <= events_before + len(synthetic_events)


async def test_connect_and_disconnect_are_logged_with_the_reason(ingested: ServeProcess) -> None:
    async with connect(
        f"{ingested.url}/subscribe?wantedCollections=app.bsky.feed.post"
    ) as websocket:
        await websocket.send('{"type":"options_update","payload":{"wantedDids":["bad"]}}')
        await websocket.wait_closed()
    await asyncio.sleep(0.2)
    disconnected = ingested.logged("subscriber disconnected")[-1]
    connected = [
        e
        for e in ingested.logged("subscriber connected")
        if e["subscriber"] == disconnected["subscriber"]
    ]
    assert connected and connected[0]["collections"] == 1
    assert disconnected["reason"] == "invalid subscriber options"
