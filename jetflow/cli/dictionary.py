"""``jetflow dictionary``: fetch Jetstream's v1 zstd dictionary, or train one from a capture."""

from __future__ import annotations

import argparse
import asyncio
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from jetflow.cli._common import Progress, positive_int
from jetflow.codec.zstd import (
    V1_DICTIONARY_SHA256,
    V1_DICTIONARY_SIZE,
    dictionary_id,
    sha256_hex,
    train_dictionary,
)
from jetflow.errors import ConfigError, JetflowError

# Where Bluesky publishes it: pkg/models/zstd_dictionary in bluesky-social/jetstream-legacy.
V1_DICTIONARY_URL = "https://raw.githubusercontent.com/bluesky-social/jetstream-legacy/main/pkg/models/zstd_dictionary"
_MAX_DOWNLOAD = 4 << 20


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/jetflow/zstd_dictionary`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jetflow" / "zstd_dictionary"


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "dictionary",
        help="get or train a zstd dictionary",
        description="Get Jetstream's v1 zstd dictionary, or train one from a capture.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    download = actions.add_parser(
        "download",
        help="download Jetstream's v1 dictionary and check its sha256",
        description=(
            "Download the zstd dictionary Jetstream v1 and its clients use (ID 1612007021) from "
            "where Bluesky publishes it, check its sha256 and save it in the user cache."
        ),
    )
    download.add_argument("--url", default=V1_DICTIONARY_URL, help="where to fetch it from")
    download.add_argument(
        "-o", "--output", metavar="FILE", help=f"where to save it (default {default_cache_path()})"
    )
    download.add_argument("--sha256", default=V1_DICTIONARY_SHA256, help="expected sha256 (hex)")
    download.set_defaults(run=run_download)
    train = actions.add_parser(
        "train",
        help="train a dictionary from a capture",
        description="Train a zstd dictionary on the Jetstream JSON of the events in a capture.",
    )
    train.add_argument("capture", metavar="CAPTURE", help="a capture or JSON-lines file")
    train.add_argument("-o", "--output", metavar="FILE", required=True, help="the dictionary file")
    train.add_argument(
        "--size", type=positive_int, default=V1_DICTIONARY_SIZE, help="bytes (default 112640)"
    )
    train.add_argument(
        "--samples", type=positive_int, default=100_000, help="events to train on (default 100000)"
    )
    train.set_defaults(run=run_train)


def run_download(args: argparse.Namespace) -> int:
    output = Path(args.output) if args.output else default_cache_path()
    try:
        with urllib.request.urlopen(args.url, timeout=30) as response:
            data = response.read(_MAX_DOWNLOAD + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise JetflowError(f"cannot download {args.url}: {getattr(exc, 'reason', exc)}") from None
    if len(data) > _MAX_DOWNLOAD:
        raise JetflowError(f"{args.url}: larger than {_MAX_DOWNLOAD} bytes, not a dictionary")
    digest = sha256_hex(data)
    if digest != args.sha256.lower():
        raise JetflowError(f"{args.url}: sha256 is {digest}, expected {args.sha256}; not saved")
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.name + ".part")
    temporary.write_bytes(data)
    temporary.replace(output)
    print(f"{output} (dictionary ID {dictionary_id(data)}, sha256 {digest})")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from jetflow import sources
    from jetflow.codec.firehose import FirehoseDecoder
    from jetflow.events import WIRE_KINDS, Event

    samples: list[bytes] = []
    progress = Progress("events")
    decoder = FirehoseDecoder()

    async def collect() -> None:
        async for item in sources.replay(args.capture):
            for event in [item] if isinstance(item, Event) else decoder.decode(item):
                if event.kind in WIRE_KINDS and len(samples) < args.samples:
                    samples.append(event.json)
                    progress.update()
            if len(samples) >= args.samples:
                return

    asyncio.run(collect())
    progress.finish()
    if len(samples) < 10:
        raise ConfigError(f"{args.capture}: only {len(samples)} events, too few to train on")
    data = train_dictionary(samples, size=args.size)
    Path(args.output).write_bytes(data)
    print(
        f"{args.output} (dictionary ID {dictionary_id(data)}, {len(data)} bytes, "
        f"trained on {len(samples)} events)"
    )
    return 0
