"""The public API is deliberate: ``__all__`` is sorted and every name exists."""

from __future__ import annotations

import types

import jetflow
from jetflow import operators, sinks, sources, testing


def test_all_is_sorted_and_complete() -> None:
    for module in (jetflow, operators, sinks, sources, testing):
        names = module.__all__
        assert names == sorted(names), module.__name__
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_public_names_are_the_documented_ones() -> None:
    public = {
        name
        for name in dir(jetflow)
        if not name.startswith("_") and not isinstance(getattr(jetflow, name), types.ModuleType)
    }
    assert public == set(jetflow.__all__) - {"operators", "sinks", "sources", "__version__"}
