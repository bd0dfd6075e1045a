"""Broker URLs, connections that fail clearly at start-up and then reconnect forever, and the
stream: created (or checked) with file storage, a TTL, a duplicate window and compression."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jetflow.broker.subjects import DEFAULT_PREFIX, DEFAULT_STREAM, check_prefix, check_stream
from jetflow.errors import ConfigError, ConnectError, StoreError

log = logging.getLogger("jetflow.broker")

__all__ = [
    "DEFAULT_DUPLICATE_WINDOW",
    "DEFAULT_EVENT_TTL",
    "BrokerURL",
    "as_url",
    "connect",
    "ensure_stream",
    "nats",
    "require_nats",
    "stream_config",
]

try:  # the ``nats`` extra
    import nats
    import nats.errors
    import nats.js.errors
    from nats.aio.client import Client as NATS
    from nats.js import JetStreamContext
    from nats.js.api import DiscardPolicy, StorageType, StoreCompression, StreamConfig
except ImportError:  # pragma: no cover - exercised only without the extra
    nats = None  # type: ignore[assignment]

INSTALL_HINT = "the NATS broker needs nats-py: pip install 'jetflow[nats]'"
DEFAULT_DUPLICATE_WINDOW = 120.0
DEFAULT_EVENT_TTL = 24 * 3600.0
START_TIMEOUT = 5.0


def require_nats() -> None:
    if nats is None:
        raise ConfigError(INSTALL_HINT)


@dataclass(frozen=True)
class BrokerURL:
    """``nats://[user:password@]host[:port][,nats://host2:port...][?stream=NAME&subject=PREFIX
    &creds=FILE]``: the servers, and the stream and subject prefix to use."""

    servers: tuple[str, ...]
    stream: str = DEFAULT_STREAM
    prefix: str = DEFAULT_PREFIX
    creds: str | None = None
    text: str = field(default="", compare=False)

    @classmethod
    def parse(cls, url: str, *, stream: str | None = None, subject: str | None = None) -> BrokerURL:
        base, _, query = url.partition("?")
        servers = tuple(part.strip() for part in base.split(",") if part.strip())
        if not servers:
            raise ConfigError(f"broker url: {url!r} names no server")
        for server in servers:
            parts = urlsplit(server)
            if parts.scheme not in ("nats", "tls", "ws", "wss") or not parts.hostname:
                raise ConfigError(f"broker url: {server!r} is not nats://host:port")
            try:
                parts.port  # noqa: B018 - validates the port
            except ValueError:
                raise ConfigError(f"broker url: {server!r} has a bad port") from None
        params = {key: values[-1] for key, values in parse_qs(query).items()}
        unknown = set(params) - {"stream", "subject", "creds"}
        if unknown:
            raise ConfigError(f"broker url: unknown parameter {sorted(unknown)[0]!r} in {url!r}")
        return cls(
            servers,
            check_stream(stream or params.get("stream", DEFAULT_STREAM)),
            check_prefix(subject or params.get("subject", DEFAULT_PREFIX)),
            params.get("creds"),
            text=url,
        )

    @property
    def display(self) -> str:
        """The servers without credentials, for messages and logs."""
        shown = []
        for server in self.servers:
            parts = urlsplit(server)
            shown.append(f"{parts.scheme}://{parts.hostname}:{parts.port or 4222}")
        return ",".join(shown)


def as_url(
    url: str | BrokerURL, *, stream: str | None = None, subject: str | None = None
) -> BrokerURL:
    if isinstance(url, BrokerURL):
        if stream is None and subject is None:
            return url
        url = url.text or ",".join(url.servers)
    return BrokerURL.parse(url, stream=stream, subject=subject)


async def connect(
    url: BrokerURL,
    *,
    name: str = "jetflow",
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    timeout: float = START_TIMEOUT,
) -> NATS:
    """Connect (ConnectError naming the servers if that fails within ``timeout``, or at once
    on an authorization error); afterwards the client reconnects forever on its own."""
    require_nats()
    client = NATS()
    connected = False
    failed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def error_cb(error: Exception) -> None:
        text = str(error)
        if not connected:
            if (
                "Authorization" in text or "Authentication" in text or "auth" in text.lower()
            ) and not failed.done():
                failed.set_result(error)
            last[0] = error
        else:
            log.warning("broker %s: %s", url.display, text or type(error).__name__)

    async def disconnected_cb() -> None:
        if connected and not client.is_closed:  # not our own close()
            log.warning("broker %s: disconnected", url.display)

    async def reconnected_cb() -> None:
        log.info("broker %s: reconnected", url.display)
        if on_reconnect is not None:
            await on_reconnect()

    last: list[BaseException | None] = [None]
    options: dict[str, Any] = {
        "servers": list(url.servers),
        "name": name,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.25,
        "connect_timeout": min(timeout, 2.0),
        "ping_interval": 5,
        "max_outstanding_pings": 3,
        "error_cb": error_cb,
        "disconnected_cb": disconnected_cb,
        "reconnected_cb": reconnected_cb,
        "pending_size": 8 << 20,
    }
    if url.creds:
        options["user_credentials"] = url.creds
    attempt: asyncio.Future[Any] = asyncio.ensure_future(client.connect(**options))
    waiting: set[asyncio.Future[Any]] = {attempt, failed}
    done, _ = await asyncio.wait(waiting, timeout=timeout, return_when="FIRST_COMPLETED")
    if attempt in done and attempt.exception() is None:
        connected = True
        return client
    attempt.cancel()
    with contextlib.suppress(BaseException):
        await attempt
    with contextlib.suppress(Exception):
        await client.close()
    reason = (
        failed.result()
        if failed.done()
        else (attempt.exception() if attempt.done() and not attempt.cancelled() else last[0])
    )
    detail = str(reason) if reason is not None else f"no answer within {timeout:g} s"
    raise ConnectError(f"cannot connect to NATS at {url.display}: {detail}")


def stream_config(
    url: BrokerURL,
    *,
    max_age: float = DEFAULT_EVENT_TTL,
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
    compression: bool = True,
) -> StreamConfig:
    return StreamConfig(
        name=url.stream,
        subjects=[f"{url.prefix}.>"],
        storage=StorageType.FILE,
        max_age=max_age,
        duplicate_window=duplicate_window,
        discard=DiscardPolicy.OLD,
        allow_direct=True,
        compression=StoreCompression.S2 if compression else StoreCompression.NONE,
    )


async def ensure_stream(
    js: JetStreamContext,
    url: BrokerURL,
    *,
    create: bool,
    max_age: float = DEFAULT_EVENT_TTL,
    duplicate_window: float = DEFAULT_DUPLICATE_WINDOW,
    compression: bool = True,
) -> Any:
    """Check the stream (it must capture ``<prefix>.>``); create it if missing and ``create``.

    StoreError names the stream and the servers when it is missing or unusable.
    """
    try:
        info = await js.stream_info(url.stream)
    except nats.js.errors.NotFoundError:
        if not create:
            raise StoreError(
                f"NATS stream {url.stream!r} does not exist on {url.display} "
                "(start `jetflow ingest --to ...` first, or create it)"
            ) from None
        config = stream_config(
            url, max_age=max_age, duplicate_window=duplicate_window, compression=compression
        )
        try:
            info = await js.add_stream(config)
        except nats.js.errors.BadRequestError as exc:
            if compression and "compression" in str(exc).lower():
                log.warning("the server cannot compress streams; creating %s without", url.stream)
                config.compression = None
                info = await js.add_stream(config)
            else:
                raise StoreError(
                    f"cannot create NATS stream {url.stream!r} on {url.display}: {exc}"
                ) from None
        except nats.js.errors.Error as exc:
            raise StoreError(
                f"cannot create NATS stream {url.stream!r} on {url.display}: {exc}"
            ) from None
        log.info("created stream %s on %s", url.stream, url.display)
        return info
    except (
        nats.errors.TimeoutError,
        nats.errors.NoRespondersError,
        nats.js.errors.ServiceUnavailableError,
    ) as exc:
        raise StoreError(
            f"JetStream is not available on {url.display}: {exc or type(exc).__name__}"
        ) from None
    except nats.js.errors.Error as exc:
        raise StoreError(f"NATS stream {url.stream!r} on {url.display}: {exc}") from None
    subjects = info.config.subjects or []
    wanted = f"{url.prefix}.>"
    if wanted not in subjects and f"{url.prefix}.evt.>" not in subjects:
        raise StoreError(
            f"NATS stream {url.stream!r} on {url.display} captures {subjects}, not {wanted!r}"
        )
    return info
