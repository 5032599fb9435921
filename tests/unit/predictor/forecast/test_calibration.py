"""Level-relative quantile tracking with its rate chosen online by DtACI (forecast/calibration.py)."""
import math

import numpy as np
import pytest

from autoglm_predictor.forecast.calibration import (LOSS_WINDOW, MAX_LOG_FACTOR, RATE_MULTIPLES, CalibrationError,
                                                    LiveCalibration, QuantileTracker, calibrate, relative_scale)
from autoglm_predictor.forecast.scores import exceeds


def test_each_row_uses_only_outcomes_known_at_its_origin():
    # Origins 1..4 forecast 4 (median 1) for the next bucket; every bucket is 10: a miss for every expert.
    # Expert i's log factor moves by rate_i x scale x q = RATE_MULTIPLES[i] x 0.01 x 0.5 per miss; all
    # experts forecast 4 at the first outcome, so their losses tie and the weights stay 1/8 each.
    out = calibrate(np.full((4, 1), 4.0), np.ones((4, 1)), np.full(5, 10.0), start=1, quantile=0.5, scale=0.01, rate=1.0)
    assert out[0, 0] == 4.0  # nothing known yet
    assert out[1, 0] == pytest.approx(4 * math.exp(float(np.mean(RATE_MULTIPLES)) * 0.005))  # 4 e^0.031875
    # Row i depends on buckets before origin start + i only: changing later buckets leaves it alone.
    values = np.full(6, 10.0)
    upper, median = np.full((5, 2), 4.0), np.ones((5, 2))
    changed = values.copy()
    changed[4:] = 1.0
    first = calibrate(upper, median, values, start=1, quantile=0.5, scale=0.01, rate=1.0)
    second = calibrate(upper, median, changed, start=1, quantile=0.5, scale=0.01, rate=1.0)
    assert first[:4].tolist() == second[:4].tolist() and first[4].tolist() != second[4].tolist()
    # Horizon 2: the second column is first scored one bucket later than the first.
    assert first[1].tolist() == [pytest.approx(out[1, 0]), 4.0]


