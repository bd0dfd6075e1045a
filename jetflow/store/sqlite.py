"""SQLite (WAL) event log: one row per event, its websocket frames stored ready to send.

Why SQLite: it ships with Python, WAL gives one writer and many concurrent readers (threads
and other processes, which is how extra fan-out processes follow the log), a transaction
makes "these events and the relay cursor that covers them" atomic, and with incremental
auto-vacuum a TTL trim really returns space. Rows live on disk, not in the Python heap: the
page cache is bounded, so memory does not grow with the amount stored.

Layout. Each committed batch is one row of ``runs``: the websocket frames of its events
concatenated, once as text frames (the JSON) and once as binary frames (zstd). Each event is
one row of ``events``, an index: ``time_us`` (the primary key, so replay is a range scan),
``did``, ``collection`` and ``kind`` for filtering in SQL (no JSON parsing on replay), and
where its frames sit in its run. An unfiltered replay is therefore a handful of large reads
(hundreds of events per row); a filtered one reads the matching index rows and slices their
frames out of the runs.

Threads: one writer thread (the server runs every write through a single-thread executor)
and any number of reader threads, each with its own connection.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from jetflow.codec.wsframe import binary_frame, frame_limit, text_frame
from jetflow.codec.zstd import Compressor
from jetflow.errors import StoreError
from jetflow.events import ACCOUNT, COMMIT, IDENTITY, Event

FILENAME = "jetflow.sqlite"
SCHEMA_VERSION = "2"
KIND_CODES = {COMMIT: 0, IDENTITY: 1, ACCOUNT: 2}
KIND_NAMES = {code: name for name, code in KIND_CODES.items()}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    first_time_us INTEGER PRIMARY KEY,
    last_time_us  INTEGER NOT NULL,
    events        INTEGER NOT NULL,
    text          BLOB    NOT NULL,
    binary        BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    time_us    INTEGER PRIMARY KEY,
    did        TEXT    NOT NULL,
    collection TEXT    NOT NULL,
    kind       INTEGER NOT NULL,
    run        INTEGER NOT NULL,
    text_at    INTEGER NOT NULL,
    text_len   INTEGER NOT NULL,
    binary_at  INTEGER NOT NULL,
    binary_len INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_did ON events (did, time_us);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event as the store and the fan-out see it: filter columns and ready frames."""

    time_us: int
    did: str
    collection: str
    kind: int
    text: bytes
    binary: bytes

    @classmethod
    def from_event(cls, event: Event, compressor: Compressor) -> StoredEvent:
        """Encode and compress ``event`` once (both are cached on the event)."""
        return cls(
            event.time_us,
            event.did,
            event.collection,
            KIND_CODES[event.kind],
            text_frame(event.json),
            binary_frame(event.compressed(compressor)),
        )


@dataclass(frozen=True)
class ReplayQuery:
    """What one subscriber wants from the log, compiled once into SQL.

    Jetstream's rules (spec §4): collections apply to commits only; identity and account
    events (and commits without a collection) pass; ``max_payload`` compares the bytes sent.
    """

    collections: frozenset[str] | None = None
    prefixes: tuple[str, ...] = ()
    dids: frozenset[str] | None = None
    max_payload: int | None = None
    compressed: bool = False

    @property
    def unfiltered(self) -> bool:
        return self.collections is None and self.dids is None and self.max_payload is None

    def sql(self) -> tuple[str, list[object]]:
        """SELECT time_us, run, at, len of matching events from ``time_us >= ?``, ``LIMIT ?``."""
        column = "binary" if self.compressed else "text"
        clauses = ["time_us >= ?"]
        params: list[object] = []
        if self.collections is not None:
            wanted = ["kind != 0", "collection = ''"]
            if self.collections:
                wanted.append(f"collection IN ({','.join('?' * len(self.collections))})")
                params += sorted(self.collections)
            for prefix in self.prefixes:
                wanted.append("substr(collection, 1, ?) = ?")
                params += [len(prefix), prefix]
            clauses.append(f"({' OR '.join(wanted)})")
        if self.dids is not None:
            clauses.append(f"did IN ({','.join('?' * len(self.dids))})")
            params += sorted(self.dids)
        if self.max_payload is not None:
            clauses.append(f"{column}_len <= ?")
            params.append(frame_limit(self.max_payload))
        where = " AND ".join(clauses)
        sql = (
            f"SELECT time_us, run, {column}_at, {column}_len FROM events "
            f"WHERE {where} ORDER BY time_us LIMIT ?"
        )
        return sql, params


@dataclass(frozen=True, slots=True)
class ReplayBatch:
    """Consecutive matching events, their frames concatenated ready to write."""

    data: bytes
    count: int
    last_time_us: int


EMPTY_BATCH = ReplayBatch(b"", 0, 0)


