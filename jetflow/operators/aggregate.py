"""Aggregations per event-time window: ``count_by``, ``top_k``, ``rate``, ``distinct_count``.

Each is an operator from events to :class:`~jetflow.operators.window.WindowResult` objects, one
per window that received events, in window order. Windows, the watermark, lateness and the
end-of-stream flush are described in :mod:`jetflow.operators.window`; every aggregation takes
the same ``window=``, ``lateness=``, ``on_late=`` and ``stats=`` arguments.

Keys are field paths (``"commit.collection"``, ``"record.langs.0"``, see :mod:`jetflow.fields`)
or functions of the event. An event whose key is missing is grouped under ``None``, like any
other key, so the counts of a window always add up to its events; filter before the
aggregation to leave such events out. A key that reads a JSON list or object is counted as a
tuple (``record.langs`` gives keys such as ``("en", "ja")``); index it to count single items
(``record.langs.0``).

>>> from jetflow import operators as op
>>> per_minute = events.pipe(op.count_by("commit.collection", window=op.tumbling("1m")))
>>> per_minute.subscribe(lambda w: print(w.start_us, w.value))
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from hashlib import blake2b
from typing import Any, Final, overload

from reactivex import Observable

from jetflow.errors import ConfigError
from jetflow.events import Event
from jetflow.fields import Key, key_getter
from jetflow.operators.window import (
    Duration,
    WindowResult,
    WindowSpec,
    WindowStats,
    as_window,
    window_operator,
)

OnLate = Callable[[Event], object] | None


def count_by(
    key: Key,
    *,
    window: WindowSpec | Duration,
    lateness: Duration = 0,
    on_late: OnLate = None,
    stats: WindowStats | None = None,
) -> Callable[[Observable[Event]], Observable[WindowResult[dict[Any, int]]]]:
    """How many events per key, per window (exact).

    Args:
        key: a field path or a function of the event; events lacking it count under None.
        window: :func:`~jetflow.operators.window.tumbling`,
            :func:`~jetflow.operators.window.sliding`, or a duration (tumbling).
        lateness: how long a window waits for out-of-order events after its end.
        on_late: called with each event that arrives after all its windows were emitted.
        stats: a :class:`~jetflow.operators.window.WindowStats` to count into.

    Returns:
        An operator emitting one :class:`~jetflow.operators.window.WindowResult` per window
        with events; its ``value`` is a dict key → count, keys in order of first appearance.

    Example:
        >>> events.pipe(count_by("commit.collection", window=tumbling("1s")))
        WindowResult(start_us=1725000000000000, end_us=1725000001000000,
                     value={'app.bsky.feed.like': 412, 'app.bsky.feed.post': 61, ...}, ...)
    """
    return window_operator(
        window,
        lateness,
        on_late,
        stats,
        getter=key_getter(key),
        create=dict,
        add=None,
        finish=_counts,
        count_keys=True,
    )


def top_k(
    k: int,
    key: Key,
    *,
    window: WindowSpec | Duration,
    lateness: Duration = 0,
    on_late: OnLate = None,
    stats: WindowStats | None = None,
) -> Callable[[Observable[Event]], Observable[WindowResult[list[tuple[Any, int]]]]]:
    """The ``k`` most frequent keys per window, with their counts (exact).

    Counting is exact: each open window holds a count per distinct key (memory grows with
    the distinct keys of a window, as for :func:`count_by`); only the top ``k`` are emitted.

    Args:
        k: how many keys to emit per window (fewer when the window has fewer keys).
        key: a field path or a function of the event; events lacking it count under None.
        window, lateness, on_late, stats: as for :func:`count_by`.

    Returns:
        An operator emitting a :class:`~jetflow.operators.window.WindowResult` per window whose
        ``value`` is a list of ``(key, count)``, highest count first. Ties are broken by key,
        ascending (strings, then numbers, then other values such as None by their repr), so
        the same window always gives the same list.

    Raises:
        ConfigError: ``k`` is not a positive integer.

    Example:
        >>> events.pipe(top_k(10, "record.subject.uri", window=tumbling("5m")))  # most liked
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"top_k: k must be a positive integer, not {k!r}")

    def top(counts: dict[Any, int], events: int) -> list[tuple[Any, int]]:
        return heapq.nsmallest(k, counts.items(), key=_rank)

    return window_operator(
        window,
        lateness,
        on_late,
        stats,
        getter=key_getter(key),
        create=dict,
        add=None,
        finish=top,
        count_keys=True,
    )


@overload
def rate(
    *,
    window: WindowSpec | Duration,
    lateness: Duration = 0,
    key: None = None,
    on_late: OnLate = None,
    stats: WindowStats | None = None,
) -> Callable[[Observable[Event]], Observable[WindowResult[float]]]: ...


