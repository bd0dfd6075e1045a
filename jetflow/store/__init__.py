"""The event log behind cursor replay: SQLite in WAL mode, frames stored ready to send."""

from jetflow.store.sqlite import EventStore, ReplayBatch, ReplayQuery, StoredEvent

__all__ = ["EventStore", "ReplayBatch", "ReplayQuery", "StoredEvent"]
