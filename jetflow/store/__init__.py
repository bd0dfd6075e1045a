"""The event log behind cursor replay: SQLite in WAL mode, frames stored ready to send."""

from jetflow.store.sqlite import EventStore, ReplayQuery, StoredEvent

__all__ = ["EventStore", "ReplayQuery", "StoredEvent"]
