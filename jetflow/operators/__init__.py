"""Operators: plain functions returning ``Observable -> Observable`` callables for ``pipe``.

>>> from jetflow import operators as op
>>> posts = frames.pipe(op.decode(), op.filter(collections=["app.bsky.feed.post"]), op.encode())
"""

from jetflow.operators.compress import compress, decompress
from jetflow.operators.decode import DecodedStream, decode
from jetflow.operators.encode import encode, parse
from jetflow.operators.filter import filter

__all__ = ["DecodedStream", "compress", "decode", "decompress", "encode", "filter", "parse"]
