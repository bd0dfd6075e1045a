"""``jetflow serve`` settings: command-line options, then ``JETFLOW_*`` environment variables,
then Jetstream's ``JETSTREAM_*`` names (spec §14) where the meaning is the same, then defaults.
A bad value raises ConfigError naming the option or variable it came from."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from jetflow.addresses import parse_listen
from jetflow.durations import parse_duration
from jetflow.errors import ConfigError
from jetflow.server.ratelimit import Network, parse_networks

DEFAULT_RELAY = "wss://bsky.network"


class ServeConfig(BaseModel):
    """Validated settings of one server process."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    relay: str = DEFAULT_RELAY
    listen: tuple[str, int] = ("127.0.0.1", 6008)
    metrics_listen: tuple[str, int] | None = ("127.0.0.1", 6009)
    data_dir: Path = Path("data")
    event_ttl: float = 24 * 3600.0
    zstd_dictionary: Path | None = None
    max_sub_rate: float = 5000.0
    trusted_proxies: tuple[Network, ...] = ()
    relay_cursor: int | None = None
    liveness_ttl: float = 60.0
    max_backlog_bytes: int = 16 << 20
    fanout_processes: int = 1
    follow: bool = False
    store: str | None = None


@dataclass(frozen=True)
class Setting:
    """One setting: its option, its environment names, and how to parse it."""

    field: str
    option: str
    env: tuple[str, ...]
    parse: Callable[[str, str], Any]
    help: str


def _optional_address(value: str, name: str) -> tuple[str, int] | None:
    return None if value.lower() in ("", "off", "none") else parse_listen(value, name)


def _positive_number(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not a number") from None
    if number <= 0:
        raise ConfigError(f"{name}: must be positive, got {value}")
    return number


def _positive_int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not an integer") from None
    if number <= 0:
        raise ConfigError(f"{name}: must be positive, got {value}")
    return number


def _cursor(value: str, name: str) -> int | None:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not an integer") from None
    return None if number < 0 else number  # Jetstream's -1 means "unset"


def _relay(value: str, name: str) -> str:
    if not value.startswith(("ws://", "wss://", "http://", "https://")):
        raise ConfigError(f"{name}: {value!r} is not a ws:// or wss:// URL")
    return value


def _store(value: str, name: str) -> str | None:
    if value in ("", "sqlite"):
        return None
    if not value.startswith(("nats://", "tls://")):
        raise ConfigError(f"{name}: {value!r} is not 'sqlite' or a nats://host:port URL")
    from jetflow.broker.connection import BrokerURL

    BrokerURL.parse(value)  # a bad URL fails here, naming the option
    return value


def _dictionary(value: str, name: str) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(f"{name}: {value} is not a file (run `jetflow dictionary download`)")
    return path


def _networks(value: str, name: str) -> tuple[Network, ...]:
    try:
        return tuple(parse_networks(part for part in value.split(",") if part.strip()))
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None


SETTINGS = (
    Setting(
        "relay",
        "--relay",
        ("JETFLOW_RELAY", "JETSTREAM_WS_URL"),
        _relay,
        f"relay websocket URL (default {DEFAULT_RELAY})",
    ),
    Setting(
        "listen",
        "--listen",
        ("JETFLOW_LISTEN", "JETSTREAM_LISTEN_ADDR"),
        parse_listen,
        "HOST:PORT for /subscribe (default 127.0.0.1:6008)",
    ),
    Setting(
        "metrics_listen",
        "--metrics-listen",
        ("JETFLOW_METRICS_LISTEN", "JETSTREAM_METRICS_LISTEN_ADDR"),
        _optional_address,
        "HOST:PORT for /metrics, or 'off' (default 127.0.0.1:6009)",
    ),
    Setting(
        "data_dir",
        "--data-dir",
        ("JETFLOW_DATA_DIR", "JETSTREAM_DATA_DIR"),
        lambda value, name: Path(value),
        "directory of the event store (default ./data)",
    ),
    Setting(
        "event_ttl",
        "--event-ttl",
        ("JETFLOW_EVENT_TTL", "JETSTREAM_EVENT_TTL"),
        lambda value, name: parse_duration(value, name),
        "how long events are kept (default 24h)",
    ),
    Setting(
        "zstd_dictionary",
        "--zstd-dictionary",
        ("JETFLOW_ZSTD_DICTIONARY", "JETSTREAM_ZSTD_DICTIONARY_PATH"),
        _dictionary,
        "zstd dictionary for compressed subscribers (default: plain zstd)",
    ),
    Setting(
        "max_sub_rate",
        "--max-sub-rate",
        ("JETFLOW_MAX_SUB_RATE", "JETSTREAM_MAX_SUB_RATE"),
        _positive_number,
        "messages per second per client address (default 5000)",
    ),
    Setting(
        "trusted_proxies",
        "--trusted-proxy",
        ("JETFLOW_TRUSTED_PROXIES",),
        _networks,
        "CIDR of a proxy whose X-Forwarded-For is believed; repeatable (env: comma-separated)",
    ),
    Setting(
        "relay_cursor",
        "--relay-cursor",
        ("JETFLOW_RELAY_CURSOR", "JETSTREAM_OVERRIDE_RELAY_CURSOR"),
        _cursor,
        "start the relay at this seq instead of the stored cursor (-1: unset)",
    ),
    Setting(
        "liveness_ttl",
        "--liveness-ttl",
        ("JETFLOW_LIVENESS_TTL", "JETSTREAM_LIVENESS_TTL"),
        lambda value, name: parse_duration(value, name),
        "reconnect to the relay after this long without a frame (default 60s)",
    ),
    Setting(
        "max_backlog_bytes",
        "--max-backlog-bytes",
        ("JETFLOW_MAX_BACKLOG_BYTES",),
        _positive_int,
        "unsent bytes after which a subscriber is too slow (default 16 MiB)",
    ),
    Setting(
        "store",
        "--store",
        ("JETFLOW_STORE",),
        _store,
        "event log: 'sqlite' in --data-dir (default), or nats://host:port[?stream=&subject=] "
        "to serve a stream written by `jetflow ingest` (scale-out)",
    ),
    Setting(
        "fanout_processes",
        "--fanout-processes",
        ("JETFLOW_FANOUT_PROCESSES",),
        _positive_int,
        "processes serving /subscribe on the same port (default 1)",
    ),
)


def load_config(
    options: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> ServeConfig:
    """Build the config from parsed command-line ``options`` (None = not given) and ``environ``."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        given = options.get(setting.field)
        if given is not None and given != []:
            if setting.field == "trusted_proxies":
                values["trusted_proxies"] = _networks(",".join(given), setting.option)
            else:
                values[setting.field] = setting.parse(str(given), setting.option)
            continue
        for name in setting.env:
            if name in environ:
                values[setting.field] = setting.parse(environ[name], name)
                break
    if options.get("follow"):
        values["follow"] = True
    return ServeConfig(**values)