@overload
def rate(
    *,
    window: WindowSpec | Duration,
    lateness: Duration = 0,
    key: Key,
    on_late: OnLate = None,
    stats: WindowStats | None = None,
) -> Callable[[Observable[Event]], Observable[WindowResult[dict[Any, float]]]]: ...


def rate(
    *,
    window: WindowSpec | Duration,
    lateness: Duration = 0,
    key: Key | None = None,
    on_late: OnLate = None,
    stats: WindowStats | None = None,
) -> (
    Callable[[Observable[Event]], Observable[WindowResult[float]]]
    | Callable[[Observable[Event]], Observable[WindowResult[dict[Any, float]]]]
):
    """Events per second per window (event time), optionally per key.

    The rate is the window's events divided by the window's full length, also for the last
    window flushed when the source completes (which may have been cut short).

    Args:
        window, lateness, on_late, stats: as for :func:`count_by`.
        key: a field path or a function of the event for one rate per key; events lacking it
            are rated under None.

    Returns:
        An operator emitting a :class:`~jetflow.operators.window.WindowResult` per window with
        events: its ``value`` is a float, or with ``key`` a dict key → float.

    Example:
        >>> events.pipe(rate(window=sliding("1m", "10s"), key="commit.operation"))
    """
    seconds = as_window(window).size_us / 1_000_000
    if key is None:

        def per_second(_: None, events: int) -> float:
            return events / seconds

        return window_operator(
            window, lateness, on_late, stats, getter=None, create=_none, add=None, finish=per_second
        )

    def per_second_by_key(counts: dict[Any, int], events: int) -> dict[Any, float]:
        return {name: count / seconds for name, count in counts.items()}

    return window_operator(
        window,
        lateness,
        on_late,
        stats,
        getter=key_getter(key),
        create=dict,
        add=None,
        finish=per_second_by_key,
        count_keys=True,
    )


def distinct_count(
    key: Key,
    *,
    window: WindowSpec | Duration,
    lateness: Duration = 0,
    precision: int = 12,
    on_late: OnLate = None,
    stats: WindowStats | None = None,
) -> Callable[[Observable[Event]], Observable[WindowResult[int]]]:
    """Approximately how many distinct keys per window, in constant memory (HyperLogLog).

    Each open window holds a :class:`HyperLogLog` of ``2 ** precision`` one-byte registers
    (4 KiB by default) however many keys it sees. The estimate is approximate: its relative
    standard error is ``1.04 / sqrt(2 ** precision)``, 1.6 % at the default precision 12, from
    a handful of keys to billions, so about 95 % of estimates are within ±3.3 % of the truth
    and nearly all within ±5 %. A missing key counts as one more value, None.

    Args:
        key: a field path or a function of the event, e.g. ``"did"`` for active accounts.
        window, lateness, on_late, stats: as for :func:`count_by`.
        precision: log2 of the number of registers, 4 to 18; each step up doubles the memory
            per window and divides the error by √2.

    Returns:
        An operator emitting a :class:`~jetflow.operators.window.WindowResult` per window whose
        ``value`` is the estimated number of distinct keys (an int).

    Raises:
        ConfigError: ``precision`` is out of range.

    Example:
        >>> events.pipe(distinct_count("did", window=tumbling("1h")))  # active accounts per hour
    """
    HyperLogLog.check_precision(precision)
    get = key_getter(key)

    def hashed(event: Event) -> int:  # hash64(get(event)), inlined: once per event
        value = get(event)
        data = value.encode() if type(value) is str else _hash_input(value)
        return _from_bytes(blake2b(data, digest_size=8).digest(), "little")

    def create() -> HyperLogLog:
        return HyperLogLog(precision)

    def estimate(sketch: HyperLogLog, events: int) -> int:
        return sketch.estimate()

    return window_operator(
        window,
        lateness,
        on_late,
        stats,
        getter=hashed,
        create=create,
        add=HyperLogLog.add_hash,
        finish=estimate,
    )


# -- HyperLogLog --------------------------------------------------------------------------------


def hash64(value: Any) -> int:
    """A stable 64-bit hash (BLAKE2b) of a key: the same in every process and run.

    Strings hash their UTF-8 bytes; bytes and every other value get a distinct prefix byte
    (0xFE, 0xFF: never in UTF-8) so ``"1"``, ``b"1"`` and ``1`` stay different keys; other
    values are hashed through their ``repr``.
    """
    data = value.encode() if type(value) is str else _hash_input(value)
    return _from_bytes(blake2b(data, digest_size=8).digest(), "little")


