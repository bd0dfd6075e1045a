"""The Prometheus sink, scraped over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jetflow import operators as op
from jetflow.errors import ConfigError
from jetflow.events import Event
from jetflow.operators.window import WindowResult
from jetflow.pipeline import Pipeline
from jetflow.sinks import prometheus
from jetflow.sinks.prometheus import PrometheusSink

S = 1_000_000


def ev(seconds: float, collection: str, lang: str | None = None, *, value: Any = None) -> Event:
    record: dict[str, Any] = {"text": "x"}
    if lang is not None:
        record["langs"] = [lang]
    if value is not None:
        record["reading"] = value
    return Event(
        "commit",
        "did:plc:a",
        round(seconds * S),
        operation="create",
        collection=collection,
        rkey="r",
        record=record,
    )


async def scrape(url: str) -> tuple[int, str, str]:
    """GET ``url`` over a plain socket: (status, content type, body)."""
    host, _, rest = url.removeprefix("http://").partition("/")
    name, _, port = host.partition(":")
    reader, writer = await asyncio.open_connection(name, int(port))
    writer.write(f"GET /{rest} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.decode().partition("\r\n\r\n")
    status = int(head.split()[1])
    content_type = next(
        (
            line.split(":", 1)[1].strip()
            for line in head.splitlines()
            if line.lower().startswith("content-type:")
        ),
        "",
    )
    return status, content_type, body


def samples(body: str) -> dict[str, float]:
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def test_a_counter_of_events_by_label_is_served_on_metrics() -> None:
    sink = prometheus(
        "jetflow_events_total",
        help="Events by collection.",
        labels={"collection": "commit.collection", "lang": "record.langs.0"},
        listen="127.0.0.1:0",
    )
    await sink.start()
    assert sink.url is not None
    for event in [
        ev(1, "app.bsky.feed.post", "en"),
        ev(2, "app.bsky.feed.post", "en"),
        ev(3, "app.bsky.feed.like"),
    ]:
        sink.on_next(event)
    status, content_type, body = await scrape(sink.url)
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert body.splitlines()[:2] == [
        "# HELP jetflow_events_total Events by collection.",
        "# TYPE jetflow_events_total counter",
    ]
    assert samples(body) == {
        'jetflow_events_total{collection="app.bsky.feed.like",lang="none"}': 1,
        'jetflow_events_total{collection="app.bsky.feed.post",lang="en"}': 2,
    }
    missing, _, _ = await scrape(sink.url.replace("/metrics", "/other"))
    assert missing == 404
    sink.close()
    assert await sink.wait_async(5)


async def test_a_gauge_shows_the_newest_window_only() -> None:
    sink = prometheus("posts_per_minute", kind="gauge", key_label="lang", listen=None)
    sink.on_next(WindowResult(0, 60 * S, {"en": 3, "ja": 1}, 4))
    assert sink.samples() == {'posts_per_minute{lang="en"}': 3, 'posts_per_minute{lang="ja"}': 1}
    sink.on_next(WindowResult(60 * S, 120 * S, {"en": 2, None: 5}, 7))
    assert sink.samples() == {'posts_per_minute{lang="en"}': 2, 'posts_per_minute{lang="none"}': 5}
    top = prometheus("top_liked", kind="gauge", key_label="uri", listen=None)
    top.on_next(WindowResult(0, 60 * S, [("at://a", 5), ("at://b", 2)], 7))
    assert top.samples() == {'top_liked{uri="at://a"}': 5, 'top_liked{uri="at://b"}': 2}
    rate = prometheus("likes_per_second", kind="gauge", listen=None)
    assert rate.samples() == {}  # no value before the first window
    rate.on_next(WindowResult(0, 60 * S, 2.5, 150))
    assert rate.samples() == {"likes_per_second": 2.5}


async def test_a_counter_of_windows_adds_up_and_a_gauge_of_events_reads_a_field() -> None:
    counts = prometheus("posts_total", key_label="lang", listen=None)
    counts.on_next(WindowResult(0, 60 * S, {"en": 3}, 3))
    counts.on_next(WindowResult(60 * S, 120 * S, {"en": 2, "ja": 1}, 3))
    assert counts.samples() == {'posts_total{lang="en"}': 5, 'posts_total{lang="ja"}': 1}
    reading = prometheus("sensor_reading", kind="gauge", value="record.reading", listen=None)
    reading.on_next(ev(1, "com.example.sensor.reading", value=20.5))
    reading.on_next(ev(2, "com.example.sensor.reading", value="not a number"))
    assert reading.samples() == {"sensor_reading": 20.5} and reading.skipped == 1


async def test_label_cardinality_is_bounded() -> None:
    sink = prometheus("by_did_total", labels={"did": "did"}, max_series=3, listen=None)
    for n in range(10):
        event = ev(n, "app.bsky.feed.like")
        event.did = f"did:plc:{n}"
        sink.on_next(event)
    assert sink.samples() == {
        'by_did_total{did="did:plc:0"}': 1,
        'by_did_total{did="did:plc:1"}': 1,
        'by_did_total{did="did:plc:2"}': 1,
        'by_did_total{did="_other"}': 7,
    }
    gauge = prometheus("top", kind="gauge", max_series=2, listen=None)
    gauge.on_next(WindowResult(0, 1, {"a": 1, "b": 2, "c": 3, "d": 4}, 10))
    assert gauge.samples() == {'top{key="a"}': 1, 'top{key="b"}': 2, 'top{key="_other"}': 7}


async def test_sinks_with_the_same_address_share_one_listener(unused_port: int) -> None:
    listen = f"127.0.0.1:{unused_port}"
    events = [
        ev(1, "app.bsky.graph.follow"),
        ev(2, "app.bsky.graph.follow"),
        ev(61, "app.bsky.graph.follow"),
    ]
    total = prometheus("jetflow_follows_total", listen=listen)
    per_minute = prometheus(
        "jetflow_follows_last_minute", kind="gauge", key_label="collection", listen=listen
    )
    release = asyncio.Event()

    async def source() -> Any:  # the events, then an open stream until released
        for event in events:
            yield event
        await release.wait()

    pipeline = Pipeline(
        source(),
        [],
        [total, ("minutes", per_minute)],
        streams={"minutes": _stream([op.count_by("commit.collection", window="1m")])},
    )
    handle = pipeline.start()
    while total.stats.received < 3 or total.url is None:
        await asyncio.sleep(0.01)
    status, _, body = await scrape(f"http://{listen}/metrics")
    got = samples(body)
    assert status == 200 and got["jetflow_follows_total"] == 3
    assert "# TYPE jetflow_follows_last_minute gauge" in body
    release.set()
    await handle
    with pytest.raises(OSError):  # the listener closed with the stream
        await scrape(f"http://{listen}/metrics")
    assert per_minute.samples() == {
        'jetflow_follows_last_minute{collection="app.bsky.graph.follow"}': 1
    }


async def test_one_metric_name_per_listener(unused_port: int) -> None:
    listen = f"127.0.0.1:{unused_port}"
    first, second = prometheus("dup_total", listen=listen), prometheus("dup_total", listen=listen)
    await first.start()
    with pytest.raises(ConfigError, match=r"metric dup_total is already served on 127\.0\.0\.1"):
        await second.start()
    first.close()
    assert await first.wait_async(5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"metric": "bad-name"}, "is not a Prometheus metric name"),
        ({"metric": "ok", "labels": {"__x": "did"}}, "is not a Prometheus label name"),
        ({"metric": "ok", "labels": {"x": "nope.x"}}, "field path 'nope.x'"),
        ({"metric": "ok", "kind": "histogram"}, "is not 'counter' or 'gauge'"),
        ({"metric": "ok", "listen": "nowhere"}, "listen: 'nowhere' is not HOST:PORT"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PrometheusSink(**options)


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _stream(operators: list[Any]) -> Any:
    from jetflow.pipeline import Stream

    return Stream("source", operators)
