"""The report's words and JSON on one small backtest, varied by hand where a case needs it."""
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from autoglm_predictor.backtest import report
from autoglm_predictor.backtest.evaluation import Backtest, Data, Scenario, backtest, baselines, fit, prepare
from autoglm_predictor.backtest.frontier import Comparison
from autoglm_predictor.forecast.simulator import ClusterConfig

SETTINGS = {"trace": "synthetic", "p99 fraction": None}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    cluster = ClusterConfig(step_seconds=60, capacity_per_replica=15, max_replicas=10, cold_start_seconds=60)
    return Scenario(step=pd.Timedelta("1min"), bucket=pd.Timedelta("5min"), horizon=3, report_horizons=(1, 3),
                    quantile=0.95, cluster=cluster)


@pytest.fixture(scope="module")
def data(scenario) -> Data:
    """Two days of a daily cycle at one-minute steps, the last 30% (14.4 hours) tested."""
    index = pd.date_range("2026-03-01", periods=2 * 1440, freq="1min")
    minute = np.arange(len(index))
    raw = pd.Series(np.random.default_rng(0).poisson(40 + 30 * np.sin(2 * np.pi * minute / 1440)), index=index,
                    dtype=float)
    return prepare(raw, scenario, None, None, None)


@pytest.fixture(scope="module")
def result(scenario, data) -> Backtest:
    """Cold starts 20 s and 60 s are evaluated, 900 s (a lead time beyond the 15-minute horizon) is skipped."""
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


def test_plot_titles_put_the_per_request_slo_attainment_first(scenario, data, result):
    outcome = result.replays["reactive"].outcome
    assert report.replay_title("reactive", outcome).startswith(
        f"reactive: {outcome.slo_attainment_pct:.2f}% of requests within the TTFT SLO, {outcome.violation_pct:.2f}% "
        "violation minutes")
    figure = report.capacity_figure(scenario, data, result)
    assert figure.axes[0].get_title() == report.replay_title("reactive", outcome)
    trade = report.tradeoff_figure(result)
    assert [ax.get_ylabel() for ax in trade.axes] == ["requests within the TTFT SLO (%)", "SLO-violation minutes (%)"]
    assert trade.get_suptitle().startswith("Trade-off when sweeping the target utilisation: SLO attainment (left)")


def test_the_capacity_plot_says_when_it_shows_only_the_first_days(scenario, data, result, monkeypatch):
    assert report.capacity_figure(scenario, data, result).get_suptitle() == "Demand vs Ready capacity over the test period"
    monkeypatch.setattr(report, "PLOT_DAYS", 0.25)  # the 14.4-hour test period is longer than 6 hours
    assert report.capacity_figure(scenario, data, result).get_suptitle() == (
        "Demand vs Ready capacity over the first 0.25 days of the test period (scores: the whole test period)")


def test_plot_writes_the_three_pngs(scenario, data, result, tmp_path):
    paths = report.plot(scenario, data, result, tmp_path / "r")
    assert [p.name for p in paths] == ["demand_vs_capacity.png", "tradeoff.png", "frontier.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)


def test_a_setting_switched_off_reads_off(scenario, result):
    assert "| p99 fraction | off |" in report.markdown("Backtest", SETTINGS, scenario, result, {}, [])


def test_a_fleet_too_small_for_the_trace_is_said_only_when_even_the_oracle_misses(scenario, result):
    assert "fleet is too small" not in report.markdown("Backtest", SETTINGS, scenario, result, {}, [])
    oracle = result.replays["oracle"]
    starved = replace(oracle, outcome=replace(oracle.outcome, slo_attainment_pct=33.88))
    changed = replace(result, replays={**result.replays, "oracle": starved})
    assert "even the oracle (the floor fed the true demand) meets the SLO for only 33.88% of requests" in \
        report.markdown("Backtest", SETTINGS, scenario, changed, {}, [])