def _hash_input(value: Any) -> bytes:
    """The bytes hashed for a key that is not a str (a prefix keeps them apart from strs)."""
    if type(value) is bytes:
        return b"\xfe" + value
    return b"\xff" + repr(value).encode()


_from_bytes: Final = int.from_bytes


class HyperLogLog:
    """A HyperLogLog sketch: the approximate number of distinct values added, in fixed memory.

    The sketch of Flajolet et al. (2007) over 64-bit hashes: the top ``precision`` bits of a
    value's hash choose a register, which keeps the highest rank (position of the first 1 bit)
    seen in the remaining bits. The estimate is Ertl's improved estimator ("New cardinality
    estimation algorithms for HyperLogLog sketches", 2017), computed from the histogram of
    register values: unlike the original estimator it needs no switch to linear counting and
    no bias tables, and has no bias bump around ``2.5 * 2 ** precision``. Relative standard
    error: ``1.04 / sqrt(2 ** precision)``, 1.6 % at precision 12 (measured, 30 sets each:
    at most 1.7 % RMS from 100 to 200,000 distinct values, none off by more than 4 %); sets
    of a few values are counted exactly unless two land in one register.

    Example:
        >>> sketch = HyperLogLog()
        >>> for n in range(50_000):
        ...     sketch.add(f"did:plc:{n}")
        >>> sketch.estimate()  # within a few percent of 50,000
        50339
    """

    __slots__ = ("_rank_bits", "_rank_mask", "precision", "registers")

    def __init__(self, precision: int = 12) -> None:
        self.check_precision(precision)
        self.precision = precision
        self.registers = bytearray(1 << precision)
        self._rank_bits = 64 - precision
        self._rank_mask = (1 << self._rank_bits) - 1

    @staticmethod
    def check_precision(precision: int) -> None:
        """Raise ConfigError unless ``precision`` is an int from 4 to 18."""
        if (
            isinstance(precision, bool)
            or not isinstance(precision, int)
            or not 4 <= precision <= 18
        ):
            raise ConfigError(
                f"HyperLogLog precision must be an int from 4 to 18, not {precision!r}"
            )

    @property
    def standard_error(self) -> float:
        """The estimate's relative standard error, ``1.04 / sqrt(m)``."""
        return 1.04 / math.sqrt(len(self.registers))

    def add(self, value: Any) -> None:
        """Add a value (hashed with :func:`hash64`)."""
        self.add_hash(hash64(value))

    def add_hash(self, hashed: int) -> None:
        """Add a value by its 64-bit hash."""
        bits = self._rank_bits
        rank = bits + 1 - (hashed & self._rank_mask).bit_length()
        index = hashed >> bits
        registers = self.registers
        if rank > registers[index]:
            registers[index] = rank

    def merge(self, other: HyperLogLog) -> None:
        """Fold ``other`` (same precision) into this sketch: the union of both value sets."""
        if other.precision != self.precision:
            raise ConfigError(
                f"cannot merge HyperLogLogs of precision {self.precision} and {other.precision}"
            )
        self.registers = bytearray(map(max, self.registers, other.registers))

    def estimate(self) -> int:
        """The estimated number of distinct values added (0 for an empty sketch)."""
        registers = self.registers
        m = len(registers)
        bits = self._rank_bits
        histogram = [registers.count(rank) for rank in range(bits + 2)]
        if histogram[0] == m:
            return 0
        z = m * _tau(1 - histogram[bits + 1] / m)
        for rank in range(bits, 0, -1):
            z = 0.5 * (z + histogram[rank])
        z += m * _sigma(histogram[0] / m)
        return round(m * m / (2 * math.log(2)) / z)


def _sigma(x: float) -> float:
    """Ertl's σ(x) = x + Σ_{k≥1} x^(2^k) 2^(k-1), for the registers still at zero (x < 1)."""
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if z == previous:
            return z


def _tau(x: float) -> float:
    """Ertl's τ(x), for the registers at the highest rank (0 unless the sketch is saturated)."""
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1 - x) ** 2 * y
        if z == previous:
            return z / 3


# -- helpers ------------------------------------------------------------------------------------


def _none() -> None:
    return None


def _counts(counts: dict[Any, int], events: int) -> dict[Any, int]:
    return counts


def _rank(item: tuple[Any, int]) -> tuple[int, int, str, Any]:
    """Sort key for top_k: count descending, then key ascending in a total order."""
    key, count = item
    if isinstance(key, str):
        return (-count, 0, "", key)
    if isinstance(key, int | float) and not isinstance(key, bool):
        return (-count, 1, "", key)
    return (-count, 2, type(key).__name__, repr(key))
