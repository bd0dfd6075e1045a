"""Pieces several commands share: source options, progress on a terminal, running a stream."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any, TextIO

import reactivex
from reactivex import operators as rx_ops

from jetflow.errors import ConfigError
from jetflow.sinks import Sink

PUBLIC_RELAY = "wss://bsky.network"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return value


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--collection",
        action="append",
        metavar="NSID",
        help="keep this collection (NSID or prefix.*); repeatable",
    )
    parser.add_argument("--did", action="append", metavar="DID", help="keep this repo; repeatable")
    parser.add_argument(
        "--kind",
        action="append",
        metavar="KIND",
        help="keep this kind (commit, identity, account, sync, info); repeatable",
    )
    parser.add_argument(
        "--operation",
        action="append",
        metavar="OP",
        help="keep this operation (create, update, delete); repeatable",
    )


class Progress:
    """``\\r12,345 frames (6,789/s)`` on stderr, at most 5 times a second, only on a terminal."""

    def __init__(self, unit: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self.unit = unit
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.count = 0
        self._start = time.monotonic()
        self._shown = 0.0

    def update(self, count: int | None = None) -> None:
        self.count = self.count + 1 if count is None else count
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._shown >= 0.2:
            self._shown = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.count / max(now - self._start, 1e-9)
        total = f"/{self.total:,}" if self.total else ""
        self.stream.write(f"\r{self.count:,}{total} {self.unit} ({rate:,.0f}/s)  ")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()


async def drain(
    stream: reactivex.Observable[Any], sink: Sink[Any], limit: int | None = None
) -> None:
    """Subscribe ``sink`` to ``stream`` (at most ``limit`` items) and wait until it is done."""
    if limit is not None:
        stream = stream.pipe(rx_ops.take(limit))
    subscription = stream.subscribe(sink)
    try:
        while not sink.done:
            await asyncio.sleep(0.05)
    finally:
        subscription.dispose()
        sink.close()
    if sink.error is not None:
        raise sink.error


def require_one_source(args: argparse.Namespace, names: tuple[str, ...]) -> None:
    given = [name for name in names if getattr(args, name.replace("-", "_"), None)]
    if len(given) > 1:
        raise ConfigError(f"choose one source, not {' and '.join('--' + n for n in given)}")
