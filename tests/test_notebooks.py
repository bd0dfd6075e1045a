"""Every notebook in ``notebooks/`` runs top to bottom, headless, and is committed without outputs.

The kernel is this interpreter (the project's venv): a kernelspec written to a temporary
``JUPYTER_PATH`` names ``sys.executable``, so nothing has to be registered with Jupyter and
a user-level ``python3`` kernelspec cannot pick another Python.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "jetflow-test"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    jupyter = tmp_path_factory.mktemp("jupyter")
    spec = jupyter / "kernels" / KERNEL
    spec.mkdir(parents=True)
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "jetflow tests",
        "language": "python",
    }
    (spec / "kernel.json").write_text(json.dumps(kernel))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(jupyter))
        patch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # no DeprecationWarning about paths
        patch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        yield KERNEL


def test_the_three_notebooks_are_there() -> None:
    assert {path.name for path in NOTEBOOKS} >= {
        "quickstart.ipynb",
        "windows.ipynb",
        "dashboard.ipynb",
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_committed_notebooks_carry_no_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has outputs: clear them"
            assert cell.execution_count is None, f"{path.name} cell {index} has a count"
    assert "widgets" not in notebook.metadata, f"{path.name} carries widget state"


# Run in the kernel after each notebook: the state its widgets and pipelines ended in.
# (nbclient keeps only the widget updates sent while their own cell runs, so the page's
# widget metadata cannot show updates made by a pipeline running in the background.)
CHECKS = {
    "quickstart": """
assert len(new_posts) == 300
assert list(df.columns[:8]) == [*nb.BASE_COLUMNS, "lang"]
assert set(df["collection"]) == {"app.bsky.feed.post"}
""",
    "windows": """
assert all(sink.done for sink in (per_window, top, operations))
assert operations.total == sum(operations.counts.values()) > 1000
assert "done" in operations.widget.value
# redrawn at least once while the replay ran (once empty, once at the end, and more)
assert per_window.redraws >= 3 and top.redraws >= 3, (per_window.redraws, top.redraws)
assert stats.late == 0 and stats.windows == len(rates)
""",
    "dashboard": """
assert rates.done and rates.redraws >= 3, rates.redraws
assert stats.state == "finished" and stats.events > 1000
assert snapshot["totals"]["events"] > 0
""",
}


def outputs(notebook: Any) -> list[dict[str, Any]]:
    return [output for cell in notebook.cells for output in cell.get("outputs", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom_offline(path: Path, kernel_name: str, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    if path.stem in CHECKS:
        # Before the last cell, which deletes the notebook's temporary directory.
        notebook.cells.insert(-1, nbformat.v4.new_code_cell(CHECKS[path.stem]))
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the traceback, on any error

    produced = outputs(notebook)
    assert not [output for output in produced if output["output_type"] == "error"]
    stderr = [
        output["text"]
        for output in produced
        if output["output_type"] == "stream" and output["name"] == "stderr"
    ]
    assert not [text for text in stderr if "Warning" in text or "Error" in text], stderr
    kinds = {kind for output in produced for kind in output.get("data", {})}
    if path.stem == "quickstart":
        assert "image/png" in kinds  # the plots
    else:
        assert WIDGET_VIEW in kinds  # the live widgets were displayed
