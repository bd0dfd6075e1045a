"""``jetflow ingest``: read a relay once and publish its events to a NATS JetStream stream."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from jetflow.durations import parse_duration
from jetflow.errors import ConfigError


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "ingest",
        help="publish a relay's events to a NATS JetStream stream (scale-out)",
        description=(
            "Read a relay, assign time_us once, and publish each event's Jetstream JSON to a NATS "
            "JetStream stream that any number of `jetflow serve --store nats://...` nodes and "
            "pipelines read. Run one node, or two with different --node-id for redundancy: one "
            "is active, the other takes over from the stream's last event (see docs/scaleout.md)."
        ),
    )
    parser.add_argument("--relay", default="wss://bsky.network", help="relay websocket URL")
    parser.add_argument(
        "--to", required=True, metavar="URL", help="nats://[user:pass@]host:port[?stream=&subject=]"
    )
    parser.add_argument("--stream", help="stream name (default JETFLOW)")
    parser.add_argument("--subject", help="subject prefix (default jetflow)")
    parser.add_argument("--node-id", help="this node's name in the lease (default: host name)")
    parser.add_argument(
        "--lease-ttl", default="6s", help="standby takes over after this long without renewal"
    )
    parser.add_argument("--event-ttl", default="24h", help="how long the stream keeps events")
    parser.add_argument(
        "--duplicate-window", default="2m", help="the stream's message-id deduplication window"
    )
    parser.add_argument(
        "--relay-cursor",
        type=int,
        help="relay seq to start after when the stream holds no event yet (default: live)",
    )
    parser.add_argument(
        "--liveness-ttl", default="60s", help="reconnect to the relay after this long silent"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from jetflow.broker.connection import BrokerURL
    from jetflow.broker.ingest import IngestNode
    from jetflow.server.telemetry import JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(min(root.level, logging.INFO))
    logging.getLogger("websockets").setLevel(logging.WARNING)
    if not args.relay.startswith(("ws://", "wss://", "http://", "https://")):
        raise ConfigError(f"--relay: {args.relay!r} is not a ws:// or wss:// URL")
    url = BrokerURL.parse(args.to, stream=args.stream, subject=args.subject)
    node = IngestNode(
        args.relay,
        url,
        node_id=args.node_id,
        lease_ttl=parse_duration(args.lease_ttl, "--lease-ttl"),
        event_ttl=parse_duration(args.event_ttl, "--event-ttl"),
        duplicate_window=parse_duration(args.duplicate_window, "--duplicate-window"),
        relay_cursor=args.relay_cursor,
        idle_timeout=parse_duration(args.liveness_ttl, "--liveness-ttl"),
    )
    asyncio.run(_serve(node))
    return 0


async def _serve(node: Any) -> None:
    log = logging.getLogger("jetflow.ingest")
    await node.open()
    log.info(
        "ingest ready",
        extra={
            "fields": {"node": node.node_id, "stream": node.url.stream, "broker": node.url.display}
        },
    )
    loop = asyncio.get_running_loop()
    task = loop.create_task(node.run())
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        await node.close()
        log.info("stopped", extra={"fields": node.status()})
