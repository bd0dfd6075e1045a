"""Sinks: where events go. Each is a reactivex Observer: ``observable.subscribe(sink)``.

- :func:`callback` — a function, sync or ``async``
- :func:`jsonl` — JSON-lines files, zstd and rotation optional
- :func:`stdout` — JSON lines on standard output
- :func:`websocket` — push to a remote websocket endpoint
- :func:`capture` — raw frames into a capture file
- :func:`nats` — a NATS JetStream stream (scale-out; the ``nats`` extra)
- :func:`prometheus` — a counter or gauge served on ``/metrics``
- :func:`websocket_server` — serve the stream to any number of websocket clients
"""

from jetflow.sinks._base import AsyncSink, Sink, SinkStats
from jetflow.sinks.callback import AsyncCallbackSink, CallbackSink, callback
from jetflow.sinks.capture import CaptureSink, capture
from jetflow.sinks.files import JsonlFileSink, jsonl
from jetflow.sinks.nats import NatsSink, nats
from jetflow.sinks.prometheus import PrometheusSink, prometheus
from jetflow.sinks.stdout import StdoutSink, stdout
from jetflow.sinks.websocket import WebsocketSink, websocket
from jetflow.sinks.websocket_server import WebsocketServerSink, websocket_server

__all__ = [
    "AsyncCallbackSink",
    "AsyncSink",
    "CallbackSink",
    "CaptureSink",
    "JsonlFileSink",
    "NatsSink",
    "PrometheusSink",
    "Sink",
    "SinkStats",
    "StdoutSink",
    "WebsocketServerSink",
    "WebsocketSink",
    "callback",
    "capture",
    "jsonl",
    "nats",
    "prometheus",
    "stdout",
    "websocket",
    "websocket_server",
]
