"""Settings from options, JETFLOW_* and JETSTREAM_* variables; errors name their source."""

from __future__ import annotations

from pathlib import Path

import pytest

from jetflow.errors import ConfigError
from jetflow.server.config import ServeConfig, load_config


def test_defaults() -> None:
    config = load_config({}, {})
    assert config == ServeConfig()
    assert config.relay == "wss://bsky.network" and config.listen == ("127.0.0.1", 6008)
    assert config.event_ttl == 24 * 3600 and config.max_sub_rate == 5000


def test_options_beat_jetflow_variables_which_beat_jetstream_aliases(dictionary_path: Path) -> None:
    environ = {
        "JETSTREAM_LISTEN_ADDR": ":7000",
        "JETFLOW_LISTEN": "127.0.0.1:7001",
        "JETSTREAM_EVENT_TTL": "1h30m",
        "JETSTREAM_MAX_SUB_RATE": "250",
        "JETSTREAM_ZSTD_DICTIONARY_PATH": str(dictionary_path),
        "JETSTREAM_OVERRIDE_RELAY_CURSOR": "-1",
        "JETFLOW_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.0.1",
    }
    config = load_config({"max_sub_rate": "99"}, environ)
    assert config.listen == ("127.0.0.1", 7001)
    assert config.event_ttl == 5400
    assert config.max_sub_rate == 99
    assert config.zstd_dictionary == dictionary_path
    assert config.relay_cursor is None  # Jetstream's -1 means "unset"
    assert [str(n) for n in config.trusted_proxies] == ["10.0.0.0/8", "192.168.0.1/32"]
    assert load_config({}, {"JETSTREAM_LISTEN_ADDR": ":7000"}).listen == ("0.0.0.0", 7000)


@pytest.mark.parametrize(
    ("options", "environ", "message"),
    [
        ({"event_ttl": "24x"}, {}, "--event-ttl: '24x' is not a duration"),
        ({}, {"JETSTREAM_EVENT_TTL": "soon"}, "JETSTREAM_EVENT_TTL: 'soon' is not a duration"),
        ({"listen": "localhost"}, {}, "--listen: 'localhost' is not HOST:PORT"),
        ({}, {"JETFLOW_MAX_SUB_RATE": "0"}, "JETFLOW_MAX_SUB_RATE: must be positive"),
        ({"relay": "ftp://x"}, {}, "--relay: 'ftp://x' is not a ws:// or wss:// URL"),
        ({"zstd_dictionary": "/nope"}, {}, "--zstd-dictionary: /nope is not a file"),
        ({"trusted_proxies": ["nonsense"]}, {}, "--trusted-proxy: trusted-proxy: 'nonsense'"),
    ],
)
def test_bad_values_name_their_option_or_variable(
    options: dict[str, object], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(options, environ)
