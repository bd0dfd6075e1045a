"""Per-event zstd frames that Jetstream clients decode (spec §12)."""

from __future__ import annotations

from pathlib import Path

import pytest
import zstandard

from jetflow.codec.zstd import (
    V1_DICTIONARY_ID,
    V1_DICTIONARY_SHA256,
    Compressor,
    Decompressor,
    dictionary_id,
    frame_dictionary_id,
    sha256_hex,
    train_dictionary,
)
from jetflow.errors import ConfigError, DecodeError


def test_v1_dictionary_is_the_expected_file(dictionary_path: Path) -> None:
    data = dictionary_path.read_bytes()
    assert sha256_hex(data) == V1_DICTIONARY_SHA256
    assert dictionary_id(data) == V1_DICTIONARY_ID


@pytest.mark.parametrize("size", [20, 200, 255, 256, 1500, 200_000])
def test_frames_carry_the_dictionary_id_and_decode_with_python_zstandard(
    dictionary_path: Path, size: int
) -> None:
    event = (b'{"did":"did:plc:x","time_us":1,"kind":"commit","commit":{"text":"' + b"a" * size)[
        :size
    ]
    frame = Compressor(dictionary_path)(event)
    assert frame_dictionary_id(frame) == V1_DICTIONARY_ID
    dictionary = zstandard.ZstdCompressionDict(dictionary_path.read_bytes())
    decoded = zstandard.ZstdDecompressor(dict_data=dictionary).decompressobj().decompress(frame)
    assert decoded == event
    assert Decompressor(dictionary_path)(frame) == event


def test_without_a_dictionary_frames_are_plain_zstd() -> None:
    frame = Compressor()(b'{"a":1}')
    assert frame_dictionary_id(frame) == 0
    assert zstandard.ZstdDecompressor().decompressobj().decompress(frame) == b'{"a":1}'


def test_dictionary_compresses_real_events_smaller(
    dictionary_path: Path, expected_v1: list[bytes]
) -> None:
    with_dict = sum(len(Compressor(dictionary_path)(line)) for line in expected_v1)
    plain = sum(len(Compressor()(line)) for line in expected_v1)
    total = sum(len(line) for line in expected_v1)
    assert with_dict < 0.6 * total and with_dict < plain


def test_bad_dictionary_and_bad_frames_give_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "dict"
    bad.write_bytes(b"not a dictionary")
    with pytest.raises(ConfigError, match="bad magic"):
        Compressor(bad)
    with pytest.raises(ConfigError, match="missing"):
        Compressor(tmp_path / "missing")
    with pytest.raises(DecodeError):
        Decompressor()(b"\x28\xb5\x2f\xfd garbage")
    frame = Compressor()(b"x" * 1000)
    with pytest.raises(DecodeError, match="truncated"):
        Decompressor()(frame[:-5])


def test_trained_dictionary_round_trips(expected_v1: list[bytes]) -> None:
    data = train_dictionary(expected_v1 * 5, size=8192)
    compressor = Compressor(data)
    frame = compressor(expected_v1[0])
    assert frame_dictionary_id(frame) == dictionary_id(data) != 0
    assert Decompressor(data)(frame) == expected_v1[0]
