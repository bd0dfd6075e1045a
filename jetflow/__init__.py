"""jetflow: the AT Protocol firehose as a reactive stream, and a drop-in Jetstream server.

>>> import jetflow as jf
>>> from jetflow import operators as op
>>> posts = jf.sources.firehose().pipe(op.decode(), op.filter(collections=["app.bsky.feed.post"]))
>>> posts.subscribe(jf.sinks.stdout())
"""

from jetflow import operators, sinks, sources
from jetflow.codec.clock import MonotonicClock
from jetflow.codec.firehose import DecodeStats, FirehoseDecoder
from jetflow.codec.frame import Frame
from jetflow.codec.zstd import Compressor, Decompressor
from jetflow.errors import (
    CaptureError,
    ConfigError,
    ConnectError,
    DecodeError,
    InvalidRecordError,
    JetflowError,
    MalformedCARError,
    MalformedFrameError,
    SinkError,
    StoreError,
    UpstreamError,
)
from jetflow.events import Event
from jetflow.filtering import EventFilter
from jetflow.flow import Overflow
from jetflow.pipeline import Pipeline

__version__ = "0.1.0"

__all__ = [
    "CaptureError",
    "Compressor",
    "ConfigError",
    "ConnectError",
    "DecodeError",
    "DecodeStats",
    "Decompressor",
    "Event",
    "EventFilter",
    "FirehoseDecoder",
    "Frame",
    "InvalidRecordError",
    "JetflowError",
    "MalformedCARError",
    "MalformedFrameError",
    "MonotonicClock",
    "Overflow",
    "Pipeline",
    "SinkError",
    "StoreError",
    "UpstreamError",
    "__version__",
    "operators",
    "sinks",
    "sources",
]
