"""Durations written the way Go and humans write them: ``90s``, ``15m``, ``24h``, ``1h30m``,
``250ms``; a bare number is seconds."""

from __future__ import annotations

import re

from jetflow.errors import ConfigError

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")


def parse_duration(value: str | float, name: str = "duration") -> float:
    """Seconds in ``value``; ConfigError names ``name`` and the value if it is not a duration."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            position = 0
            seconds = 0.0
            for match in _PART.finditer(text):
                if match.start() != position:
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                position = match.end()
            if position != len(text) or not text:
                raise ConfigError(
                    f"{name}: {value!r} is not a duration (like 250ms, 90s, 15m, 24h, 1h30m)"
                ) from None
    if seconds < 0:
        raise ConfigError(f"{name}: {value!r} is negative")
    return seconds
