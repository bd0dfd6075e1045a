"""Sources: where events come from. Each is an Observable and an async iterator.

- :func:`firehose` — a relay / PDS ``subscribeRepos`` stream (raw frames)
- :func:`jetstream` — any Jetstream v1 server (events)
- :func:`replay` — a capture file (frames) or JSON lines (events)
- :func:`memory` — an in-memory iterable
- :func:`nats` — a NATS JetStream stream (scale-out; the ``nats`` extra)
"""

from jetflow.sources._base import Source, SourceStats
from jetflow.sources._checkpoint import Checkpoint, CheckpointFile
from jetflow.sources.firehose import FirehoseSource, firehose
from jetflow.sources.jetstream import JetstreamSource, jetstream
from jetflow.sources.memory import MemorySource, memory
from jetflow.sources.nats import NatsSource, nats
from jetflow.sources.replay import ReplaySource, replay

__all__ = [
    "Checkpoint",
    "CheckpointFile",
    "FirehoseSource",
    "JetstreamSource",
    "MemorySource",
    "NatsSource",
    "ReplaySource",
    "Source",
    "SourceStats",
    "firehose",
    "jetstream",
    "memory",
    "nats",
    "replay",
]
