"""Benchmark: frames → Jetstream JSON → zstd (v1 dictionary), three chains side by side.

* **jetflow** — the real operators: ``from_iterable(frames).pipe(op.decode(), op.compress(...))``,
  with every check the spec asks for (canonical CBOR, CAR framing, record hash, §9 rules,
  Go escaping), byte-identical to production Jetstream.
* **bare** — the fastest loop one can write with the same libraries and none of the checks:
  libipld splits the frame, each op's block is found in the CAR by its CID and decoded alone,
  orjson writes the envelope, one reused zstd compressor with the dictionary.
* **atproto SDK** — MarshalX's ``atproto`` package as its docs use it for the firehose: parse
  the frame and message into models, ``CAR.from_bytes``, ``models.get_or_create`` per record,
  ``get_model_as_json``, then the same compressor.

On the production corpus (``../shared/jetstream/corpus``, 150 frames) and on synthetic frames
(``jetflow.testing.SyntheticFirehose``). Repetitions alternate between chains; medians shown.

    python bench/bench_decode.py                      # 100k synthetic frames, 5 repetitions
    python bench/bench_decode.py --frames 20000 --repeat 7

Targets (issue 2): jetflow ≥ 3× the SDK chain and ≥ 0.6× the bare loop.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import libipld
import orjson
import reactivex as rx
import zstandard

from jetflow import operators as op
from jetflow.codec import accel
from jetflow.codec.capture import CaptureParser
from jetflow.codec.zstd import Compressor
from jetflow.testing import SyntheticFirehose

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "jetstream"
DICTIONARY = SHARED / "zstd_dictionary"

Chain = Callable[[list[bytes]], int]


def corpus_frames() -> list[bytes]:
    raw = (
        zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress((SHARED / "corpus" / "frames.bin.zst").read_bytes())
    )
    return list(CaptureParser().feed(raw))


def jetflow_chain(frames: list[bytes]) -> int:
    sizes: list[int] = []
    rx.from_iterable(frames).pipe(op.decode(), op.compress(dictionary=DICTIONARY)).subscribe(
        lambda frame: sizes.append(len(frame))
    )
    return len(sizes)


def block_before(car: bytes, at: int, cid_len: int) -> object:
    """Decode the block whose CID sits at ``at``, its length read from the varint before it
    (one or two bytes, nearly always; no checks: this is the bare loop)."""
    if car[at - 2] >= 0x80:
        length = (car[at - 2] & 0x7F) | (car[at - 1] << 7)
        try:
            return libipld.decode_dag_cbor(car[at + cid_len : at + length])
        except ValueError:
            pass
    return libipld.decode_dag_cbor(car[at + cid_len : at + car[at - 1]])


def bare_chain() -> Chain:
    compress = zstandard.ZstdCompressor(
        level=3, dict_data=zstandard.ZstdCompressionDict(DICTIONARY.read_bytes())
    ).compress

    def as_json(value: object) -> object:
        return None

    def run(frames: list[bytes]) -> int:
        count = 0
        for data in frames:
            header, body = libipld.decode_dag_cbor_multi(data)
            kind = header.get("t")
            if kind in ("#identity", "#account"):
                event = {"did": body["did"], "time_us": 0, "kind": kind[1:], kind[1:]: body}
                compress(orjson.dumps(event))
                count += 1
                continue
            if kind != "#commit":
                continue
            car = body["blocks"]
            for op_ in body["ops"]:
                collection, _, rkey = op_["path"].partition("/")
                commit: dict[str, object] = {
                    "rev": body["rev"],
                    "operation": op_["action"],
                    "collection": collection,
                    "rkey": rkey,
                }
                cid = op_["cid"]
                if cid is not None:
                    commit["record"] = block_before(car, car.rfind(cid), len(cid))
                    commit["cid"] = libipld.encode_cid(cid)
                event = {"did": body["repo"], "time_us": 0, "kind": "commit", "commit": commit}
                compress(orjson.dumps(event, default=as_json, option=orjson.OPT_SORT_KEYS))
                count += 1
        return count

    return run


def sdk_chain() -> Chain | None:
    try:
        from atproto import CAR, firehose_models, models, parse_subscribe_repos_message
    except ImportError:
        return None
    compress = Compressor(DICTIONARY)

    def run(frames: list[bytes]) -> int:
        count = 0
        for data in frames:
            frame = firehose_models.Frame.from_bytes(data)
            if not isinstance(frame, firehose_models.MessageFrame):
                continue
            message = parse_subscribe_repos_message(frame)
            if isinstance(message, models.ComAtprotoSyncSubscribeRepos.Commit):
                car = CAR.from_bytes(message.blocks)
                for op_ in message.ops:
                    collection, _, rkey = op_.path.partition("/")
                    commit: dict[str, object] = {
                        "rev": message.rev,
                        "operation": op_.action,
                        "collection": collection,
                        "rkey": rkey,
                    }
                    if op_.cid is not None:
                        raw = car.blocks.get(op_.cid)
                        record = models.get_or_create(raw, strict=False)
                        if record is None:  # a lexicon the SDK has no model for
                            commit["record"] = raw
                        else:
                            commit["record"] = orjson.loads(models.get_model_as_json(record))
                        commit["cid"] = str(op_.cid)
                    event = {"did": message.repo, "time_us": 0, "kind": "commit", "commit": commit}
                    compress(orjson.dumps(event, default=str))
                    count += 1
            elif isinstance(
                message,
                models.ComAtprotoSyncSubscribeRepos.Identity
                | models.ComAtprotoSyncSubscribeRepos.Account,
            ):
                compress(
                    orjson.dumps(
                        {"did": message.did, "time_us": 0, "payload": message.model_dump()}
                    )
                )
                count += 1
        return count

    return run


Results = dict[str, tuple[list[float], int]]


def measure(chains: dict[str, Chain], frames: list[bytes], repeat: int) -> Results:
    """Seconds per repetition and events per chain. Chains run back to back within each
    repetition, so a change of load on this shared machine hits all of them alike; ratios are
    taken per repetition and their median reported."""
    times: dict[str, list[float]] = {name: [] for name in chains}
    events: dict[str, int] = {}
    for _ in range(repeat):
        for name, chain in chains.items():
            started = time.perf_counter()
            events[name] = chain(frames)
            times[name].append(time.perf_counter() - started)
    return {name: (times[name], events[name]) for name in chains}


def ratio(results: Results, name: str, other: str) -> float:
    """Median over repetitions of other's time / name's time: name's speed relative to other."""
    mine, theirs = results[name][0], results[other][0]
    return statistics.median(b / a for a, b in zip(mine, theirs, strict=True))


