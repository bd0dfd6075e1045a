"""Operators: plain functions returning ``Observable -> Observable`` callables for ``pipe``.

>>> from jetflow import operators as op
>>> posts = frames.pipe(op.decode(), op.filter(collections=["app.bsky.feed.post"]), op.encode())
>>> per_second = posts.pipe(op.count_by("record.langs.0", window=op.tumbling("1s")))
>>> texts = posts.pipe(op.match("record.text", contains=["jetflow"]), op.map(str))
"""

from jetflow.operators.aggregate import HyperLogLog, count_by, distinct_count, rate, top_k
from jetflow.operators.compress import compress, decompress
from jetflow.operators.decode import DecodedStream, decode
from jetflow.operators.encode import encode, parse
from jetflow.operators.filter import filter
from jetflow.operators.match import match
from jetflow.operators.tap import map, tap
from jetflow.operators.tojson import to_json
from jetflow.operators.window import (
    WindowResult,
    WindowSpec,
    WindowStats,
    sliding,
    tumbling,
    windowed,
)

__all__ = [
    "DecodedStream",
    "HyperLogLog",
    "WindowResult",
    "WindowSpec",
    "WindowStats",
    "compress",
    "count_by",
    "decode",
    "decompress",
    "distinct_count",
    "encode",
    "filter",
    "map",
    "match",
    "parse",
    "rate",
    "sliding",
    "tap",
    "to_json",
    "top_k",
    "tumbling",
    "windowed",
]
