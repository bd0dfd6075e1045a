"""Reading a jetflow server's /metrics: the parser, the summary, a failing scrape."""

from __future__ import annotations

import pytest

from jetflow.dashboard.server_metrics import ServerMetricsPoller, metrics_url, parse_metrics
from jetflow.errors import ConfigError
from jetflow.server.telemetry import ServerMetrics
from tests.dashboard.helpers import free_port


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_parse_metrics_reads_labels_escapes_and_ignores_comments_and_timestamps() -> None:
    text = (
        "# HELP x A metric.\n"
        "# TYPE x counter\n"
        "plain 3\n"
        'labelled{a="1",b="say \\"hi\\"\\n",c="back\\\\slash"} 2.5 1700000000000\n'
        "\n"
        "broken{a=1} 4\n"
        "not_a_number abc\n"
        "inf_value +Inf\n"
    )
    assert parse_metrics(text) == {
        "plain": [({}, 3.0)],
        "labelled": [({"a": "1", "b": 'say "hi"\n', "c": "back\\slash"}, 2.5)],
        "inf_value": [({}, float("inf"))],
    }


def test_summary_of_a_real_jetflow_server_registry() -> None:
    server = ServerMetrics("ws://127.0.0.1:1")
    server.subscribers.set(3)
    server.emitted.inc(10)
    server.dropped.labels("too slow").inc(2)
    server.dropped.labels("rate limited").inc(1)
    server.rejected.inc(4)
    server.relay_connected.set(1)
    server.last_seq.set(12345)
    clock = FakeClock()
    poller = ServerMetricsPoller("http://127.0.0.1:6009", clock=clock)
    poller.update(server.registry.render().decode())

    snap = poller.snapshot()
    assert snap["url"] == "http://127.0.0.1:6009/metrics"
    assert snap["ok"] is True
    assert snap["subscribers"] == 3
    assert snap["relay_connected"] is True
    assert snap["emitted_total"] == 10
    assert snap["emitted_rate"] is None  # one scrape gives no rate yet
    assert snap["dropped"] == {"rate limited": 1, "too slow": 2}
    assert snap["dropped_total"] == 3
    assert snap["rejected_total"] == 4
    assert snap["last_seq"] == 12345
    assert snap["memory_bytes"] and snap["memory_bytes"] > 0

    # Two seconds later 30 more events were emitted: 15 events/s.
    server.emitted.inc(30)
    server.subscribers.dec()
    clock.now = 2.0
    poller.update(server.registry.render().decode())
    clock.now = 2.5
    snap = poller.snapshot()
    assert snap["emitted_rate"] == pytest.approx(15.0)
    assert snap["subscribers"] == 2
    assert snap["age_s"] == pytest.approx(0.5)


async def test_a_failed_scrape_is_reported_and_keeps_the_last_numbers() -> None:
    poller = ServerMetricsPoller(f"http://127.0.0.1:{free_port()}/metrics", timeout=1.0)
    poller.update("jetstream_subscribers_connected 7\n")
    await poller.poll()
    snap = poller.snapshot()
    assert snap["ok"] is False
    assert snap["error"] and "refused" in snap["error"].lower()
    assert snap["subscribers"] == 7
    assert poller.failures == 1


def test_missing_metrics_read_as_none() -> None:
    poller = ServerMetricsPoller("http://127.0.0.1:6009/metrics")
    poller.update("something_else 1\n")
    snap = poller.snapshot()
    assert snap["subscribers"] is None
    assert snap["relay_connected"] is None
    assert snap["emitted_total"] is None
    assert snap["dropped_total"] == 0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:6009", "http://127.0.0.1:6009/metrics"),
        ("http://127.0.0.1:6009/", "http://127.0.0.1:6009/metrics"),
        ("https://example.org/custom/path?x=1", "https://example.org/custom/path?x=1"),
    ],
)
def test_metrics_url_adds_the_default_path(given: str, expected: str) -> None:
    assert metrics_url(given) == expected


@pytest.mark.parametrize("url", ["ws://127.0.0.1:6009", "127.0.0.1:6009", "http://"])
def test_metrics_url_refuses_what_is_not_http(url: str) -> None:
    with pytest.raises(ConfigError, match="--server-metrics"):
        metrics_url(url)