class EventStore:
    """The event log in ``<directory>/jetflow.sqlite``; see the module docstring."""

    def __init__(
        self, directory: str | Path, *, read_only: bool = False, cache_mib: int = 16
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / FILENAME
        self.read_only = read_only
        self.cache_mib = cache_mib
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        if read_only:
            if not self.path.exists():
                raise StoreError(f"no event store at {self.path}")
        else:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"data dir {self.directory}: {exc.strerror or exc}") from None
        self._writer_setup()

    # -- connections ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"event store {self.path} is closed")
        uri = f"file:{self.path}?mode={'ro' if self.read_only else 'rwc'}"
        try:
            connection = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False
            )
            connection.execute(f"PRAGMA cache_size = -{self.cache_mib * 1024}")
            connection.execute("PRAGMA mmap_size = 0")
            connection.execute("PRAGMA busy_timeout = 5000")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open event store {self.path}: {exc}") from None
        with self._lock:
            self._connections.append(connection)
        return connection

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections are not shared between threads)."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        return connection

    def _writer_setup(self) -> None:
        connection = self._connection()
        try:
            if not self.read_only:
                # auto_vacuum must be chosen before the first table exists.
                connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute("PRAGMA synchronous = NORMAL")
                connection.execute("PRAGMA journal_size_limit = 67108864")
                connection.executescript(_SCHEMA)
                connection.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)",
                    (SCHEMA_VERSION,),
                )
            version = self.get_meta("schema")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open event store {self.path}: {exc}") from None
        if version != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {version!r}, expected {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    # -- metadata --------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._connection().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._connection().execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def relay_cursor(self, relay_url: str) -> int | None:
        """The seq up to which the relay's events are stored, if they came from ``relay_url``."""
        if self.get_meta("relay_url") != relay_url:
            return None
        value = self.get_meta("relay_cursor")
        return int(value) if value is not None else None

    # -- writing ----------------------------------------------------------------------------

    def append(
        self,
        events: Sequence[StoredEvent],
        relay_cursor: int | None = None,
        relay_url: str | None = None,
    ) -> None:
        """Store ``events`` (one run) and the relay cursor that covers them, in one transaction."""
        connection = self._connection()
        try:
            connection.execute("BEGIN IMMEDIATE")
            if events:
                run = events[0].time_us
                rows = []
                text_at = binary_at = 0
                for event in events:
                    text_len, binary_len = len(event.text), len(event.binary)
                    rows.append(
                        (
                            event.time_us,
                            event.did,
                            event.collection,
                            event.kind,
                            run,
                            text_at,
                            text_len,
                            binary_at,
                            binary_len,
                        )
                    )
                    text_at += text_len
                    binary_at += binary_len
                connection.execute(
                    "INSERT INTO runs (first_time_us, last_time_us, events, text, binary) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        run,
                        events[-1].time_us,
                        len(events),
                        b"".join(event.text for event in events),
                        b"".join(event.binary for event in events),
                    ),
                )
                connection.executemany(
                    "INSERT INTO events (time_us, did, collection, kind, run, text_at, text_len, "
                    "binary_at, binary_len) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            if relay_cursor is not None and relay_url is not None:
                self.set_meta("relay_url", relay_url)
                self.set_meta("relay_cursor", str(relay_cursor))
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise StoreError(f"cannot write to {self.path}: {exc}") from None

    def trim(self, cutoff_us: int, chunk: int = 20_000) -> int:
        """Delete events older than ``cutoff_us`` (in chunks) and give the space back."""
        connection = self._connection()
        deleted = 0
        try:
            while True:
                cursor = connection.execute(
                    "DELETE FROM events WHERE time_us IN "
                    "(SELECT time_us FROM events WHERE time_us < ? ORDER BY time_us LIMIT ?)",
                    (cutoff_us, chunk),
                )
                deleted += cursor.rowcount
                if cursor.rowcount < chunk:
                    break
            # A run straddling the cutoff stays until its newest event expires.
            connection.execute("DELETE FROM runs WHERE last_time_us < ?", (cutoff_us,))
            if deleted:
                # incremental_vacuum frees one page per step; executescript steps it to the end.
                connection.executescript("PRAGMA incremental_vacuum;")
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot trim {self.path}: {exc}") from None
        return deleted

    # -- reading ----------------------------------------------------------------------------

    def newest_time_us(self) -> int:
        row = self._connection().execute("SELECT max(time_us) FROM events").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def oldest_time_us(self) -> int:
        row = self._connection().execute("SELECT min(time_us) FROM events").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def count(self) -> int:
        row = self._connection().execute("SELECT count(*) FROM events").fetchone()
        return int(row[0])

    def size_bytes(self) -> int:
        """Bytes on disk: the database and its WAL."""
        return sum(
            path.stat().st_size
            for path in (self.path, self.path.with_name(FILENAME + "-wal"))
            if path.exists()
        )

    def read_batch(self, query: ReplayQuery, from_time_us: int, max_events: int) -> ReplayBatch:
        """Matching events with ``time_us >= from_time_us``, about ``max_events`` of them (whole
        runs when unfiltered, so possibly more), frames concatenated in order."""
        try:
            with self._snapshot():
                if query.unfiltered:
                    return self._read_runs(query.compressed, from_time_us, max_events)
                return self._read_matches(query, from_time_us, max_events)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from None

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction: the index rows and the blobs read after them come from the
        same state of the log, even if a TTL trim commits in between."""
        connection = self._connection()
        if connection.in_transaction:
            yield
            return
        connection.execute("BEGIN")
        try:
            yield
        finally:
            connection.execute("COMMIT")

    def _read_runs(self, compressed: bool, from_time_us: int, max_events: int) -> ReplayBatch:
        column = "binary" if compressed else "text"
        connection = self._connection()
        first = connection.execute(
            f"SELECT time_us, run, {column}_at FROM events "
            "WHERE time_us >= ? ORDER BY time_us LIMIT 1",
            (from_time_us,),
        ).fetchone()
        if first is None:
            return EMPTY_BATCH
        start_time, run, offset = first
        last, size = connection.execute(
            f"SELECT last_time_us, length({column}) FROM runs WHERE first_time_us = ?", (run,)
        ).fetchone()
        # Counted from the index: a run past the TTL has lost its oldest events, not its bytes.
        (count,) = connection.execute(
            "SELECT count(*) FROM events WHERE time_us >= ? AND time_us <= ?", (start_time, last)
        ).fetchone()
        where = [(run, offset, size - offset)]
        after = run
        while count < max_events:
            rows = connection.execute(
                f"SELECT first_time_us, last_time_us, events, length({column}) FROM runs "
                "WHERE first_time_us > ? ORDER BY first_time_us LIMIT 64",
                (after,),
            ).fetchall()
            for row in rows:
                after, last, events, size = row  # `last` is the batch's last time_us
                where.append((after, 0, size))
                count += events
                if count >= max_events:
                    break
            if len(rows) < 64:
                break
        # Blob reads, not SELECTs of the blobs: SQLite copies the pages straight into the
        # result with the GIL released, so the event loop keeps sending meanwhile.
        return ReplayBatch(b"".join(self._slices(column, where)), count, last)

    def _read_matches(self, query: ReplayQuery, from_time_us: int, max_events: int) -> ReplayBatch:
        sql, params = query.sql()
        connection = self._connection()
        matches = connection.execute(sql, [from_time_us, *params, max_events]).fetchall()
        if not matches:
            return EMPTY_BATCH
        column = "binary" if query.compressed else "text"
        frames = self._slices(column, [(run, at, length) for _, run, at, length in matches])
        return ReplayBatch(b"".join(frames), len(matches), matches[-1][0])

    def replay(self, query: ReplayQuery, from_time_us: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` (time_us, frame) pairs with ``time_us >= from_time_us``, in order."""
        sql, params = query.sql()
        column = "binary" if query.compressed else "text"
        connection = self._connection()
        try:
            with self._snapshot():
                matches = connection.execute(sql, [from_time_us, *params, limit]).fetchall()
                frames = self._slices(column, [(run, at, n) for _, run, at, n in matches])
            return [(time_us, frame) for (time_us, *_), frame in zip(matches, frames, strict=True)]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from None

    def _slices(self, column: str, where: list[tuple[int, int, int]]) -> list[bytes]:
        """The bytes at (run, offset, length) in ``column`` of runs."""
        connection = self._connection()
        out: list[bytes] = []
        blob = None
        open_run = None
        try:
            for run, at, length in where:
                if run != open_run:
                    if blob is not None:
                        blob.close()
                    blob = connection.blobopen("runs", column, run, readonly=True)
                    open_run = run
                assert blob is not None
                blob.seek(at)
                out.append(blob.read(length))
        finally:
            if blob is not None:
                blob.close()
        return out

    def events_after(self, time_us: int, limit: int) -> list[StoredEvent]:
        """Whole events newer than ``time_us`` (for fan-out processes following the log)."""
        rows = (
            self._connection()
            .execute(
                "SELECT time_us, did, collection, kind, run, text_at, text_len, binary_at, "
                "binary_len FROM events WHERE time_us > ? ORDER BY time_us LIMIT ?",
                (time_us, limit),
            )
            .fetchall()
        )
        texts = self._slices("text", [(row[4], row[5], row[6]) for row in rows])
        binaries = self._slices("binary", [(row[4], row[7], row[8]) for row in rows])
        return [
            StoredEvent(row[0], row[1], row[2], row[3], text, binary)
            for row, text, binary in zip(rows, texts, binaries, strict=True)
        ]
