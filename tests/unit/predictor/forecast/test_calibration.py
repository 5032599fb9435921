"""Online quantile tracking (forecast/calibration.py)."""
import numpy as np
import pytest

from autoglm_predictor.forecast.calibration import CalibrationError, QuantileTracker, calibrate


def test_each_row_uses_only_outcomes_known_at_its_origin():
    # Origins 1..4 forecast 0 for the next bucket; every bucket is 10. Row i is scored by bucket
    # start + i, known from row i + 1 on; each miss moves the offset by rate x scale x q = 0.5.
    out = calibrate(np.zeros((4, 1)), np.full(5, 10.0), start=1, quantile=0.5, scale=1.0, rate=1.0)
    assert out[:, 0].tolist() == [0.0, 0.5, 1.0, 1.5]
    # Horizon 2: the second column is scored one bucket later than the first.
    out = calibrate(np.zeros((4, 2)), np.full(6, 10.0), start=1, quantile=0.5, scale=1.0, rate=1.0)
    assert out.tolist() == [[0, 0], [0.5, 0], [1.0, 0.5], [1.5, 1.0]]


@pytest.mark.parametrize("quantile", [0.9, 0.95])
@pytest.mark.parametrize("bias", [-20.0, 0.0, 25.0])
def test_the_miss_rate_tracks_one_minus_the_quantile_whatever_the_forecaster(quantile, bias):
    rng = np.random.default_rng(7)
    level = 100 + 40 * np.sin(np.arange(6000) / 50) + rng.gamma(2.0, 8.0, 6000)  # skewed noise
    upper = (level[1:] - rng.gamma(2.0, 8.0, 5999) + bias)[:, None]  # a badly calibrated forecaster
    calibrated = calibrate(upper, level, start=1, quantile=quantile, scale=5.0)
    misses = level[1:] > calibrated[:, 0]
    raw = float(np.mean(level[1:] > upper[:, 0]))
    assert abs(raw - (1 - quantile)) > 0.05  # the raw forecaster is off ...
    assert float(np.mean(misses[500:])) == pytest.approx(1 - quantile, abs=0.01)  # ... the tracked one is not


def test_live_tracker_and_bad_settings():
    tracker = QuantileTracker(quantile=0.8, horizon=2, scale=2.0, rate=0.5)
    assert tracker.apply(np.array([-3.0, 4.0])).tolist() == [0.0, 4.0]
    tracker.observe(0, 4.0, 5.0)  # miss: +0.5 x 2 x 0.8
    tracker.observe(1, 4.0, 3.0)  # hit: -0.5 x 2 x 0.2
    tracker.observe(1, 4.0, float("nan"))  # unknown: skipped
    assert tracker.offsets.tolist() == pytest.approx([0.8, -0.2]) and tracker.miss_rate == 0.5
    for settings in (dict(quantile=1.0), dict(horizon=0), dict(scale=0.0), dict(rate=-1.0)):
        with pytest.raises(CalibrationError):
            QuantileTracker(**{**dict(quantile=0.9, horizon=1, scale=1.0), **settings})


def test_live_calibration_scores_each_origin_once_as_its_buckets_close():
    import pandas as pd

    from autoglm_predictor.forecast.calibration import LiveCalibration

    index = pd.date_range("2026-01-01", periods=10, freq="1min")
    series = pd.Series(np.arange(10, dtype=float) * 2, index=index)  # one-bucket change 2: scale 2
    live = LiveCalibration(quantile=0.5, rate=1.0)
    first = live.apply(series[:5], np.zeros(2), 60)
    assert first.tolist() == [0, 0] and live.tracker.scale == 2.0
    assert live.apply(series[:5], np.zeros(2), 60).tolist() == [0, 0]  # same origin: nothing closed
    # Bucket 5 (value 10) closes: the origin-5 forecast at horizon 0 missed: +1 x 2 x 0.5.
    assert live.apply(series[:6], np.zeros(2), 60).tolist() == [1.0, 0.0]
    # Bucket 6 (12) closes: origin 5 at horizon 1 (0) and origin 6 at horizon 0 (1.0) both missed.
    assert live.apply(series[:7], np.zeros(2), 60).tolist() == [2.0, 1.0]
    assert live.tracker.outcomes == 3 and "quantile-tracking q0.5" in live.describe()
    assert live.apply(series[:7], np.zeros(3), 60).tolist() == [0, 0, 0]  # a new horizon starts over
