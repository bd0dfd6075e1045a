"""``HOST:PORT`` addresses, written as Go programs (and Jetstream) write them."""

from __future__ import annotations

from jetflow.errors import ConfigError


def parse_listen(value: str, name: str = "listen") -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT`` for every interface) → ``(host, port)``; port 0 is any."""
    if not isinstance(value, str):
        raise ConfigError(f"{name}: expected HOST:PORT, got {value!r}")
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{name}: {value!r} is not HOST:PORT")
    return (host.strip("[]") or "0.0.0.0", int(port))
