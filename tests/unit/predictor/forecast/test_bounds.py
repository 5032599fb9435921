"""Forecasts stay finite and bounded on short, idle, spiky and restarted histories (issue 13).

The histories are what the demo's predictor sees (5-second buckets of peak running + waiting
requests, horizon 4 buckets): an idle engine (zeros) before the load generator starts, a load of
2-6, and collector restarts (missing buckets, then zeros). On these the old linear AR, fitted on
25-47 complete rows for 13 coefficients, forecast hundreds to thousands and the floor sat at the
maximum; every test here fails on that code.
"""
import logging
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from autoglm_predictor.forecast.forecasters import (
    BOUND_FACTOR, BOUND_MARGIN, ForecastError, LinearAR, Persistence, SeasonalNaive, bounds,
)
from autoglm_predictor.forecast.models import DeploymentModel, ModelSettings

HORIZON = 4
QUANTILES = (0.5, 0.95)
DEMO = ModelSettings(bucket_seconds=5, season_seconds=1440, lstm=False)  # hack/autoglm_testenv/demo.py
GAP = None  # a missing bucket: one 1-second sample inside it never arrived

# The demo's first 200 s: 24 idle buckets, then load. The old ladder switched to the linear AR at
# 40 buckets and forecast 5,094 here.
IDLE_THEN_LOAD = [0] * 24 + [2, 5, 2, 6, 5, 3, 4, 5, 4, 6, 4, 2, 5, 2, 5, 6]
# Idle, load, a collector restart (a missing bucket, then zeros) and missing buckets: 69 buckets,
# enough for the linear AR to be chosen, but only 19 complete rows. The old fit forecast 954.
RESTARTED = ([0] * 19 + [3, 3, 4, 4, 5, GAP, 4, 3, 3, 2, 5, 3, 4, 4, 5, 4, GAP, 0, 0, 5, 4, 5, 6, 3, 2, 4, 5, 2, 2, 2,
                          6, 4, 2, 5, 3, 5, GAP, 6, 4, 4, 4, 6, 5, 4, 6, 3, 6, 2, 5, 6])


def series(values) -> pd.Series:
    values = [math.nan if v is None else v for v in values]
    return pd.Series(np.asarray(values, dtype=float), index=pd.date_range("2024-01-01", periods=len(values), freq="5s"))


def assert_bounded(forecast: np.ndarray, history: pd.Series, origins) -> None:
    """Finite, non-negative and at most BOUND_FACTOR x the peak before each origin + BOUND_MARGIN."""
    assert np.isfinite(forecast).all()
    limit = bounds(history.to_numpy(dtype=float), np.asarray(origins))
    assert (forecast >= 0).all() and (forecast <= limit[:, None, None] + 1e-9).all(), (forecast.max(), limit)


def live_forecast(history: pd.Series):
    return DeploymentModel(DEMO, trainer=None, name="demo/glm-chat").forecast(history, HORIZON, QUANTILES, now=0)


def test_a_short_idle_history_gets_persistence_not_a_runaway_linear_ar():
    history = series(IDLE_THEN_LOAD)
    with pytest.raises(ForecastError, match="25 complete training rows for 13") as refused:
        LinearAR(HORIZON, lags=12, quantiles=QUANTILES).fit(history)
    assert refused.value.reason == "too-few-rows"
    values, fitted = live_forecast(history)
    assert fitted.kind == "persistence"
    assert_bounded(values[None], history, [len(history)])
    assert values.max() <= BOUND_FACTOR * 6 + BOUND_MARGIN


def test_a_restart_hands_the_chosen_linear_ar_down_to_persistence(caplog):
    history = series(RESTARTED)
    with caplog.at_level(logging.INFO, logger="autoglm_predictor.forecast.models"):
        values, fitted = live_forecast(history)
    assert fitted.kind == "persistence"
    assert_bounded(values[None], history, [len(history)])
    assert "linear-ar refused (too-few-rows: only 19 complete training rows" in caplog.text
    assert "persistence answers" in caplog.text


def test_an_explosive_fit_is_refused_and_the_ladder_answers():
    # A load swinging bucket to bucket with a growing amplitude: the old fit extrapolated the swing
    # (high, then clamped to 0.0, then higher), exactly the pattern of the report.
    t = np.arange(80)
    history = series(3000 + (-1.12) ** t)
    forecaster = LinearAR(HORIZON, lags=12, quantiles=QUANTILES)
    with pytest.raises(ForecastError, match="root of modulus 1.12") as refused:
        forecaster.fit(history)
    assert refused.value.reason == "explosive"
    values, fitted = live_forecast(history)
    assert fitted.kind == "persistence"
    assert_bounded(values[None], history, [len(history)])


