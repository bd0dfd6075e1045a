"""The dashboard page in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

``jetflow dashboard`` runs as a subprocess fed by a replayed synthetic capture (and, in the
second test, by a real ``jetflow serve`` that a real ``jetflow relay`` feeds). The tests read
the numbers the way a person would, from the page's text, and compare them with what was
replayed, counted independently here.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``; another binary can be named by
``JETFLOW_CHROMIUM``) and ``pip install playwright`` (the ``dev`` extra); never
``playwright install``.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from websockets.sync.client import connect

from jetflow.testing import write_capture
from tests.dashboard.helpers import (
    Expected,
    Process,
    expected_counts,
    free_port,
    http_get,
    start_dashboard,
    wait_until,
)

CHROMIUM = os.environ.get("JETFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FRAMES = 3000
REPLAY_RATE = 1000  # frames per second: the replay runs for about three seconds

# Playwright evaluates a string predicate with eval(), which the page's CSP forbids: functions.
SUBSCRIBERS = "() => document.getElementById('server-subscribers').textContent === '{}'"

# Installed before the page's own script: records every change of the total the page shows.
OBSERVE_TOTAL = """
window.__totals = [];
document.addEventListener("DOMContentLoaded", () => {
  const target = document.getElementById("total-events");
  new MutationObserver(() => {
    window.__totals.push([performance.now(), target.textContent]);
  }).observe(target, { childList: true, characterData: true, subtree: true });
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (or set JETFLOW_CHROMIUM)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser") / "synthetic.bin.zst"
    write_capture(path, FRAMES, seed=21)
    return path


class Watched:
    """A page with everything it requested and every error it logged."""

    def __init__(self, browser: Browser) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1200, "height": 1000})
        self.requests: list[str] = []
        self.sockets: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("websocket", lambda socket: self.sockets.append(socket.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)
        self.page.add_init_script(OBSERVE_TOTAL)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def number(self, selector: str) -> int:
        return int(self.text(selector).replace(",", ""))

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text().strip()

    def table(self, table_id: str) -> dict[str, list[str]]:
        """Visible cell texts of a table, by the text of each row's first cell."""
        rows: list[list[str]] = self.page.eval_on_selector_all(
            f"#{table_id} tbody tr",
            "rows => rows.map(row => Array.from(row.cells, cell => cell.innerText.trim()))",
        )
        return {cells[0]: cells[1:] for cells in rows}

    def close(self) -> None:
        self.page.close()


def as_int(text: str) -> int:
    return int(text.replace(",", ""))


def shown_seconds(text: str) -> tuple[float, float]:
    """The range of durations a lag text like ``329 d 10 h`` or ``4.2 s`` stands for."""
    parts = re.findall(r"([\d.]+) (d|h|min|s)\b", text)
    assert parts, text
    size = {"d": 86400, "h": 3600, "min": 60, "s": 1}
    low = sum(float(number) * size[unit] for number, unit in parts)
    return low, low + size[parts[-1][1]]


def test_page_shows_the_replayed_numbers_and_updates_every_second(
    browser: Browser, capture: Path
) -> None:
    expected: Expected = expected_counts(capture)
    process, url = start_dashboard(
        "--replay", str(capture), "--rate", str(REPLAY_RATE), "--top", "20", "--interval", "0.5"
    )
    watched = Watched(browser)
    try:
        watched.page.goto(url)
        watched.page.wait_for_function(
            "() => document.body.dataset.state === 'running'", timeout=10_000
        )
        watched.page.wait_for_function(
            "() => document.body.dataset.state === 'finished'", timeout=30_000
        )
        # One more push after the end, to be sure nothing changes once finished.
        ticks = int(watched.page.evaluate("document.body.dataset.tick"))
        watched.page.wait_for_function(f"() => Number(document.body.dataset.tick) > {ticks}")

        # Totals, as shown.
        assert watched.number("#total-events") == expected.events
        assert watched.number("#total-collections") == len(expected.by_collection)
        kinds = watched.table("kinds")
        assert {kind: as_int(cells[0]) for kind, cells in kinds.items()} == dict(expected.by_kind)
        operations = watched.table("operations")
        assert {name: as_int(cells[0]) for name, cells in operations.items()} == dict(
            expected.by_operation
        )
        commits = sum(expected.by_operation.values())
        for name, cells in operations.items():
            assert cells[1] == f"{100 * expected.by_operation[name] / commits:.1f}%"
        collections = watched.table("collections")
        assert {name: as_int(cells[0]) for name, cells in collections.items()} == dict(
            expected.by_collection
        )
        assert list(collections) == [
            name for name, _ in sorted(expected.by_collection.items(), key=lambda i: (-i[1], i[0]))
        ]

        # Lag behind the relay: now minus the relay time of the latest event.
        latest = datetime.fromtimestamp(expected.latest_time_us / 1e6, UTC)
        latest_text = latest.strftime("%Y-%m-%dT%H:%M:%S.") + f"{latest.microsecond // 1000:03d}Z"
        assert watched.text("#latest-time") == f"latest event {latest_text}"
        assert watched.text("#lag-label") == "lag behind the relay"
        low, high = shown_seconds(watched.text("#lag"))
        true_lag = time.time() - expected.latest_time_us / 1e6
        assert low - 5 <= true_lag <= high + 5, (watched.text("#lag"), true_lag)

        # Updates: pushed every 0.5 s, so no gap of a second between two renders; and the
        # total the page showed grew step by step while the replay ran.
        renders: list[float] = watched.page.evaluate("window.jetflowDashboard.renderTimes")
        gaps = [later - earlier for earlier, later in itertools.pairwise(renders)]
        assert len(renders) >= 5 and max(gaps) <= 1000, gaps
        totals: list[list[Any]] = watched.page.evaluate("window.__totals")
        values = [as_int(text) for _, text in totals if text != "–"]
        assert values == sorted(values) and values[-1] == expected.events
        growing = sorted(set(values))
        assert len(growing) >= 3, values  # seen at least twice before the end
        times = [at for at, text in totals if text != "–"]
        assert max(b - a for a, b in itertools.pairwise(times)) <= 1000

        # Everything came from the dashboard itself.
        assert all(request.startswith(url) for request in watched.requests), watched.requests
        assert watched.sockets == [url.replace("http://", "ws://") + "ws"]
        assert watched.errors == []
    finally:
        watched.close()
        assert process.stop() == 0


def test_page_shows_the_subscribers_of_a_jetflow_server(
    browser: Browser, capture: Path, tmp_path: Path
) -> None:
    relay = Process("relay", str(capture), "--port", "0", stdout_lines=1)
    listen, metrics = free_port(), free_port()
    serve = Process(
        "serve",
        "--relay",
        relay.lines[0].rsplit(" ", 1)[1],
        "--listen",
        f"127.0.0.1:{listen}",
        "--metrics-listen",
        f"127.0.0.1:{metrics}",
        "--data-dir",
        str(tmp_path / "data"),
    )
    processes = [relay, serve]
    watched: Watched | None = None
    try:
        wait_until(lambda: _ready(listen), timeout=20)
        metrics_url = f"http://127.0.0.1:{metrics}/metrics"
        emitted = wait_until(lambda: _stable_metric(metrics_url, "jetstream_events_emitted_total"))
        # cursor=1: replay every stored event, so the page's total can be checked too.
        dashboard, url = start_dashboard(
            "--jetstream",
            f"ws://127.0.0.1:{listen}",
            "--cursor",
            "1",
            "--server-metrics",
            metrics_url,
        )
        processes.append(dashboard)
        watched = Watched(browser)
        watched.page.goto(url)
        page = watched.page
        page.wait_for_selector("#server-panel:not([hidden])")
        # The dashboard's own Jetstream connection is the server's one subscriber.
        page.wait_for_function(SUBSCRIBERS.format(1))
        assert watched.text("#server-relay") == "connected"
        assert watched.text("#server-status") == "ok"
        assert watched.text("#server-url") == metrics_url
        assert watched.text("#server-emitted-total") == f"{emitted:,} in all"
        page.wait_for_function(
            f"() => document.getElementById('total-events').textContent === '{emitted:,}'"
        )
        assert watched.text("#lag-label") == "lag behind Jetstream"

        with connect(f"ws://127.0.0.1:{listen}/subscribe"):
            page.wait_for_function(SUBSCRIBERS.format(2))
        page.wait_for_function(SUBSCRIBERS.format(1))
        assert watched.errors == []
    finally:
        if watched is not None:
            watched.close()
        for process in reversed(processes):
            process.stop()


def _ready(port: int) -> bool:
    try:
        status, _, body = http_get(f"http://127.0.0.1:{port}/readyz")
    except OSError:
        return False
    return (status, body) == (200, b"ready")


def _stable_metric(url: str, name: str) -> int | None:
    """The metric's value once two scrapes 0.3 s apart agree and it is above 0."""

    def read() -> float:
        _, _, body = http_get(url)
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not in {url}: {orjson.dumps(body.decode()[:200])!r}")

    first = read()
    time.sleep(0.3)
    second = read()
    return int(second) if second == first and second > 0 else None
