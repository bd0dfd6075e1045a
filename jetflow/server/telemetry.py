"""The server's Prometheus metrics (Jetstream's names from spec §13 where the meaning is the
same) and its structured log lines. No label takes unbounded values: no client addresses,
and collections (``op_path``) are capped, the rest counted under ``_other``."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from jetflow.events import Event
from jetflow.metrics import Registry
from jetflow.store.sqlite import StoredEvent


class ServerMetrics:
    """Every metric the server exports, in one registry."""

    def __init__(self, relay_url: str) -> None:
        self.registry = registry = Registry()
        self.socket_url = relay_url
        self.subscribers = registry.gauge(
            "jetstream_subscribers_connected", "Subscribers connected."
        )
        self.emitted = registry.counter(
            "jetstream_events_emitted_total", "Events emitted to the fan-out."
        )
        self.emitted_bytes = registry.counter(
            "jetstream_bytes_emitted_total", "JSON bytes of the events emitted."
        )
        self.delivered = registry.counter(
            "jetstream_events_delivered_total", "Events written to subscribers (live and replay)."
        )
        self.delivered_bytes = registry.counter(
            "jetstream_bytes_delivered_total", "Bytes written to subscribers."
        )
        self.events_processed = registry.counter(
            "consumer_events_processed_total",
            "Relay events processed.",
            ["event_type", "socket_url"],
        )
        self.ops_processed = registry.counter(
            "consumer_ops_processed_total",
            "Repo operations processed.",
            ["kind", "op_path", "socket_url"],
            max_series=300,
        )
        self.processing = registry.histogram(
            "consumer_event_processing_duration_seconds",
            "Time to decode and encode one relay frame.",
        )
        self.last_seq = registry.gauge("consumer_last_seq", "The last relay seq processed.")
        self.last_processed_at = registry.gauge(
            "consumer_last_evt_processed_at", "Unix time (ns) the last event was processed."
        )
        self.sequenced = registry.counter(
            "consumer_events_sequenced_total", "Events given a time_us."
        )
        self.persisted = registry.counter(
            "consumer_events_persisted_total", "Events committed to the store."
        )
        self.emitted_consumer = registry.counter(
            "consumer_events_emitted_total", "Events published after commit."
        )
        self.dropped = registry.counter(
            "jetflow_subscribers_dropped_total",
            "Subscribers closed by the server, by reason.",
            ["reason"],
        )
        self.rejected = registry.counter(
            "jetflow_subscribe_rejected_total", "Subscribe requests refused with HTTP 400."
        )
        self.replayed = registry.counter(
            "jetflow_replay_events_total", "Events sent from the store."
        )
        self.relay_connected = registry.gauge(
            "jetflow_relay_connected", "1 while the relay is connected."
        )
        self.trimmed = registry.counter(
            "jetflow_store_trimmed_events_total", "Events removed by the TTL."
        )
        registry.add_process_metrics()

    def attach_gauges(self, **functions: Callable[[], float]) -> None:
        """Gauges read at scrape time (store size, decode skips, ...)."""
        for name, function in functions.items():
            self.registry.gauge(name, name.replace("_", " "), function=function)

    def count_event(self, event: Event) -> None:
        self.sequenced.inc()
        self.events_processed.labels(event.kind, self.socket_url).inc()
        if event.operation:
            self.ops_processed.labels(event.operation, event.collection, self.socket_url).inc()
        self.last_processed_at.set(time.time_ns())

    def count_emitted(self, batch: Sequence[StoredEvent]) -> None:
        self.emitted.inc(len(batch))
        self.emitted_consumer.inc(len(batch))
        self.emitted_bytes.inc(sum(len(event.text) for event in batch))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, msg, logger, and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "msg": record.getMessage(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
