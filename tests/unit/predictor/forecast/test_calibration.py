"""Level-relative online quantile tracking (forecast/calibration.py)."""
import math

import numpy as np
import pytest

from autoglm_predictor.forecast.calibration import (MAX_LOG_FACTOR, CalibrationError, LiveCalibration, QuantileTracker,
                                                    calibrate, relative_scale)
from autoglm_predictor.forecast.scores import exceeds


def test_each_row_uses_only_outcomes_known_at_its_origin():
    # Origins 1..4 forecast 4 (median 1) for the next bucket; every bucket is 10. Row i is scored by
    # bucket start + i, known from row i + 1 on; each miss moves the log factor by rate x scale x q = 0.2.
    out = calibrate(np.full((4, 1), 4.0), np.ones((4, 1)), np.full(5, 10.0), start=1, quantile=0.5, scale=0.4, rate=1.0)
    assert out[:, 0] == pytest.approx([4 * math.exp(g) for g in (0, 0.2, 0.4, 0.6)])
    # Horizon 2: the second column is scored one bucket later than the first.
    out = calibrate(np.full((4, 2), 4.0), np.ones((4, 2)), np.full(6, 10.0), start=1, quantile=0.5, scale=0.4, rate=1.0)
    assert np.log(out / 4) == pytest.approx(np.array([[0, 0], [0.2, 0], [0.4, 0.2], [0.6, 0.4]]))


@pytest.mark.parametrize("quantile", [0.9, 0.95])
@pytest.mark.parametrize("bias", [0.9, 1.0, 1.25])
def test_the_miss_rate_tracks_one_minus_the_quantile_whatever_the_forecaster(quantile, bias):
    rng = np.random.default_rng(7)
    level = 100 + 40 * np.sin(np.arange(6000) / 50) + rng.gamma(2.0, 8.0, 6000)  # skewed noise
    median = level[1:] - rng.gamma(2.0, 8.0, 5999)
    upper = (median * bias)[:, None]  # a badly calibrated forecaster
    calibrated = calibrate(upper, median[:, None], level, start=1, quantile=quantile, scale=0.1)
    misses = level[1:] > calibrated[:, 0]
    raw = float(np.mean(level[1:] > upper[:, 0]))
    assert abs(raw - (1 - quantile)) > 0.05  # the raw forecaster is off ...
    assert float(np.mean(misses[500:])) == pytest.approx(1 - quantile, abs=0.01)  # ... the tracked one is not


def test_an_exact_forecast_is_left_alone_and_never_counted_as_missed():
    # The linear AR on the deterministic staged ramp: median = upper = actual up to float rounding.
    ramp = np.repeat([60.0, 120.0, 240.0, 600.0, 120.0], 12)
    exact = (ramp[1:] * (1 - 1e-15))[:, None]  # a rounding below the actual
    out = calibrate(exact, exact, ramp, start=1, quantile=0.95, scale=0.2)
    assert out.tolist() == exact.tolist()  # hits pulled the factor down; the median holds it
    assert not exceeds(ramp[1:], out[:, 0]).any() and exceeds(600.0, 599.99)


def test_a_factor_learned_at_a_surge_adds_little_in_the_trough():
    # Ten misses at a level of 100, then the trough at 2: the correction scales with the level.
    tracker = QuantileTracker(quantile=0.95, horizon=1, scale=0.2, rate=0.2)
    for _ in range(10):
        tracker.observe(0, 100.0, 150.0)
    factor = math.exp(10 * 0.2 * 0.2 * 0.95)
    assert tracker.apply(np.array([100.0]), np.array([90.0]))[0] == pytest.approx(100 * factor)
    assert tracker.apply(np.array([2.0]), np.array([1.0]))[0] == pytest.approx(2 * factor)  # +0.9, not +46


def test_live_tracker_clip_and_bad_settings():
    tracker = QuantileTracker(quantile=0.8, horizon=2, scale=0.5, rate=0.5)
    assert tracker.apply(np.array([-3.0, 4.0]), np.array([-4.0, 1.0])).tolist() == [0.0, 4.0]
    tracker.observe(0, 4.0, 5.0)  # miss: +0.5 x 0.5 x 0.8
    tracker.observe(1, 4.0, 3.0)  # hit: -0.5 x 0.5 x 0.2
    tracker.observe(1, 4.0, float("nan"))  # unknown: skipped
    assert tracker.log_factors.tolist() == pytest.approx([0.2, -0.05]) and tracker.miss_rate == 0.5
    for _ in range(5):
        tracker.observe(0, 4.0, 5.0)
    assert tracker.log_factors[0] == MAX_LOG_FACTOR  # never more than the forecast bound's 2x
    for settings in (dict(quantile=1.0), dict(quantile=0.4), dict(horizon=0), dict(scale=0.0), dict(rate=-1.0)):
        with pytest.raises(CalibrationError):
            QuantileTracker(**{**dict(quantile=0.9, horizon=1, scale=1.0), **settings})
    with pytest.raises(CalibrationError):
        calibrate(np.ones((2, 2)), np.ones((2, 1)), np.ones(4), start=1, quantile=0.9, scale=1.0)


def test_relative_scale_is_the_mean_change_over_the_mean_level():
    assert relative_scale(np.array([10.0, 12.0, np.nan, 8.0, 10.0])) == pytest.approx(2.0 / 10.0)
    assert relative_scale(np.zeros(5)) == 1.0 and relative_scale(np.array([np.nan])) == 1.0


def test_live_calibration_scores_each_origin_once_as_its_buckets_close():
    import pandas as pd

    index = pd.date_range("2026-01-01", periods=10, freq="1min")
    series = pd.Series(10 + np.arange(10, dtype=float) * 2, index=index)
    live = LiveCalibration(quantile=0.5, rate=1.0)
    upper, median = np.full(2, 4.0), np.ones(2)
    first = live.apply(series[:5], upper, median, 60)
    assert first.tolist() == [4, 4] and live.tracker.scale == pytest.approx(2 / 14)
    g = 0.5 * 2 / 14  # one miss at q0.5, rate 1
    assert live.apply(series[:5], upper, median, 60).tolist() == [4, 4]  # same origin: nothing closed
    # Bucket 5 closes: the origin-5 forecast at horizon 0 missed.
    assert live.apply(series[:6], upper, median, 60) == pytest.approx([4 * math.exp(g), 4])
    # Bucket 6 closes: origin 5 at horizon 1 and origin 6 at horizon 0 both missed.
    assert live.apply(series[:7], upper, median, 60) == pytest.approx([4 * math.exp(2 * g), 4 * math.exp(g)])
    assert live.tracker.outcomes == 3 and "relative-quantile-tracking q0.5" in live.describe()
    assert live.apply(series[:7], np.full(3, 4.0), np.ones(3), 60).tolist() == [4, 4, 4]  # a new horizon starts over
