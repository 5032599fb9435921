"""The cold-start sweep's break-even and the reactive frontier over a hand-made replay."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from autoglm_predictor.backtest.evaluation import (FLOOR_UTILISATION, ColdStart, Data, Scenario, ScenarioError,
                                                   baselines, break_even_cold_start, closed_loop, fit, floors,
                                                   lead_forecasts, prepare, reactive_frontier, seasons)
from autoglm_predictor.backtest.frontier import Comparison, Frontier, Point
from autoglm_predictor.forecast.series import Split
from autoglm_predictor.forecast.simulator import ClusterConfig


def row(seconds: float, attainment: float, reactive: float | None, backed_off: bool = False) -> ColdStart:
    comparison = Comparison(gpu_hours=1.0, attainment_pct=attainment, reactive_attainment_at_equal_cost=reactive,
                            reactive_gpu_hours_at_equal_attainment=None)
    return ColdStart(seconds, backed_off, policy=None, frontier=Frontier((Point(0.8, 1.0, 90.0),)),  # type: ignore[arg-type]
                     comparison=comparison)


@pytest.mark.parametrize(("rows", "expected"), [
    ([row(20, 95, 96), row(100, 99, 96), row(300, 99, 90)], 100),  # behind at 20 s, ahead from 100 s
    ([row(20, 99, 96), row(100, 95, 96), row(300, 99, 90)], 300),  # ahead at 20 s but not at 100 s
    ([row(20, 99, 96), row(100, 99, 96), row(300, 99, 90)], 20),
    ([row(20, 99, 96, backed_off=True), row(100, 99, 96)], 100),  # a backed-off row does not beat
    ([row(20, 99, 96), row(300, 99, None)], None),  # outside the frontier: no claim
])
def test_break_even_is_the_shortest_cold_start_from_which_the_floor_always_beats(rows, expected):
    assert break_even_cold_start({r.cold_start_seconds: r for r in rows}) == expected


def test_a_forecast_floor_beats_reactive_at_equal_cost_on_a_step_and_backs_off_below_the_break_even():
    # Minute steps, 60 req/min per replica: demand steps from 60 to 240 at minute 30; the
    # forecast (perfect, one bucket = one step) lets the floor start pods a cold start ahead.
    index = pd.date_range("2026-01-01", periods=60, freq="1min")
    demand = pd.Series([60.0] * 30 + [240.0] * 30, index=index)
    data = Data(steps=Split(train=demand[:1], test=demand), buckets=Split(train=demand[:1], test=demand))
    cluster = ClusterConfig(step_seconds=60, capacity_per_replica=60, max_replicas=10, cold_start_seconds=180,
                            sync_period_seconds=60, target_utilisation=1.0)
    scenario = Scenario(step=pd.Timedelta("1min"), bucket=pd.Timedelta("1min"), horizon=8, report_horizons=(1,),
                        quantile=0.95, cluster=cluster, pipeline_lag_steps=0, calibration_rate=0.0)
    values = demand.to_numpy()
    upper = np.array([[values[min(o + h, 59)] for h in range(8)] for o in range(60)])
    floor = closed_loop(scenario, data, {"perfect": upper}, 1.0, include_static=False)["perfect floor"].outcome
    front, sweep = reactive_frontier(scenario, data, (1.0, 0.5))
    assert floor.slo_attainment_pct == pytest.approx(100.0) and sweep[1.0].slo_attainment_pct < 100
    assert floor.gpu_hours < sweep[0.5].gpu_hours
    backed = replace(scenario, break_even_cold_start_seconds=300.0)  # pods start faster than it: no floor
    reactive_like = closed_loop(backed, data, {"perfect": upper}, 1.0, include_static=False)
    assert reactive_like["perfect floor"].outcome == reactive_like["reactive"].outcome


def test_a_bucket_is_its_peak_step_and_the_floor_covers_it_at_full_capacity():
    # Per-minute steps, 5-minute buckets: a bucket with minutes 60, 60, 300, 60, 60 must be
    # covered at 300 a minute, i.e. 1500 per bucket, not at its total of 540.
    index = pd.date_range("2026-01-01", periods=20, freq="1min")
    raw = pd.Series([60.0, 60, 300, 60, 60] * 4, index=index)
    cluster = ClusterConfig(step_seconds=60, capacity_per_replica=60, max_replicas=10, cold_start_seconds=60,
                            sync_period_seconds=60, target_utilisation=0.5)
    scenario = Scenario(step=pd.Timedelta("1min"), bucket=pd.Timedelta("5min"), horizon=2, report_horizons=(1,),
                        quantile=0.95, cluster=cluster, pipeline_lag_steps=0, calibration_rate=0.0)
    data = prepare(raw, scenario, "2026-01-01 00:10", None, None)
    assert data.buckets.train.tolist() == [1500.0, 1500.0] and data.steps.test.tolist() == [60.0, 60, 300, 60, 60] * 2
    # A perfect forecast of the peak: the floor is 5 replicas (300 / 60 at utilisation 1), not 10
    # (reactive's target 0.5, which reactive still scales to above it), and every request is served.
    upper = np.full((2, 2), 1500.0)
    demand = data.steps.test.to_numpy()
    assert floors(scenario, FLOOR_UTILISATION, demand, *lead_forecasts(scenario, upper, len(demand))).max() == 5
    floor = closed_loop(scenario, data, {"perfect": upper}, 0.5, include_static=False)["perfect floor"]
    assert floor.outcome.slo_attainment_pct == pytest.approx(100.0)


def minute_scenario(**changes) -> Scenario:
    """Minute steps in 5-minute buckets, a 30-minute horizon, scored at 5 and 30 minutes."""
    cluster = ClusterConfig(step_seconds=60, capacity_per_replica=15, max_replicas=10, cold_start_seconds=300)
    settings = dict(step=pd.Timedelta("1min"), bucket=pd.Timedelta("5min"), horizon=6, report_horizons=(1, 6),
                    quantile=0.95, cluster=cluster)
    return Scenario(**{**settings, **changes})


@pytest.mark.parametrize("changes, message", [
    ({"quantile": 1.0}, r"--quantile must lie in \(0, 1\), got 1.0"),
    ({"quantile": float("nan")}, "--quantile must lie in"),
    ({"calibration_rate": -1.0}, "--calibration-rate must be >= 0"),
    ({"step": pd.Timedelta("2min")}, "--bucket 5min must be a whole multiple of --step 2min"),
])
def test_scenario_names_the_option_at_fault(changes, message):
    with pytest.raises(ScenarioError, match=message):
        minute_scenario(**changes)


def minutes(count: int) -> pd.Series:
    index = pd.date_range("2026-01-01", periods=count, freq="1min")
    return pd.Series(np.random.default_rng(0).poisson(30, count), index=index, dtype=float)


@pytest.mark.parametrize("count, test_start, message", [
    # 70% of 3 hours trains on 25 buckets; the linear AR needs 12 lags + 6 - 1 + 4 x 13 = 69
    (180, None, "the training period holds 25 buckets of 5min; a 30 min horizon needs at least 69"),
    (1440, "2026-01-01 23:50", "the test period holds 2 buckets of 5min; scoring the 30 min horizon needs at least 6"),
])
def test_too_short_a_period_is_refused_before_any_fit(count, test_start, message):
    scenario = minute_scenario()
    with pytest.raises(ScenarioError, match=message):
        baselines(scenario, prepare(minutes(count), scenario, test_start, None, None))


@pytest.mark.parametrize("bucket, history, expected", [
    ("5min", 2 * 288, {"1 day": 288}),
    ("5min", 2 * 288 - 1, {}),
    ("1h", 14 * 24, {"1 day": 24, "7 days": 168}),
    ("7min", 10_000, {"7 days": 1440}),  # a day is not a whole number of 7-minute buckets; a week is
])
def test_seasons_are_whole_and_seen_twice(bucket, history, expected):
    assert seasons(pd.Timedelta(bucket), history) == expected


def test_a_refused_fit_says_how_much_of_the_training_period_is_missing():
    scenario = minute_scenario()
    raw = minutes(1440)
    raw.iloc[:800:2] = np.nan  # the first 160 buckets miss a sample: 41 complete rows for 13 coefficients
    data = prepare(raw, scenario, None, None, None)
    with pytest.raises(ScenarioError, match=r"linear-AR refused the training period \(201 buckets, 160 of them missing\): "
                                            "only .* complete training rows"):
        fit(baselines(scenario, data), data)
