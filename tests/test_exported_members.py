"""The public API is deliberate: ``jetflow.__all__`` is sorted and every name exists."""

from __future__ import annotations

import jetflow
from jetflow import operators, sinks, sources, testing


def test_all_is_sorted_and_complete() -> None:
    for module in (jetflow, operators, sinks, sources, testing):
        names = module.__all__
        assert names == sorted(names), module.__name__
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_public_names_are_the_documented_ones() -> None:
    public = {name for name in dir(jetflow) if not name.startswith("_")}
    undeclared = (
        public
        - set(jetflow.__all__)
        - {"codec", "errors", "events", "filtering", "flow", "models", "testing"}
    )
    assert undeclared == set()
