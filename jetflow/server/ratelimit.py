"""Per-client rate limiting (spec §7) keyed by an address that cannot be spoofed.

The key is the socket's peer address. Forwarded headers are believed only when the peer is a
configured trusted proxy, and then the client is the right-most address in
``X-Forwarded-For`` that is not itself a trusted proxy (the left part of that header is
whatever the client chose to send). Buckets live in a bounded LRU map, so a flood of
addresses cannot grow memory.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

from jetflow.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; one token per message."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self, count: int, now: float | None = None) -> int:
        """Take up to ``count`` tokens; return how many were available and taken."""
        self._refill(time.monotonic() if now is None else now)
        granted = min(count, int(self.tokens))
        self.tokens -= granted
        return granted

    def spend(self, count: int, now: float | None = None) -> float:
        """Take ``count`` tokens even if that leaves a debt; return the seconds to wait before
        sending so that the average rate is kept (for batches larger than the burst)."""
        self._refill(time.monotonic() if now is None else now)
        self.tokens -= count
        return max(-self.tokens, 0.0) / self.rate

    def wait_time(self, count: int = 1) -> float:
        """Seconds until ``count`` tokens will be available."""
        missing = min(count, self.burst) - self.tokens
        return max(missing, 0.0) / self.rate


class RateLimiter:
    """Token buckets per client address, at most ``max_clients`` of them (LRU)."""

    def __init__(self, rate: float, *, max_clients: int = 65_536) -> None:
        if rate <= 0:
            raise ConfigError(f"max-sub-rate: must be positive, got {rate}")
        self.rate = rate
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def bucket(self, address: str) -> TokenBucket:
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = TokenBucket(self.rate, self.rate, time.monotonic())
            self._buckets[address] = bucket
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(address)
        return bucket

    def __len__(self) -> int:
        return len(self._buckets)


def parse_networks(values: Iterable[str]) -> list[Network]:
    """Trusted proxy CIDRs; ConfigError names a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"trusted-proxy: {value!r} is not an IP address or CIDR") from None
    return networks


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(peer: str, headers: Mapping[str, str], trusted: Sequence[Network]) -> str:
    """The address a request is attributed to (see the module docstring)."""
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    forwarded = [
        part.strip() for part in headers.get("X-Forwarded-For", "").split(",") if part.strip()
    ]
    for candidate in reversed(forwarded):
        if not _is_trusted(candidate, trusted):
            try:
                return str(ipaddress.ip_address(candidate))
            except ValueError:
                return peer
    real_ip = headers.get("X-Real-IP", "").strip()
    try:
        return str(ipaddress.ip_address(real_ip)) if real_ip else peer
    except ValueError:
        return peer
