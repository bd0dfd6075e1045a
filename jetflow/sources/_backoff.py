"""Reconnect delays: exponential backoff with full jitter, reset after a healthy connection."""

from __future__ import annotations

import random


class Backoff:
    """Delays of ``uniform(0, min(cap, base * 2**attempt))``; ``reset()`` after a good connection.

    Full jitter spreads out the reconnects of many clients that lost the same upstream at once.
    """

    __slots__ = ("_attempt", "_random", "base", "cap")

    def __init__(
        self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None
    ) -> None:
        self.base = base
        self.cap = cap
        self._attempt = 0
        self._random = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * (2**self._attempt))
        self._attempt = min(self._attempt + 1, 32)
        return self._random.uniform(0, ceiling)

    def reset(self) -> None:
        self._attempt = 0

    @property
    def attempt(self) -> int:
        return self._attempt
