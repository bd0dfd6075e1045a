"""pydantic models, built on demand and kept off the hot path.

- :mod:`~jetflow.models.jetstream` — the Jetstream v1 JSON events (parse what a server sends)
- :mod:`~jetflow.models.records` — typed ``app.bsky.*`` records
"""

from jetflow.models.jetstream import (
    AccountEvent,
    CommitEvent,
    IdentityEvent,
    JetstreamEvent,
    parse_event,
)
from jetflow.models.records import RECORD_TYPES, parse_record

__all__ = [
    "RECORD_TYPES",
    "AccountEvent",
    "CommitEvent",
    "IdentityEvent",
    "JetstreamEvent",
    "parse_event",
    "parse_record",
]
