"""The timestamp check Jetstream applies to relay ``time`` fields (Go's ``time.RFC3339``).

Go's ``time.Parse(time.RFC3339, s)`` tries a strict parser and falls back to its general layout
parser, so it accepts what either does. The general one is the looser: year 0000, a one-digit
hour, ``,`` before the fraction, and zone offsets up to ``24:60``. Digits are ASCII only.
"""

from __future__ import annotations

import re
from datetime import date

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{1,2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,][0-9]+)?(?:Z|[+-]([0-9]{2}):([0-9]{2}))"
)
_EPOCH = date(1970, 1, 1)
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in(month: int, year: int) -> int:
    """Days in ``month`` of ``year`` in the proleptic Gregorian calendar (year 0 is a leap year)."""
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _DAYS_IN_MONTH[month]


def is_rfc3339(value: str) -> bool:
    """True if Go's ``time.Parse(time.RFC3339, value)`` accepts ``value``."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(group) for group in match.groups()[:6])
    off_h, off_m = match.group(7, 8)
    if not 1 <= month <= 12 or not 1 <= day <= _days_in(month, year):
        return False
    if hour > 23 or minute > 59 or second > 59:
        return False
    return off_h is None or (int(off_h) <= 24 and int(off_m) <= 60)


def to_unix_us(value: str) -> int | None:
    """Microseconds since the epoch of an RFC 3339 time (None if it does not parse).

    Fractions beyond microseconds are truncated; off-grid offsets that Go accepts but
    Python's datetime refuses also give None.
    """
    match = _RFC3339.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(group) for group in match.groups()[:6])
    fraction = value[match.end(6) :].lstrip(".,")
    digits = ""
    for char in fraction:
        if not char.isdigit():
            break
        digits += char
    micros = int((digits + "000000")[:6]) if digits else 0
    sign = -1 if "-" in value[match.end(6) + len(digits) :] else 1
    offset = (
        0
        if match.group(7) is None
        else sign * (int(match.group(7)) * 3600 + int(match.group(8)) * 60)
    )
    try:
        days = (date(year, month, day) - _EPOCH).days
    except ValueError:
        return None
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    return seconds * 1_000_000 + micros
