"""The dashboard's web server over real sockets on 127.0.0.1: files, snapshot, websocket push."""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import socket
import tomllib
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from jetflow import operators as op
from jetflow import sources
from jetflow.dashboard import Dashboard, DashboardServer, DashboardStats
from jetflow.dashboard.server import STATIC, static_file
from jetflow.errors import ConfigError
from jetflow.testing import SyntheticFirehose
from tests.dashboard.helpers import http_get


def counting_snapshot() -> Any:
    calls = {"n": 0}

    def snapshot() -> dict[str, Any]:
        calls["n"] += 1
        return {"calls": calls["n"]}

    return snapshot


async def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return await asyncio.to_thread(http_get, url, headers)


async def test_serves_the_page_its_files_and_a_snapshot() -> None:
    async with DashboardServer(counting_snapshot(), interval=0.5) as server:
        status, headers, body = await get(server.url)
        assert status == 200
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert b'<script src="app.js"' in body and b'href="style.css"' in body
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        # Nothing is fetched from elsewhere: no absolute URL in the page or its script.
        for name in ("", "app.js", "style.css"):
            _, _, text = await get(server.url + name)
            assert b"http://" not in text and b"https://" not in text and b"//cdn" not in text

        status, headers, body = await get(server.url + "app.js")
        assert (status, headers["Content-Type"]) == (200, "text/javascript; charset=utf-8")
        status, headers, _ = await get(server.url + "style.css")
        assert (status, headers["Content-Type"]) == (200, "text/css; charset=utf-8")

        status, headers, body = await get(server.url + "snapshot.json")
        assert (status, headers["Content-Type"]) == (200, "application/json")
        snap = orjson.loads(body)
        assert snap["interval_s"] == 0.5 and "tick" in snap and snap["calls"] >= 1

        assert (await get(server.url + "healthz"))[::2] == (200, b"ok")
        assert (await get(server.url + "../etc/passwd"))[0] == 404
        assert (await get(server.url + "static/app.js"))[0] == 404


async def test_websocket_pushes_a_snapshot_at_once_then_every_interval() -> None:
    async with DashboardServer(counting_snapshot(), interval=0.2) as server:
        loop = asyncio.get_running_loop()
        async with connect(server.url.replace("http", "ws") + "ws") as client:
            arrivals: list[float] = []
            ticks: list[int] = []
            for _ in range(6):
                message = orjson.loads(await asyncio.wait_for(client.recv(), 2))
                arrivals.append(loop.time())
                ticks.append(message["tick"])
        assert ticks == sorted(ticks) and len(set(ticks)) == 6
        gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
        assert max(gaps) < 0.6, gaps  # 0.2 s apart, with room for a busy machine
        assert sum(gaps) / len(gaps) == pytest.approx(0.2, abs=0.08)


async def test_a_websocket_from_another_origin_is_refused() -> None:
    async with DashboardServer(counting_snapshot()) as server:
        ws_url = server.url.replace("http", "ws") + "ws"
        with pytest.raises(InvalidStatus) as caught:
            async with connect(ws_url, origin="http://evil.example"):
                pass
        assert caught.value.response.status_code == 403
        same_origin = f"http://127.0.0.1:{server.port}"
        async with connect(ws_url, origin=same_origin) as client:
            assert orjson.loads(await client.recv())["tick"] == 0


@pytest.mark.parametrize("interval", [0, -1, 1.5])
def test_an_interval_over_a_second_or_not_positive_is_refused(interval: float) -> None:
    with pytest.raises(ConfigError, match="interval"):
        DashboardServer(counting_snapshot(), interval=interval)


async def test_a_port_in_use_is_a_config_error_naming_the_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = DashboardServer(counting_snapshot(), port=taken.getsockname()[1])
        with pytest.raises(ConfigError, match="--port"):
            await server.start()


async def test_dashboard_counts_a_stream_and_serves_its_snapshot() -> None:
    frames = list(SyntheticFirehose(5).frames(300))
    events = sources.memory(frames).pipe(op.decode(time="relay"))
    stats = DashboardStats(source="memory", time_basis="relay")
    async with Dashboard(events, stats=stats, interval=0.2) as dashboard:
        for _ in range(200):
            if stats.state == "finished":
                break
            await asyncio.sleep(0.02)
        _, _, body = await get(dashboard.url + "snapshot.json")
    snap = orjson.loads(body)
    assert snap["state"] == "finished" and snap["has_source"] is True
    assert snap["server"] is None
    assert snap["totals"]["events"] == stats.events > 250
    assert sum(snap["totals"]["by_kind"].values()) == stats.events


def test_every_static_file_is_declared_as_package_data() -> None:
    # A file missing from [tool.setuptools.package-data] would be left out of the wheel.
    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["jetflow.dashboard"]
    static = root / "jetflow" / "dashboard" / "static"
    shipped = {path.name for path in static.iterdir()}
    assert shipped >= {"index.html", "app.js", "style.css"}
    for name in shipped:
        assert any(fnmatch.fnmatch(f"static/{name}", pattern) for pattern in patterns), name
    for name, _ in STATIC.values():
        assert static_file(name)
