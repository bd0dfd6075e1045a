"""The Prometheus text format and bounded label cardinality."""

from __future__ import annotations

from jetflow.metrics import Registry


def test_text_format_counters_gauges_histograms() -> None:
    registry = Registry()
    counter = registry.counter("things_total", "Things.", ["kind"])
    counter.labels('a"b').inc(3)
    registry.gauge("level", "Level.").set(2.5)
    registry.gauge("computed", "From a function.", function=lambda: 7)
    histogram = registry.histogram("latency_seconds", "Latency.", buckets=[0.1, 1.0])
    histogram.observe(0.05)
    histogram.observe(0.5)
    histogram.observe(5)
    text = registry.render().decode()
    assert '# TYPE things_total counter\nthings_total{kind="a\\"b"} 3\n' in text
    assert "level 2.5\n" in text and "computed 7\n" in text
    assert 'latency_seconds_bucket{le="0.1"} 1\n' in text
    assert 'latency_seconds_bucket{le="1"} 2\n' in text
    assert 'latency_seconds_bucket{le="+Inf"} 3\n' in text
    assert "latency_seconds_count 3\n" in text and "latency_seconds_sum 5.55\n" in text


def test_unlabelled_metrics_read_zero_before_the_first_update() -> None:
    registry = Registry()
    registry.counter("starts_total", "Starts.")
    assert "starts_total 0\n" in registry.render().decode()


def test_label_values_are_capped() -> None:
    registry = Registry()
    counter = registry.counter(
        "by_collection_total", "By collection.", ["collection"], max_series=10
    )
    for n in range(100):
        counter.labels(f"com.example.c{n}").inc()
    text = registry.render().decode()
    assert text.count("by_collection_total{") == 11  # ten real series and "_other"
    assert 'by_collection_total{collection="_other"} 90' in text
