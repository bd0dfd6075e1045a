"""Sources: where events come from. Each is an Observable and an async iterator.

- :func:`firehose` — a relay / PDS ``subscribeRepos`` stream (raw frames)
- :func:`jetstream` — any Jetstream v1 server (events)
- :func:`replay` — a capture file (frames) or JSON lines (events)
- :func:`memory` — an in-memory iterable
"""

from jetflow.sources._base import Source, SourceStats
from jetflow.sources.firehose import FirehoseSource, firehose
from jetflow.sources.jetstream import JetstreamSource, jetstream
from jetflow.sources.memory import MemorySource, memory
from jetflow.sources.replay import ReplaySource, replay

__all__ = [
    "FirehoseSource",
    "JetstreamSource",
    "MemorySource",
    "ReplaySource",
    "Source",
    "SourceStats",
    "firehose",
    "jetstream",
    "memory",
    "replay",
]
