"""Pipeline files: every lint rule on broken files with the exact messages, and files that run.

The broken files go through ``jetflow lint`` as a real subprocess, once, all together.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import zstandard

from jetflow.pipeline import Pipeline
from jetflow.pipeline_files import PipelineFileError, lint_file, load_pipeline, plan_text

BROKEN = {
    "types.yaml": """\
        source:
          firehose: {url: "wss://bsky.network", idle_timeout: 5q}
        pipeline:
          - count_by: {key: commit.collection, window: 1m}
          - filter: {collections: app.bsky.feed.post}
          - top_k: {k: ten, key: did, window: 1m}
        sinks:
          - capture: {path: out.bin}
        """,
    "names.yaml": """\
        source: {replay: {path: capture.bin.zst}}
        pipeline:
          - decode: {time: relay}
          - fitler: {collections: [app.bsky.feed.post]}
          - jsonl: {path: x.jsonl}
          - count_by: {key: commit.colection, window: 5x, windw: 1m}
          - match: {path: did.x, contains: [a]}
          - filter: {collections: ["app.bsky.feed.po*st"]}
        sinks:
          - stdot
          - prometheus: {metric: "bad-name", listen: "127.0.0.1:9464"}
        """,
    "streams.yaml": """\
        source: {jetstream: {collections: [app.bsky.feed.post]}}
        pipeline:
          - filter: {operations: [create]}
        streams:
          a: {from: b, pipeline: [{filter: {kinds: [commit]}}]}
          b: {from: a}
          posts: {from: pipeline}
          langs: {from: psots, pipeline: [{count_by: {key: record.langs.0, window: 1m}}]}
          source: {from: pipeline}
        sinks:
          - stdout: {}
            stream: lnags
        """,
    "structure.yaml": """\
        source:
          replay: {path: a.bin}
          firehose: {}
        pipeline:
          decode: {}
        sinks: []
        sink: stdout
        on_error: retry
        checkpoint: {path: cursor.json, interval: soon}
        """,
    "kv.yaml": """\
        source: {replay: {path: a.bin}}
        sinks: [stdout]
        checkpoint: {nats: "http://127.0.0.1:4222", key: worker, interval: 1s, bucket: b, path: x}
        """,
    "kv_key.yaml": """\
        source: {replay: {path: a.bin}}
        sinks: [stdout]
        checkpoint: {nats: "nats://127.0.0.1:4222", key: ""}
        """,
    "python.yaml": """\
        source: {replay: {path: a.bin}}
        pipeline:
          - decode
          - filter: {predicate: "spam:is_spam"}
          - map: {fn: "not a function"}
        sinks:
          - stdout
        """,
    "yaml.yaml": """\
        source: {replay: {path: a.bin}}
        sinks:
          - stdout: {line_buffered: true, line_buffered: false}
        """,
    "syntax.yaml": """\
        source: {replay: {path: a.bin}}
        pipeline: [decode
        sinks: [stdout]
        """,
}

EXPECTED = """\
kv.yaml:3: checkpoint.nats: expected a nats:// URL, got 'http://127.0.0.1:4222'
kv.yaml:3: checkpoint.path: unknown key 'path' (nats, key, bucket, interval)
kv_key.yaml:3: checkpoint.key: expected a KV key (a name), got ''
names.yaml:4: pipeline[1].fitler: unknown operator 'fitler'; did you mean 'filter'?
names.yaml:5: pipeline[2].jsonl: 'jsonl' is a sink, not an operator (it belongs in sinks)
names.yaml:6: pipeline[3].count_by.key: field path 'commit.colection': unknown commit field \
'colection' (expected one of rev, operation, collection, rkey, cid; record fields are \
'record.<key>')
names.yaml:6: pipeline[3].count_by.window: '5x' is not a duration (like 250ms, 90s, 15m, 24h, \
1h30m)
names.yaml:6: pipeline[3].count_by.windw: unknown argument 'windw' for 'count_by'; did you mean \
'window'?
names.yaml:7: pipeline[4].match.path: field path 'did.x': 'did' is a plain value, it has no \
field 'x'
names.yaml:8: pipeline[5].filter: invalid collection: app.bsky.feed.po*st
names.yaml:10: sinks[0]: unknown sink 'stdot'; did you mean 'stdout'?
names.yaml:11: sinks[1].prometheus: metric: 'bad-name' is not a Prometheus metric name \
([a-zA-Z_:][a-zA-Z0-9_:]*)
python.yaml:4: pipeline[1].filter.predicate: spam:is_spam is Python code: the file must say \
'allow_python: true' (and be run with --allow-python)
python.yaml:5: pipeline[2].map.fn: expected a Python function as module:function, got \
'not a function'
streams.yaml:5: streams.a.from: cycle: a -> b -> a
streams.yaml:7: streams.posts: stream 'posts' is read by no sink or stream
streams.yaml:8: streams.langs: stream 'langs' is read by no sink or stream
streams.yaml:8: streams.langs.from: unknown stream 'psots'; did you mean 'posts'?
streams.yaml:9: streams.source: 'source' is reserved (the source and the main pipeline)
streams.yaml:12: sinks[0].stream: unknown stream 'lnags'; did you mean 'langs'?
structure.yaml:1: source: only one source, got 'replay' and 'firehose'
structure.yaml:4: pipeline: expected a list, got {'decode': {}}
structure.yaml:6: sinks: expected at least one sink
structure.yaml:7: sink: unknown key 'sink'; did you mean 'sinks'?
structure.yaml:8: on_error: expected stop, skip or a sink, got 'retry'
structure.yaml:9: checkpoint.interval: 'soon' is not a duration (like 250ms, 90s, 15m, 24h, 1h30m)
syntax.yaml:3: YAML syntax: expected ',' or ']', but got ':'
types.yaml:2: source.firehose.idle_timeout: '5q' is not a duration (like 250ms, 90s, 15m, 24h, \
1h30m)
types.yaml:4: pipeline[0].count_by: 'count_by' takes events, but its input is frames from \
source 'firehose' (add 'decode' before it)
types.yaml:5: pipeline[1].filter.collections: expected a list, got 'app.bsky.feed.post'
types.yaml:6: pipeline[2].top_k.k: expected an integer, got 'ten'
types.yaml:8: sinks[0].capture: 'capture' takes frames, but stream 'pipeline' carries window \
results
yaml.yaml:3: sinks[0].stdout: duplicate key 'line_buffered' (first at line 3)
"""


def lines_of(path: Path) -> list[str]:
    """JSON lines (not str.splitlines: texts hold U+2028, which JSON leaves unescaped)."""
    return [line for line in path.read_text().split("\n") if line]


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def test_lint_reports_every_problem_of_every_file_with_its_line_and_key(tmp_path: Path) -> None:
    for name, text in BROKEN.items():
        write(tmp_path, name, text)
    result = subprocess.run(
        [sys.executable, "-m", "jetflow", "lint", *sorted(BROKEN)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout == EXPECTED
    assert result.stderr == "jetflow lint: 9 of 9 files have problems\n"


def test_a_clean_file_lints_ok_and_runs(tmp_path: Path, synthetic_capture: Path) -> None:
    path = write(
        tmp_path,
        "langs.yaml",
        f"""\
        name: langs
        source: {{replay: {{path: "{synthetic_capture}"}}}}
        pipeline:
          - decode: {{time: relay}}
        streams:
          posts:
            from: pipeline
            pipeline:
              - filter: {{collections: [app.bsky.feed.post], operations: [create]}}
          langs:
            from: posts
            pipeline:
              - count_by: {{key: record.langs.0, window: {{size: 1h}}}}
        sinks:
          - jsonl: {{path: "{tmp_path / "langs.jsonl"}"}}
            stream: langs
          - jsonl: {{path: "{tmp_path / "posts.jsonl.zst"}"}}
            stream: posts
        checkpoint: {{path: "{tmp_path / "cursor.json"}", interval: 100ms}}
        """,
    )
    assert lint_file(path) == []
    pipeline = Pipeline.from_file(path)
    assert pipeline.name == "langs" and pipeline.checkpoint_interval == 0.1
    result = pipeline.run()
    assert result.reason == "completed" and result.stats.read == 3000
    (window,) = [json.loads(line) for line in lines_of(tmp_path / "langs.jsonl")]
    posts = (
        zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress((tmp_path / "posts.jsonl.zst").read_bytes())
    )
    assert sum(window["value"].values()) == window["events"] == posts.count(b"\n") > 0
    assert json.loads((tmp_path / "cursor.json").read_text())["cursor"] > 0


def test_python_functions_need_the_file_and_the_runner_to_opt_in(
    tmp_path: Path, synthetic_capture: Path
) -> None:
    (tmp_path / "checks.py").write_text(
        "def odd(event):\n    return len(event.rkey) % 2 == 1 and 1 / (event.rkey[-1] != 'a')\n"
    )
    path = write(
        tmp_path,
        "odd.yaml",
        f"""\
        allow_python: true
        source: {{replay: {{path: "{synthetic_capture}"}}}}
        pipeline:
          - decode
          - filter: {{predicate: "checks:odd"}}
        sinks:
          - jsonl: {{path: "{tmp_path / "odd.jsonl"}"}}
        on_error:
          jsonl: {{path: "{tmp_path / "errors.jsonl"}"}}
        """,
    )
    assert lint_file(path) == []
    with pytest.raises(PipelineFileError) as refused:
        load_pipeline(path)
    assert str(refused.value) == (
        f"{path}:5: pipeline[1].filter.predicate: checks:odd is Python code: allow it with"
        " --allow-python (allow_python=True in Python)"
    )
    result = load_pipeline(path, allow_python=True).run()
    errors = [json.loads(line) for line in lines_of(tmp_path / "errors.jsonl")]
    assert result.stats.routed == len(errors) > 0
    assert {e["error_type"] for e in errors} == {"ZeroDivisionError"}
    assert all(
        e["function"] == "checks:odd" and e["event"]["commit"]["rkey"][-1] == "a" for e in errors
    )
    kept = lines_of(tmp_path / "odd.jsonl")
    assert kept and all(len(json.loads(line)["commit"]["rkey"]) % 2 == 1 for line in kept)


def test_a_missing_module_is_reported_where_it_is_named(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "missing.yaml",
        """\
        allow_python: true
        source: {firehose: {}}
        pipeline:
          - decode
          - map: {fn: "no_such_module_here:f"}
        sinks: [stdout]
        """,
    )
    problems = [str(p) for p in lint_file(path, allow_python=True)]
    assert problems == [
        f"{path}:5: pipeline[1].map.fn: cannot import 'no_such_module_here':"
        " No module named 'no_such_module_here'"
    ]


def test_a_source_that_refuses_its_arguments_is_reported_when_loading(tmp_path: Path) -> None:
    path = write(tmp_path, "gone.yaml", "source: {replay: {path: gone.bin}}\nsinks: [stdout]\n")
    assert lint_file(path) == []  # lint does not touch files the pipeline reads
    with pytest.raises(PipelineFileError, match=r"gone.yaml:1: source.replay: replay: gone.bin"):
        load_pipeline(path)


def test_an_empty_or_non_mapping_file_is_one_problem() -> None:
    assert [str(p) for p in plan_text("", "e.yaml")[1]] == [
        "e.yaml:1: a pipeline file is a mapping with source, pipeline and sinks"
    ]
    assert [str(p) for p in plan_text("- decode\n", "l.yaml")[1]] == [
        "l.yaml:1: a pipeline file is a mapping with source, pipeline and sinks"
    ]


def test_missing_keys_are_named() -> None:
    assert [str(p) for p in plan_text("pipeline: [decode]\n", "m.yaml")[1]] == [
        "m.yaml:1: missing 'sinks' (a list of sinks)",
        "m.yaml:1: missing 'source' (one source)",
    ]
