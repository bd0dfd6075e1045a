"""The capture format: framing, incremental parsing, truncation errors with offsets."""

from __future__ import annotations

import pytest

from jetflow.codec.capture import CaptureParser, encode_record
from jetflow.errors import CaptureError


def test_frames_survive_any_chunking() -> None:
    frames = [b"a" * n for n in (1, 10, 300, 70_000)]
    data = b"".join(encode_record(frame) for frame in frames)
    for chunk in (1, 3, 4096, len(data)):
        parser = CaptureParser()
        out = [
            frame for i in range(0, len(data), chunk) for frame in parser.feed(data[i : i + chunk])
        ]
        parser.close()
        assert out == frames


def test_truncated_capture_names_the_file_and_offset_after_the_good_frames() -> None:
    data = encode_record(b"first") + encode_record(b"second")[:-2]
    parser = CaptureParser("capture.bin")
    assert list(parser.feed(data)) == [b"first"]
    with pytest.raises(CaptureError) as raised:
        parser.close()
    assert raised.value.path == "capture.bin"
    assert raised.value.offset == len(encode_record(b"first"))
    assert "capture.bin" in str(raised.value) and "offset 9" in str(raised.value)


def test_implausible_length_is_reported() -> None:
    parser = CaptureParser("x")
    with pytest.raises(CaptureError, match="implausible"):
        list(parser.feed(b"\xff\xff\xff\xff" + b"x"))
