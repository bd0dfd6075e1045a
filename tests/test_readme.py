"""The README stays true: every server option and variable is documented there."""

from __future__ import annotations

from pathlib import Path

from jetflow.server.config import SETTINGS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_serve_option_and_variable_is_documented() -> None:
    for setting in SETTINGS:
        assert f"`{setting.option}`" in README, setting.option
        for name in setting.env:
            assert f"`{name}`" in README, name


def test_the_two_newcomer_commands_are_there() -> None:
    assert "pip install -e '.[dev]'" in README
    assert "ruff check jetflow tests && mypy && pytest -q" in README