def test_a_fit_forecasting_beyond_the_bound_on_its_own_history_is_refused():
    history = series(3 + np.sin(np.arange(120) / 3))
    forecaster = LinearAR(HORIZON, lags=12, quantiles=QUANTILES)
    forecaster.fit(history)
    forecaster._coefficients[-1] = forecaster._coefficients[-1] + np.r_[0.0, np.zeros(11), 50.0]  # a wild 12th lag
    with pytest.raises(ForecastError, match="beyond the bound") as refused:
        forecaster._judge(history.to_numpy())
    assert refused.value.reason == "out-of-bound"


def test_an_overflowed_sample_counts_as_missing():
    values = [0.0] * 20 + [4.0, 5.0, 3.0] * 20
    values[30] = values[-1] = math.inf  # an overflowed sample, also as the newest bucket
    history = series(values)
    for forecaster in (Persistence(HORIZON, QUANTILES), SeasonalNaive(12, HORIZON, QUANTILES),
                       LinearAR(HORIZON, lags=3, quantiles=QUANTILES)):
        forecaster.fit(history)
        origins = [40, len(history)]
        assert_bounded(forecaster.predict(history, origins), history, origins)
    values, _ = live_forecast(history)
    assert_bounded(values[None], history, [len(history)])


def test_bounds_see_only_the_past_and_let_an_idle_history_rise_a_little():
    values = np.array([0.0, 0.0, 5.0, math.nan, 2.0, 50.0])
    assert bounds(values, np.array([1, 2, 3, 5, 6])).tolist() == [1.0, 1.0, 11.0, 11.0, 101.0]
    # Fitted on busy buckets, asked at an origin that has seen only zeros: up to BOUND_MARGIN.
    history = series([0.0] * 30 + [40.0, 2.0, 60.0, 5.0] * 10)
    forecaster = Persistence(HORIZON, QUANTILES)
    forecaster.fit(history)
    forecast = forecaster.predict(history, [30, len(history)])
    assert forecast[0].max() == BOUND_MARGIN
    assert_bounded(forecast, history, [30, len(history)])


def test_a_refusal_is_logged_once_per_change_not_per_decision(caplog):
    model = DeploymentModel(DEMO, trainer=None, name="demo/glm-chat")
    history = series(RESTARTED + [3, 4])
    with caplog.at_level(logging.INFO, logger="autoglm_predictor.forecast.models"):
        for end in (len(RESTARTED), len(RESTARTED), len(RESTARTED) + 1, len(RESTARTED) + 2):
            model.forecast(history[:end], HORIZON, QUANTILES, now=end)
        assert caplog.text.count("linear-ar refused") == 1
        healthy = series([0] * 10 + [2, 5, 3, 6, 4, 2] * 15)
        _, fitted = model.forecast(healthy, HORIZON, QUANTILES, now=200)
        assert fitted.kind == "linear-ar"
    assert caplog.text.count("linear-ar answers") == 1


# Loads as the collector reports them, including overflowed and missing samples.
LOADS = st.one_of(st.floats(0, 1e6), st.sampled_from([0.0, 1.0, 5.0, math.nan, math.inf]))


@settings(max_examples=150, deadline=None)
@given(values=st.lists(LOADS, min_size=HORIZON + 2, max_size=120), spike=st.integers(0, 119))
@example(values=[0.0] * 80, spike=200)  # all zeros
@example(values=[1.0, 2.0, 3.0, 2.0, 1.0, 2.0], spike=200)  # a few points
@example(values=IDLE_THEN_LOAD, spike=200)
@example(values=[math.nan if v is None else float(v) for v in RESTARTED], spike=0)
def test_every_forecaster_stays_finite_and_bounded(values, spike):
    values = list(values)
    if spike < len(values):
        values[spike] = 1000.0 * (1 + max((v for v in values if math.isfinite(v)), default=0))  # a single spike
    history = series(values)
    if not np.isfinite(history.to_numpy()).any():
        return  # nothing observed: every forecaster refuses (tested in test_predictor_forecasters)
    origins = sorted({1, len(history) // 2, len(history)})
    for forecaster in (Persistence(HORIZON, QUANTILES), SeasonalNaive(HORIZON + 1, HORIZON, QUANTILES),
                       LinearAR(HORIZON, lags=2, seasons=(HORIZON + 1,), quantiles=QUANTILES),
                       LinearAR(HORIZON, lags=12, quantiles=QUANTILES)):
        try:
            forecaster.fit(history)
        except ForecastError as error:
            assert error.reason in {"too-few-rows", "explosive", "out-of-bound"} or "shorter than" in str(error)
            continue
        assert_bounded(forecaster.predict(history, origins), history, origins)
    result = live_forecast(history)
    if result is not None:
        assert_bounded(result[0][None], history, [len(history)])
