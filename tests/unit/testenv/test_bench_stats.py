"""The arithmetic behind the operator benchmark's numbers (hack/autoglm_testenv/bench_stats.py)."""
from __future__ import annotations

import math

import pytest

from autoglm_testenv.bench_floor import collection_path
from autoglm_testenv.bench_stats import (
    bucket_delta,
    counter_total,
    cpu_seconds,
    histogram_buckets,
    histogram_quantile,
    peak_rss_mb,
    ratio,
    table,
)

METRICS = """# HELP autoglm_operator_reconcile_seconds Duration of one reconcile.
# TYPE autoglm_operator_reconcile_seconds histogram
autoglm_operator_reconcile_seconds_bucket{le="0.1"} 50.0
autoglm_operator_reconcile_seconds_bucket{le="0.5"} 90.0
autoglm_operator_reconcile_seconds_bucket{le="1.0"} 100.0
autoglm_operator_reconcile_seconds_bucket{le="+Inf"} 100.0
autoglm_operator_reconcile_seconds_count 100.0
autoglm_operator_reconcile_seconds_sum 12.5
# HELP autoglm_operator_reconciles_total Reconciles by outcome.
# TYPE autoglm_operator_reconciles_total counter
autoglm_operator_reconciles_total{result="changed"} 30.0
autoglm_operator_reconciles_total{result="unchanged"} 70.0
"""


def test_cpu_time_is_counted_from_the_fields_after_the_command_name() -> None:
    # A command name with spaces and a ')' must not shift the fields; utime 250 + stime 50 ticks.
    stat = "4242 (autoglm (op) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 300 0 0"
    assert cpu_seconds(stat, 100) == 3.0


def test_peak_memory_is_vmhwm_in_mib() -> None:
    assert peak_rss_mb("Name:\tpython\nVmPeak:\t 900000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t 102400 kB\n") == 200.0
    with pytest.raises(ValueError, match="VmHWM"):
        peak_rss_mb("Name:\tpython\n")


def test_histogram_buckets_and_counters_are_read_from_a_metrics_page() -> None:
    assert histogram_buckets(METRICS, "autoglm_operator_reconcile_seconds") == [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (math.inf, 100.0)]
    assert counter_total(METRICS, "autoglm_operator_reconciles") == 100.0


def test_quantiles_interpolate_inside_the_bucket_like_promql() -> None:
    buckets = histogram_buckets(METRICS, "autoglm_operator_reconcile_seconds")
    assert histogram_quantile(buckets, 0.5) == pytest.approx(0.1)
    assert histogram_quantile(buckets, 0.7) == pytest.approx(0.3)  # halfway through (0.1, 0.5]
    assert histogram_quantile(buckets, 0.99) == pytest.approx(0.95)
    # Beyond the largest finite bound the answer is that bound, never infinity.
    assert histogram_quantile([(1.0, 1.0), (math.inf, 10.0)], 0.99) == 1.0
    assert histogram_quantile([(1.0, 0.0), (math.inf, 0.0)], 0.5) is None


def test_a_phase_is_the_difference_of_two_scrapes() -> None:
    before = [(0.1, 40.0), (0.5, 40.0), (math.inf, 40.0)]
    after = [(0.1, 40.0), (0.5, 50.0), (math.inf, 50.0)]
    assert bucket_delta(after, before) == [(0.1, 0.0), (0.5, 10.0), (math.inf, 10.0)]
    assert histogram_quantile(bucket_delta(after, before), 0.5) == pytest.approx(0.3)


def test_ratios_and_table_cells() -> None:
    assert ratio(12.0, 8) == 1.5
    assert ratio(None, 8) is None and ratio(3.0, 0) is None
    text = table(("what", "ours"), [("p99 (s)", 0.123456), ("writes", None), ("cpu", 12345.6)])
    assert text.splitlines() == [
        "| what    | ours   |",
        "|---------|--------|",
        "| p99 (s) | 0.123  |",
        "| writes  | -      |",
        "| cpu     | 12,346 |",
    ]


def test_the_floor_posts_to_each_kinds_collection() -> None:
    meta = {"name": "glm", "namespace": "ml"}
    assert collection_path({"apiVersion": "v1", "kind": "Service", "metadata": meta}) == "/api/v1/namespaces/ml/services"
    assert collection_path({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta}) == (
        "/apis/networking.istio.io/v1/namespaces/ml/virtualservices")
