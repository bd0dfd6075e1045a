"""Posts per minute by language: the Python twin of ``posts_per_minute_by_language.yaml``.

python pipelines/posts_per_minute_by_language.py [synthetic.bin.zst]
"""

from __future__ import annotations

import sys

import jetflow as jf
from jetflow import operators as op


def build(capture: str = "synthetic.bin.zst") -> jf.Pipeline:
    return jf.Pipeline(
        jf.sources.replay(capture),
        [
            op.decode(time="relay"),
            op.filter(collections=["app.bsky.feed.post"], operations=["create"]),
            op.count_by("record.langs.0", window="1m"),
            op.to_json(),  # window results as JSON lines (a file does this on its own)
        ],
        [jf.sinks.stdout()],
    )


if __name__ == "__main__":
    build(*sys.argv[1:]).run()