def stream(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A level with a slow cycle and skewed noise (n + 1 values) and a median forecast for values[1:]."""
    rng = np.random.default_rng(seed)
    level = 100 + 40 * np.sin(np.arange(n + 1) / 50) + rng.gamma(2.0, 8.0, n + 1)
    return level, level[1:] - rng.gamma(2.0, 8.0, n)


@pytest.mark.parametrize("quantile", [0.9, 0.95])
@pytest.mark.parametrize("bias", [0.9, 1.0, 1.25])
def test_the_miss_rate_tracks_one_minus_the_quantile_whatever_the_forecaster(quantile, bias):
    level, median = stream(6000)
    upper = (median * bias)[:, None]  # a badly calibrated forecaster
    calibrated = calibrate(upper, median[:, None], level, start=1, quantile=quantile, scale=0.1)
    raw = float(np.mean(level[1:] > upper[:, 0]))
    assert abs(raw - (1 - quantile)) > 0.05  # the raw forecaster is off ...
    assert float(np.mean(level[1:][500:] > calibrated[500:, 0])) == pytest.approx(1 - quantile, abs=0.01)  # ... not so


def test_a_stationary_stream_missed_20_percent_of_the_time_ends_near_5():
    level, median = stream(4000, seed=3)
    upper = median + np.quantile(level[1:] - median, 0.8)  # exceeded 20% of the time
    calibrated = calibrate(upper[:, None], median[:, None], level, start=1, quantile=0.95, scale=0.1)
    assert float(np.mean(level[1:] > upper)) == pytest.approx(0.2, abs=0.005)
    assert float(np.mean(level[1:][1000:] > calibrated[1000:, 0])) == pytest.approx(0.05, abs=0.01)


def test_a_level_shift_is_followed_faster_than_by_the_slowest_expert():
    # The forecaster is calibrated, then its upper forecast drops to 70% of what it was (a shift it
    # does not see): the misses after the shift are what each tracker lets through while it catches up.
    level, median = stream(3000, seed=11)
    upper = median + np.quantile(level[1:] - median, 0.95)
    upper[1500:] *= 0.7
    tracker = QuantileTracker(quantile=0.95, horizon=1, scale=0.1)
    combined, slowest = [], []
    for i in range(len(upper)):
        issued = tracker.apply(upper[i:i + 1], median[i:i + 1])
        combined.append(issued.forecast[0])
        slowest.append(issued.experts[0, 0])
        tracker.observe(0, issued, float(level[i + 1]))
    after = slice(1500, 1800)
    missed = float(np.mean(level[1:][after] > np.array(combined)[after]))
    missed_slowest = float(np.mean(level[1:][after] > np.array(slowest)[after]))
    assert missed_slowest > 0.3 and missed < 0.15, (missed, missed_slowest)
    # The weight moved to the faster experts during the shift.
    assert tracker.mean_rate > tracker.rates[0] * 4


def test_weights_stay_a_distribution_with_every_expert_kept_alive():
    level, median = stream(1000, seed=5)
    upper = np.column_stack([median * 0.8, median * 1.3])
    tracker = QuantileTracker(quantile=0.95, horizon=2, scale=0.1)
    for i in range(len(median) - 1):
        issued = tracker.apply(upper[i], np.column_stack([median, median])[i])
        tracker.observe(0, issued, float(level[i + 1]))
        tracker.observe(1, issued, float(level[i + 2]))
        assert tracker.weights.sum(axis=0) == pytest.approx([1.0, 1.0])
    assert tracker.weights.min() >= 1 / (2 * LOSS_WINDOW) / len(RATE_MULTIPLES)  # DtACI's mixing floor
    assert tracker.weights.max() > 0.2 and np.isfinite(tracker.squared_losses[:, 0]).all()


def test_an_exact_forecast_is_left_alone_and_never_counted_as_missed():
    # The linear AR on the deterministic staged ramp: median = upper = actual up to float rounding.
    ramp = np.repeat([60.0, 120.0, 240.0, 600.0, 120.0], 12)
    exact = (ramp[1:] * (1 - 1e-15))[:, None]  # a rounding below the actual
    out = calibrate(exact, exact, ramp, start=1, quantile=0.95, scale=0.2)
    assert out.tolist() == exact.tolist()  # hits pulled the factors down; the median holds them
    assert not exceeds(ramp[1:], out[:, 0]).any() and exceeds(600.0, 599.99)


def test_a_factor_learned_at_a_surge_adds_little_in_the_trough():
    # Misses at a level of 100, then the trough at 2: the correction scales with the level.
    tracker = QuantileTracker(quantile=0.95, horizon=1, scale=0.2)
    for _ in range(10):
        tracker.observe(0, tracker.apply(np.array([100.0]), np.array([90.0])), 150.0)
    factor = math.exp(float(tracker.combined_log_factors[0]))
    assert factor > 1.2
    assert tracker.apply(np.array([100.0]), np.array([90.0])).forecast[0] == pytest.approx(100 * factor)
    assert tracker.apply(np.array([2.0]), np.array([1.0])).forecast[0] == pytest.approx(2 * factor)  # +0.5, not +25


def test_live_tracker_clip_and_bad_settings():
    tracker = QuantileTracker(quantile=0.8, horizon=2, scale=0.5, rate=0.5)
    assert tracker.apply(np.array([-3.0, 4.0]), np.array([-4.0, 1.0])).forecast.tolist() == [0.0, 4.0]
    issued = tracker.apply(np.array([4.0, 4.0]), np.array([1.0, 1.0]))
    tracker.observe(0, issued, 5.0)  # a miss for every expert: + rate_i x 0.5 x 0.8
    tracker.observe(1, issued, 3.0)  # a hit for every expert: - rate_i x 0.5 x 0.2
    tracker.observe(1, issued, float("nan"))  # unknown: skipped
    steps = 0.5 * RATE_MULTIPLES * 0.5
    assert tracker.log_factors[:, 0] == pytest.approx(np.minimum(steps * 0.8, MAX_LOG_FACTOR))
    assert tracker.log_factors[:, 1] == pytest.approx(np.maximum(-steps * 0.2, -MAX_LOG_FACTOR)) and tracker.miss_rate == 0.5
    for _ in range(50):
        tracker.observe(0, tracker.apply(np.array([4.0, 4.0]), np.array([1.0, 1.0])), 100.0)
    assert tracker.log_factors[:, 0].tolist() == [MAX_LOG_FACTOR] * len(RATE_MULTIPLES)  # never beyond 2x
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

    index = pd.date_range("2026-01-01", periods=12, freq="1min")
    series = pd.Series(10 + np.arange(12, dtype=float) * 2, index=index)
    live = LiveCalibration(quantile=0.5, rate=1.0)
    upper, median = np.full(2, 4.0), np.ones(2)
    assert live.apply(series[:5], upper, median, 60).tolist() == [4, 4] and live.tracker.scale == pytest.approx(2 / 14)
    # The predictor decides several times per bucket, with re-fitted forecasts: nothing closed, nothing moves.
    assert live.apply(series[:5], upper * 2, median, 60).tolist() == [8, 8] and live.tracker.outcomes == 0
    steps = np.minimum(RATE_MULTIPLES * (2 / 14) * 0.5, MAX_LOG_FACTOR)  # each expert's move on a miss, clipped
    # Bucket 5 closes: the origin-5 forecast (the first one, 4) at horizon 0 missed for every expert.
    assert live.apply(series[:6], upper, median, 60) == pytest.approx([4 * math.exp(np.mean(steps)), 4])
    # Buckets 6 and 7 close between two decisions (no forecast stood before bucket 7): bucket 6 scores
    # origin 5 at horizon 1 and origin 6 at horizon 0, bucket 7 origin 6 at horizon 1, each once.
    live.apply(series[:8], upper, median, 60)
    assert live.tracker.outcomes == 1 + 3 and live.tracker.scored.tolist() == [2, 2]
    assert "relative-quantile-tracking q0.5 DtACI rates 0.2-25.6" in live.describe()
    assert live.apply(series[:8], np.full(3, 4.0), np.ones(3), 60).tolist() == [4, 4, 4]  # a new horizon starts over
    assert live.tracker.outcomes == 0 and live.describe() == "relative-quantile-tracking q0.5 DtACI rates 0.2-25.6"
