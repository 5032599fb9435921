"""The report's words and JSON on one small backtest, varied by hand where a case needs it."""
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from autoglm_predictor.backtest import report
from autoglm_predictor.backtest.evaluation import Backtest, Scenario, backtest, baselines, fit, prepare
from autoglm_predictor.backtest.frontier import Comparison
from autoglm_predictor.forecast.simulator import ClusterConfig

SETTINGS = {"trace": "synthetic", "p99 fraction": None}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    cluster = ClusterConfig(step_seconds=60, capacity_per_replica=15, max_replicas=10, cold_start_seconds=60)
    return Scenario(step=pd.Timedelta("1min"), bucket=pd.Timedelta("5min"), horizon=3, report_horizons=(1, 3),
                    quantile=0.95, cluster=cluster)


@pytest.fixture(scope="module")
def result(scenario) -> Backtest:
    """Two days of a daily cycle at one-minute steps; cold starts 20 s and 60 s are evaluated, 900 s
    (a lead time beyond the 15-minute horizon) is skipped."""
    index = pd.date_range("2026-03-01", periods=2 * 1440, freq="1min")
    minute = np.arange(len(index))
    raw = pd.Series(np.random.default_rng(0).poisson(40 + 30 * np.sin(2 * np.pi * minute / 1440)), index=index,
                    dtype=float)
    data = prepare(raw, scenario, None, None, None)
    forecasters = baselines(scenario, data)
    fit(forecasters, data)
    return backtest(scenario, data, forecasters, (0.8,), (0.6, 0.8), (20.0, 60.0, 900.0), progress=lambda line: None)


def test_a_skipped_cold_start_is_listed_with_its_reason_and_the_break_even_speaks_of_evaluated_ones(scenario, result):
    assert set(result.cold_starts) == {20.0, 60.0} and set(result.skipped_cold_starts) == {900.0}
    text = report.markdown("Backtest", SETTINGS, scenario, result, {}, [])
    assert "every longer evaluated cold start" in text and "Not evaluated: 900 s" in text
    assert "| 900 s | skipped: forecast horizon of 3 buckets does not cover the lead time" in text
    document = json.loads(report.to_json(SETTINGS, scenario, result, {}))["cold_start_sweep"]
    assert set(document["rows"]) == {"20", "60"}
    assert document["skipped"]["900"].startswith("forecast horizon of 3 buckets does not cover the lead time")


@pytest.mark.parametrize("even, words, shortest", [
    (20.0, "20 s or less (the shortest swept).", True),
    (60.0, "evaluated cold start): 60 s.", False),
    (None, "none among the evaluated cold starts.", False),
])
def test_a_break_even_at_the_shortest_swept_cold_start_is_an_upper_bound(scenario, result, even, words, shortest):
    changed = replace(result, break_even_cold_start_seconds=even)
    assert words in report.markdown("Backtest", SETTINGS, scenario, changed, {}, [])
    document = json.loads(report.to_json(SETTINGS, scenario, changed, {}))["cold_start_sweep"]
    assert document["break_even_cold_start_seconds"] == even  # the number stays where automation reads it
    assert document["break_even_is_shortest_swept"] is shortest


@pytest.mark.parametrize("policy, reactive, cell", [
    (100.0, 100.0, "-"),  # neither misses a request: 0 / 0, not "1.00"
    (99.999, 99.5, "0.002"),  # a true ratio of 0.002, not "0.00"
    (99.0, 98.0, "0.50"),
    (99.0, 100.0, "inf"),
    (99.0, None, "outside the sweep"),
])
def test_the_miss_ratio_cell_says_dash_for_nothing_missed_and_keeps_small_ratios(policy, reactive, cell):
    c = Comparison(gpu_hours=1.0, attainment_pct=policy, reactive_attainment_at_equal_cost=reactive,
                   reactive_gpu_hours_at_equal_attainment=None)
    assert report.comparison_cells(c)[1] == cell
