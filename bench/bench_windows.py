"""Benchmark: a windowed ``count_by`` pipeline against the plain decode chain, in one run.

Both pipelines decode the same synthetic relay frames (``jetflow.testing.SyntheticFirehose``)
with ``reactivex.from_iterable(frames).pipe(op.decode(), ...)``; the windowed one adds
``count_by("commit.collection", window=tumbling("1s"))``. Runs alternate between the pipelines
(so a load change on the machine hits both) and the table shows the median of each:

    python bench/bench_windows.py                  # 100k frames, 5 repetitions
    python bench/bench_windows.py --all            # also sliding, top_k, rate, distinct_count
    python bench/bench_windows.py --frames 20000 --repeat 7

The target is a ratio >= 0.7: windowed aggregation must not cost more than 30 % of the
throughput of decoding alone.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import reactivex as rx

from jetflow import operators as op
from jetflow.codec.firehose import DecodeStats
from jetflow.testing import SyntheticFirehose

Tail = Callable[[rx.Observable[Any]], rx.Observable[Any]] | None


def pipelines(include_all: bool) -> dict[str, Tail]:
    chosen: dict[str, Tail] = {
        "decode": None,
        "decode + count_by(collection, tumbling 1s)": op.count_by(
            "commit.collection", window=op.tumbling("1s")
        ),
    }
    if include_all:
        chosen.update(
            {
                "decode + count_by(collection, sliding 10s/1s)": op.count_by(
                    "commit.collection", window=op.sliding("10s", "1s")
                ),
                "decode + top_k(10, did, tumbling 1s)": op.top_k(
                    10, "did", window=op.tumbling("1s")
                ),
                "decode + rate(tumbling 1s)": op.rate(window=op.tumbling("1s")),
                "decode + distinct_count(did, tumbling 1s)": op.distinct_count(
                    "did", window=op.tumbling("1s")
                ),
            }
        )
    return chosen


def run_once(frames: list[bytes], tail: Tail) -> tuple[float, int]:
    """Seconds to push every frame through the pipeline, and the events decoded."""
    stats = DecodeStats()
    sink: list[Any] = []
    stream: rx.Observable[Any] = rx.from_iterable(frames).pipe(op.decode(stats=stats))
    if tail is not None:
        stream = stream.pipe(tail)
    started = time.perf_counter()
    stream.subscribe(sink.append if tail is not None else _discard)
    elapsed = time.perf_counter() - started
    return elapsed, stats.events


def _discard(_: Any) -> None:
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000, help="synthetic frames (100000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per pipeline (>= 5)")
    parser.add_argument("--seed", type=int, default=1, help="SyntheticFirehose seed (1)")
    parser.add_argument("--all", action="store_true", help="also the other aggregations")
    args = parser.parse_args(argv)
    if args.repeat < 5:
        parser.error("--repeat must be at least 5 (the table shows medians)")

    started = time.perf_counter()
    frames = list(SyntheticFirehose(args.seed).frames(args.frames))
    print(
        f"{len(frames):,} synthetic frames (seed {args.seed}) in"
        f" {time.perf_counter() - started:.1f} s; Python {platform.python_version()},"
        f" {platform.machine()}; median of {args.repeat} alternating runs\n",
        flush=True,
    )

    chosen = pipelines(args.all)
    seconds: dict[str, list[float]] = {name: [] for name in chosen}
    events: dict[str, int] = {}
    run_once(frames[:2_000], None)  # warm up imports and caches
    for _ in range(args.repeat):
        for name, tail in chosen.items():
            elapsed, count = run_once(frames, tail)
            seconds[name].append(elapsed)
            events[name] = count

    base = events["decode"] / statistics.median(seconds["decode"])
    width = max(map(len, chosen))
    print(f"{'pipeline':<{width}}  {'events':>8}  {'median s':>8}  {'events/s':>9}  {'ratio':>5}")
    for name in chosen:
        median = statistics.median(seconds[name])
        per_second = events[name] / median
        print(
            f"{name:<{width}}  {events[name]:>8,}  {median:>8.2f}  {per_second:>9,.0f}"
            f"  {per_second / base:>5.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
