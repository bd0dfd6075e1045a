"""User functions for ``shouting_posts.yaml`` (named there as ``plugins:is_shouting``).

A pipeline file may name Python functions only if it says ``allow_python: true`` and is run
with ``--allow-python``; this module is found because it sits next to the file.
"""

from __future__ import annotations

from jetflow.events import Event


def is_shouting(event: Event) -> bool:
    """True when most letters of a post's text are capitals.

    A post without a single letter (only emoji, say) raises ZeroDivisionError on purpose: the
    pipeline's ``on_error`` sink receives it, with the post that caused it.
    """
    record = event.record or {}
    letters = [char for char in record.get("text", "") if char.isalpha()]
    capitals = sum(char.isupper() for char in letters)
    return capitals / len(letters) > 0.6