def table(title: str, results: Results) -> None:
    print(f"\n{title}")
    print("| chain | events | µs/event (median) | events/s | vs bare | vs SDK |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (seconds, count) in results.items():
        median = statistics.median(seconds)
        versus_sdk = (
            f"{ratio(results, name, 'atproto SDK'):.2f}×" if "atproto SDK" in results else "–"
        )
        print(
            f"| {name} | {count:,} | {median / count * 1e6:.1f} | {count / median:,.0f} | "
            f"{ratio(results, name, 'bare loop'):.2f}× | {versus_sdk} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--frames", type=int, default=100_000, help="synthetic frames (default 100000)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per chain (default 5)")
    parser.add_argument("--corpus-loops", type=int, default=40, help="corpus passes per repetition")
    args = parser.parse_args()
    chains: dict[str, Chain] = {"jetflow (operators)": jetflow_chain, "bare loop": bare_chain()}
    sdk = sdk_chain()
    if sdk is not None:
        chains["atproto SDK"] = sdk
    print(
        f"python {platform.python_version()} on {platform.machine()}, "
        f"C speedups: {accel.USING_SPEEDUPS}"
    )
    corpus = corpus_frames() * args.corpus_loops
    table(
        f"production corpus: 150 frames × {args.corpus_loops}, {args.repeat} repetitions",
        measure(chains, corpus, args.repeat),
    )
    synthetic = list(SyntheticFirehose(seed=1).frames(args.frames))
    table(
        f"synthetic: {args.frames:,} frames, {args.repeat} repetitions",
        measure(chains, synthetic, args.repeat),
    )
    if sdk is None:
        print("\n(atproto not installed: pip install -e '.[bench]' for the SDK chain)")


if __name__ == "__main__":
    main()
