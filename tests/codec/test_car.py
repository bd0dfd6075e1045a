"""CAR framing checks and content-addressed block lookup."""

from __future__ import annotations

import libipld
import pytest

from jetflow.codec.car import (
    block_with_cid,
    check_car,
    find_block,
    iter_blocks,
    read_roots,
    write_car,
)
from jetflow.codec.cid import compute_cid
from jetflow.errors import MalformedCARError


def make_car() -> tuple[bytes, list[tuple[bytes, bytes]]]:
    blocks = [block_with_cid({"n": n, "pad": "x" * (n * 40)}) for n in range(6)]
    return write_car([blocks[0][0]], blocks), blocks


def test_written_car_reads_back_with_libipld() -> None:
    car, blocks = make_car()
    header, decoded = libipld.decode_car(car)
    assert header == {"version": 1, "roots": [blocks[0][0]]}
    assert set(decoded) == {cid for cid, _ in blocks}
    assert read_roots(car) == [blocks[0][0]]
    assert list(iter_blocks(car)) == blocks


def test_find_block_returns_the_block_that_hashes_to_the_cid() -> None:
    car, blocks = make_car()
    check_car(car)
    for cid, block in blocks:
        assert find_block(car, cid) == block
    assert find_block(car, compute_cid(b"absent")) is None


def test_find_block_ignores_a_cid_mentioned_inside_another_block() -> None:
    target_cid, target = block_with_cid({"record": True})
    from jetflow.codec.cid import Link

    mst_cid, mst = block_with_cid({"e": [{"v": Link(target_cid)}]})
    car = write_car([mst_cid], [(mst_cid, mst), (target_cid, target)])
    assert find_block(car, target_cid) == target
    car_without_target = write_car([mst_cid], [(mst_cid, mst)])
    assert find_block(car_without_target, target_cid) is None


@pytest.mark.parametrize("cut", [1, 5, 40])
def test_truncated_car_is_malformed(cut: int) -> None:
    car, _ = make_car()
    with pytest.raises(MalformedCARError):
        check_car(car[:-cut])


@pytest.mark.parametrize(
    "car",
    [
        b"",
        b"\x00",
        b"\x05\xa1",
        b"\x02\x80\x80",
        b"\x0a" + b"\xa1\x67version\x02",
        b"\x01\x01" + b"\x00",
    ],
)
def test_garbage_is_malformed(car: bytes) -> None:
    with pytest.raises(MalformedCARError):
        check_car(car)
