"""zstd as Jetstream uses it: one self-contained frame per event, optionally with a dictionary.

With the v1 dictionary every frame carries dictionary ID 1612007021 in its header, so Go's
decoder (which picks the dictionary by that ID) and python-zstandard both decode it (spec §12).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import zstandard

from jetflow.errors import ConfigError, DecodeError

V1_DICTIONARY_ID = 1612007021
V1_DICTIONARY_SHA256 = "b8d77b46933aceecbdd5275a01241efc985c970c78162b8150cf67a26522f70c"
V1_DICTIONARY_SIZE = 112_640
DEFAULT_LEVEL = 3  # klauspost's default, which Jetstream uses
_DICT_MAGIC = b"\x37\xa4\x30\xec"
_MAX_EVENT_BYTES = 64 << 20


def load_dictionary(source: str | Path | bytes) -> zstandard.ZstdCompressionDict:
    """Load a zstd dictionary from a path or bytes; ConfigError names the path if unusable."""
    if isinstance(source, bytes):
        data, name = source, "<bytes>"
    else:
        name = str(source)
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise ConfigError(f"zstd dictionary {name}: {exc.strerror or exc}") from None
    if not data.startswith(_DICT_MAGIC):
        raise ConfigError(f"zstd dictionary {name}: not a trained zstd dictionary (bad magic)")
    return zstandard.ZstdCompressionDict(data, dict_type=zstandard.DICT_TYPE_FULLDICT)


def dictionary_id(data: bytes) -> int:
    """The ID stored in a trained dictionary's header."""
    if not data.startswith(_DICT_MAGIC) or len(data) < 8:
        raise ConfigError("not a trained zstd dictionary")
    return int.from_bytes(data[4:8], "little")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def frame_dictionary_id(frame: bytes) -> int:
    """The dictionary ID written in a zstd frame header (0 when there is none)."""
    params = zstandard.get_frame_parameters(frame)
    dict_id: int = params.dict_id
    return dict_id


class Compressor:
    """Compresses each event into its own zstd frame, reusing one compressor context."""

    __slots__ = ("compress", "dictionary", "dictionary_id", "level")

    def __init__(
        self,
        dictionary: str | Path | bytes | zstandard.ZstdCompressionDict | None = None,
        level: int = DEFAULT_LEVEL,
    ) -> None:
        if dictionary is not None and not isinstance(dictionary, zstandard.ZstdCompressionDict):
            dictionary = load_dictionary(dictionary)
        self.dictionary = dictionary
        self.dictionary_id: int = dictionary.dict_id() if dictionary is not None else 0
        self.level = level
        compressor = zstandard.ZstdCompressor(
            level=level, dict_data=dictionary, write_checksum=True, write_dict_id=True
        )
        self.compress: Callable[[bytes], bytes] = compressor.compress  # the hot path calls this

    def __call__(self, data: bytes) -> bytes:
        return self.compress(data)


class Decompressor:
    """Decodes one zstd frame per message, with or without content size in the header."""

    __slots__ = ("_decompressor", "dictionary_id")

    def __init__(
        self, dictionary: str | Path | bytes | zstandard.ZstdCompressionDict | None = None
    ) -> None:
        if dictionary is not None and not isinstance(dictionary, zstandard.ZstdCompressionDict):
            dictionary = load_dictionary(dictionary)
        self.dictionary_id: int = dictionary.dict_id() if dictionary is not None else 0
        self._decompressor = zstandard.ZstdDecompressor(dict_data=dictionary)

    def __call__(self, frame: bytes) -> bytes:
        try:
            # Frames of small events carry no content size; a decompressobj handles both kinds.
            stream = self._decompressor.decompressobj()
            data: bytes = stream.decompress(frame)
        except zstandard.ZstdError as exc:
            raise DecodeError(f"cannot decompress zstd frame: {exc}") from None
        if not stream.eof:
            raise DecodeError("truncated zstd frame")
        if len(data) > _MAX_EVENT_BYTES:
            raise DecodeError("decompressed event larger than 64 MiB")
        return data


def train_dictionary(samples: Iterable[bytes], size: int = V1_DICTIONARY_SIZE) -> bytes:
    """Train a zstd dictionary from sample events (e.g. the JSON of a capture)."""
    sample_list: list[Any] = list(samples)  # python-zstandard wants a list
    if len(sample_list) < 10:
        raise ConfigError(f"need at least 10 samples to train a dictionary, got {len(sample_list)}")
    trained = zstandard.train_dictionary(size, sample_list, level=DEFAULT_LEVEL)
    data: bytes = trained.as_bytes()
    return data
