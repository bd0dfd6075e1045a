"""Cursor checkpoints in a NATS KV bucket, so a worker restarted on another machine resumes
where the last one stopped.

:class:`KvCheckpoint` has the interface of :class:`jetflow.sources._checkpoint.CheckpointFile`
(``load()``, ``save(cursor)``, ``maybe_save(cursor)``, all synchronous), so whatever saves a
cursor to a file can save it to the broker instead. It runs its own connection on a private
thread with its own event loop, so it works from synchronous code; each call blocks its
caller for one round trip (up to ``timeout``), which is why the pipeline calls it from a
worker thread. Each save is a KV ``put`` (file storage, replicated with the bucket); the
value is ``{"cursor": N, "saved_at": unix time}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import orjson

from jetflow.broker.connection import BrokerURL, as_url, connect, nats, require_nats
from jetflow.errors import ConfigError, StoreError

T = TypeVar("T")
DEFAULT_BUCKET = "jetflow_checkpoints"
_KEY = re.compile(r"[-/_=.a-zA-Z0-9]+")


class KvCheckpoint:
    """One integer cursor under ``key`` in the KV bucket ``bucket`` (created if missing)."""

    def __init__(
        self,
        url: str | BrokerURL,
        key: str,
        *,
        bucket: str = DEFAULT_BUCKET,
        interval: float = 1.0,
        timeout: float = 10.0,
    ) -> None:
        require_nats()
        if not _KEY.fullmatch(key) or key.startswith(".") or key.endswith("."):
            raise ConfigError(f"checkpoint key: {key!r} is not a KV key ([-/_=.a-zA-Z0-9])")
        self.url = as_url(url)
        self.key = key
        self.bucket = bucket
        self.interval = interval
        self.timeout = timeout
        self._saved: int | None = None
        self._saved_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._kv: Any = None
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return f"{self.url.display} KV {self.bucket}/{self.key}"

    # -- the private loop ---------------------------------------------------------------------

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="jetflow-kv-checkpoint", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(self.timeout + 1)

    async def _bucket(self) -> Any:
        if self._kv is None:
            from nats.js.api import KeyValueConfig, StorageType

            self._client = await connect(self.url, name="jetflow-checkpoint", timeout=self.timeout)
            js = self._client.jetstream()
            try:
                self._kv = await js.key_value(self.bucket)
            except nats.js.errors.BucketNotFoundError:
                self._kv = await js.create_key_value(
                    KeyValueConfig(bucket=self.bucket, history=1, storage=StorageType.FILE)
                )
        return self._kv

    async def _load(self) -> int | None:
        kv = await self._bucket()
        try:
            entry = await kv.get(self.key)
        except nats.js.errors.KeyNotFoundError:
            return None
        try:
            value = orjson.loads(entry.value or b"")["cursor"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise StoreError(f"checkpoint {self.where}: not a jetflow checkpoint") from None
        if type(value) is not int:
            raise StoreError(f"checkpoint {self.where}: cursor is not an integer")
        return int(value)

    async def _save(self, cursor: int) -> None:
        kv = await self._bucket()
        await kv.put(self.key, orjson.dumps({"cursor": cursor, "saved_at": time.time()}))

    # -- CheckpointFile's interface -----------------------------------------------------------

    def load(self) -> int | None:
        try:
            value = self._run(self._load())
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"checkpoint {self.where}: {exc or type(exc).__name__}") from None
        self._saved = value
        return value

    def save(self, cursor: int) -> None:
        if cursor == self._saved:
            return
        try:
            self._run(self._save(cursor))
        except Exception as exc:
            raise StoreError(f"checkpoint {self.where}: {exc or type(exc).__name__}") from None
        self._saved = cursor
        self._saved_at = time.monotonic()

    def maybe_save(self, cursor: int) -> None:
        if time.monotonic() - self._saved_at >= self.interval:
            self.save(cursor)

    def due(self) -> bool:
        """True when ``maybe_save`` would write."""
        return time.monotonic() - self._saved_at >= self.interval

    def close(self) -> None:
        loop = self._loop
        if loop is None:
            return
        if self._client is not None:
            client = self._client
            self._client = self._kv = None
            with contextlib.suppress(Exception):  # closing a connection already gone
                self._run(client.close())
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        loop.close()
        self._loop = self._thread = None
