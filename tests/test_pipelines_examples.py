"""The example pipelines in ``pipelines/``: each lints clean and passes its own test, run by
the real ``jetflow lint`` / ``jetflow test`` commands; the Python twins run too."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "pipelines"
PIPELINES = sorted(path for path in EXAMPLES.glob("*.yaml") if not path.stem.endswith("_test"))
NEEDS_PYTHON = {"shouting_posts"}


def jetflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jetflow", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_there_are_at_least_six_examples_each_with_a_test() -> None:
    assert len(PIPELINES) >= 6
    for path in PIPELINES:
        assert path.with_name(f"{path.stem}_test.yaml").is_file(), path.name
        assert path.stem in (EXAMPLES / "README.md").read_text(), path.name


def test_every_example_and_its_test_file_lints_clean() -> None:
    files = [str(path.relative_to(ROOT)) for path in sorted(EXAMPLES.glob("*.yaml"))]
    result = jetflow("lint", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"{file}: ok" for file in files]


@pytest.fixture(scope="module")
def test_run() -> subprocess.CompletedProcess[str]:
    """``jetflow test`` over every example at once (one process: startup costs a second)."""
    return jetflow("test", "--allow-python", *(str(p.relative_to(ROOT)) for p in PIPELINES))


@pytest.mark.parametrize("path", PIPELINES, ids=lambda path: path.stem)
def test_every_example_passes_its_own_test(
    path: Path, test_run: subprocess.CompletedProcess[str]
) -> None:
    assert test_run.returncode == 0, test_run.stdout + test_run.stderr
    header = f"{path.relative_to(ROOT)} ({path.stem}_test.yaml)"
    lines = test_run.stdout.splitlines()
    assert header in lines, test_run.stdout
    section = []
    for line in lines[lines.index(header) + 1 :]:
        if not line.startswith(" "):
            break
        section.append(line)
    assert section and all(line.startswith("  PASS  ") for line in section), section


def test_python_examples_need_allow_python() -> None:
    result = jetflow(
        "test", *(str(p.relative_to(ROOT)) for p in PIPELINES if p.stem in NEEDS_PYTHON)
    )
    assert result.returncode == 2 and "allow it with --allow-python" in result.stdout


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_python_twin_of_posts_per_minute_gives_the_same_windows(
    synthetic_capture: Path,
) -> None:
    from jetflow.pipeline_files import plan_file
    from jetflow.sources import replay
    from jetflow.testing import CollectingSink

    plan, problems = plan_file(EXAMPLES / "posts_per_minute_by_language.yaml")
    assert plan is not None and not problems
    from_file: CollectingSink[bytes] = CollectingSink()
    plan.build(source=replay(synthetic_capture), sink_for=lambda _: from_file).run()
    twin = load("posts_per_minute_by_language").build(str(synthetic_capture))
    from_python: CollectingSink[bytes] = CollectingSink()
    twin.outputs[0] = type(twin.outputs[0])(from_python)
    twin.run()
    assert from_python.items == from_file.items and len(from_file.items) == 1


async def test_the_python_twin_of_the_keyword_stream_serves_websocket_clients(
    synthetic_capture: Path,
) -> None:
    from websockets.asyncio.client import connect

    pipeline = load("keyword_stream").build(str(synthetic_capture), listen="127.0.0.1:0")
    sink = pipeline.outputs[0].sink
    handle = pipeline.start()
    while sink.url is None:
        await asyncio.sleep(0.01)
    async with connect(sink.url) as client:
        message = await client.recv()
    await handle.stop()
    assert "app.bsky.feed.post" in str(message)
