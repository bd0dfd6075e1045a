"""Fuzzing the decoder with mutated real frames: no exception may escape, every frame is
either decoded or counted as skipped."""

from __future__ import annotations

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jetflow.codec.firehose import FirehoseDecoder

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn, frames: list[bytes]) -> bytes:
    frame = bytearray(draw(st.sampled_from(frames)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        position = draw(st.integers(0, max(len(frame) - 1, 0)))
        if kind == "flip" and frame:
            frame[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del frame[position:]
        elif kind == "insert":
            frame[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif frame:
            del frame[position : position + draw(st.integers(1, 16))]
    return bytes(frame)


def test_mutated_real_frames_never_raise(corpus_frames: list[bytes]) -> None:
    decoder = FirehoseDecoder()

    @FUZZ
    @given(mutated(corpus_frames))
    def check(frame: bytes) -> None:
        for event in decoder.decode(frame):  # must not raise, whatever the bytes
            parsed = orjson.loads(event.json)
            assert parsed["kind"] == event.kind and parsed["did"] == event.did

    check()
    assert decoder.stats.frames >= 100
    assert decoder.stats.skipped > 0  # the mutations did reach the skip paths


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_are_counted_as_skipped(data: bytes) -> None:
    decoder = FirehoseDecoder()
    assert decoder.decode(data) == []
    assert decoder.stats.skipped == 1
