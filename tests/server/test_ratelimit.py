"""Rate limiting keyed by an address that cannot be spoofed, with bounded memory."""

from __future__ import annotations

import pytest

from jetflow.errors import ConfigError
from jetflow.server.ratelimit import RateLimiter, TokenBucket, client_address, parse_networks


def test_token_bucket_grants_a_burst_then_refills_at_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=10, now=0.0)
    assert bucket.take(15, now=0.0) == 10
    assert bucket.take(1, now=0.0) == 0
    assert bucket.take(5, now=0.35) == 3
    assert bucket.wait_time(2) == pytest.approx(0.15, abs=0.01)


def test_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(100, max_clients=50)
    for n in range(500):
        limiter.bucket(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter) == 50


def test_forwarded_headers_count_only_from_trusted_proxies() -> None:
    trusted = parse_networks(["10.0.0.0/8"])
    headers = {"X-Forwarded-For": "6.6.6.6, 203.0.113.9, 10.1.1.1"}
    assert (
        client_address("198.51.100.7", headers, trusted) == "198.51.100.7"
    )  # not a proxy: ignored
    assert client_address("10.2.2.2", headers, trusted) == "203.0.113.9"  # right-most untrusted
    assert client_address("10.2.2.2", {"X-Real-IP": "203.0.113.5"}, trusted) == "203.0.113.5"
    assert client_address("10.2.2.2", {"X-Forwarded-For": "garbage"}, trusted) == "10.2.2.2"
    assert client_address("10.2.2.2", headers, []) == "10.2.2.2"


def test_bad_proxy_cidr_names_the_value() -> None:
    with pytest.raises(ConfigError, match=r"'10\.0\.0\.0/99'"):
        parse_networks(["10.0.0.0/99"])
