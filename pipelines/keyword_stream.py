"""A derived stream of posts mentioning a keyword: the Python twin of ``keyword_stream.yaml``.

python pipelines/keyword_stream.py [synthetic.bin.zst]
websocat ws://127.0.0.1:8765/subscribe
"""

from __future__ import annotations

import sys

import jetflow as jf
from jetflow import operators as op


def build(capture: str = "synthetic.bin.zst", listen: str = "127.0.0.1:8765") -> jf.Pipeline:
    return jf.Pipeline(
        jf.sources.replay(capture, rate=2000),
        [
            op.decode(),
            op.filter(collections=["app.bsky.feed.post"], operations=["create"]),
            op.match("record.text", contains=["tide pools", "book"], ignore_case=True),
        ],
        [jf.sinks.websocket_server(listen)],
    )


if __name__ == "__main__":
    build(*sys.argv[1:]).run()  # Ctrl-C stops cleanly
