"""``jetflow serve``: run the drop-in Jetstream server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from jetflow.server.config import SETTINGS, load_config


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "serve",
        help="run a drop-in Jetstream server",
        description=(
            "Serve the Jetstream v1 /subscribe wire from a relay, with cursor replay from a "
            "local store. Every option can also be set by environment variable: JETFLOW_<NAME>, "
            "or Jetstream's JETSTREAM_<NAME> where the meaning is the same."
        ),
    )
    for setting in SETTINGS:
        env = ", ".join(setting.env)
        if setting.field == "trusted_proxies":
            parser.add_argument(
                setting.option,
                dest=setting.field,
                action="append",
                metavar="CIDR",
                help=f"{setting.help} [env: {env}]",
            )
        else:
            parser.add_argument(
                setting.option,
                dest=setting.field,
                metavar="VALUE",
                help=f"{setting.help} [env: {env}]",
            )
    parser.add_argument("--follow", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jetflow.server.app import JetstreamServer
    from jetflow.server.telemetry import JsonFormatter

    config = load_config(vars(args))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(min(root.level, logging.INFO))
    logging.getLogger("websockets").setLevel(logging.WARNING)
    server = JetstreamServer(config)
    asyncio.run(server.run_until_signal())
    return 0
