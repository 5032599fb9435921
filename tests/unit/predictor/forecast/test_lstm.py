"""Tiny LSTMs only: these check behaviour and plumbing, not forecast quality at scale."""
import numpy as np
import pandas as pd
import pytest

import dataclasses
import json
import os
import subprocess
import sys

from autoglm_predictor.forecast.forecasters import BOUND_FACTOR, BOUND_MARGIN, ForecastError, LinearAR, Persistence
from autoglm_predictor.forecast.lstm import LSTMForecaster, LSTMSettings, choose_base

SINE = pd.Series(100 + 50 * np.sin(2 * np.pi * np.arange(600) / 24),
                 index=pd.date_range("2024-01-01", periods=600, freq="5min"))
TINY = LSTMSettings(horizon=6, window=12, seasons=(24,), units=8, dense=16, epochs=25, batch_size=32,
                    patience=25, learning_rate=1e-2, threads=1)


@pytest.fixture(scope="module")
def trained() -> LSTMForecaster:
    forecaster = LSTMForecaster(TINY)
    forecaster.fit(SINE[:500])
    return forecaster


def test_learns_a_sine_better_than_persistence(trained):
    origins = np.arange(500, 595)
    actual = SINE.to_numpy()[origins[:, None] + np.arange(6)]
    forecast = trained.predict(SINE, origins)
    assert forecast.shape == (len(origins), 6, 2) and np.isfinite(forecast).all()
    assert (forecast[:, :, 1] >= forecast[:, :, 0]).all()  # quantiles never cross
    persistence = Persistence(6)
    persistence.fit(SINE[:500])
    baseline = np.abs(persistence.predict(SINE, origins)[:, :, 0] - actual).mean()
    assert np.abs(forecast[:, :, 0] - actual).mean() < 0.5 * baseline


def test_save_load_round_trip_and_determinism(trained, tmp_path):
    path = trained.save(tmp_path / "model.keras")
    assert path.with_suffix(".json").is_file()
    loaded = LSTMForecaster.load(path)
    origins = [500, 550]
    np.testing.assert_allclose(loaded.predict(SINE, origins), trained.predict(SINE, origins), rtol=1e-5)
    again = LSTMForecaster(TINY)
    again.fit(SINE[:500])
    np.testing.assert_allclose(again.predict(SINE, origins), trained.predict(SINE, origins), rtol=1e-4)


def test_an_untrained_network_answers_the_linear_ar_base_exactly():
    # Zero output weights: before any epoch the correction is 0, so both quantiles are the base AR's
    # point forecast, the AR the backtest's linear-AR forecaster fits (12 lags + the seasonal lag).
    noisy = SINE + np.random.default_rng(0).normal(0, 5, len(SINE))
    untrained = LSTMForecaster(dataclasses.replace(TINY, epochs=0, base="linear-ar"))
    untrained.fit(noisy[:500])
    ar = LinearAR(6, lags=12, seasons=(24,))
    ar.fit(noisy[:500])
    origins = [13, 500, 594]
    forecast = untrained.predict(noisy, origins)
    expected = ar.predict(noisy, origins)[:, :, 0]
    np.testing.assert_allclose(forecast[:, :, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(forecast[:, :, 1], expected, rtol=1e-5)


def test_auto_base_is_chosen_on_the_validation_part_of_the_training_history():
    noise = np.random.default_rng(1).normal(0, 5, len(SINE))
    base, why = choose_base(SINE + noise, horizon=6, seasons=(24,), validation_fraction=0.2)
    assert base == "linear-ar" and "validation MAE" in why
    # The level moved from ~10 to ~100 in the validation part: the AR fitted before it pulls every
    # forecast back towards 10, the last bucket is right; the network would start far off on the AR.
    moved = pd.Series(np.where(np.arange(600) < 480, 10.0, 100.0) + noise, index=SINE.index)
    assert choose_base(moved, horizon=6, seasons=(24,), validation_fraction=0.2)[0] == "last"
    assert choose_base(SINE[:60], horizon=6, seasons=(24,), validation_fraction=0.2) == \
        ("last", "the AR refused the first part: too-few-rows")


def test_a_format_1_model_loads_with_the_last_bucket_base(tmp_path):
    last = LSTMForecaster(dataclasses.replace(TINY, base="last", epochs=2))
    last.fit(SINE[:500])
    path = last.save(tmp_path / "old.keras")
    meta = json.loads(path.with_suffix(".json").read_text())
    del meta["settings"]["base"]
    for key in ("base", "base_choice", "base_seasons", "base_coefficients"):
        del meta["scaler"][key]
    path.with_suffix(".json").write_text(json.dumps({**meta, "format": 1}))
    loaded = LSTMForecaster.load(path)
    assert loaded.settings.base == "last"
    np.testing.assert_allclose(loaded.predict(SINE, [500, 550]), last.predict(SINE, [500, 550]), rtol=1e-5)
    with pytest.raises(ForecastError, match="base must be one of"):
        LSTMForecaster(dataclasses.replace(TINY, base="seasonal"))


def test_incremental_update_keeps_forecasting(trained, tmp_path):
    shifted = SINE * 1.5
    copy = LSTMForecaster.load(trained.save(tmp_path / "copy.keras"))
    epochs_before = len(copy.scaler.history)
    copy.update(shifted[:560], recent=100, replay_fraction=0.5, epochs=2)
    assert len(copy.scaler.history) == epochs_before + 2
    assert np.isfinite(copy.predict(shifted, [560])).all()


def test_gaps_in_history_still_forecast(trained):
    gappy = SINE.copy()
    gappy.iloc[480:500] = np.nan
    assert np.isfinite(trained.predict(gappy, [500])).all()


def test_bad_inputs_raise(tmp_path):
    with pytest.raises(ForecastError, match="complete training"):  # the base AR refuses first
        LSTMForecaster(TINY).fit(SINE[:40])
    with pytest.raises(ForecastError, match="regularly spaced"):
        LSTMForecaster(TINY).fit(SINE.drop(SINE.index[10]))
    with pytest.raises(ForecastError, match="not trained"):
        LSTMForecaster(TINY).predict(SINE, [100])
    with pytest.raises(ForecastError, match="need both"):
        LSTMForecaster.load(tmp_path / "missing.keras")
    with pytest.raises(ForecastError, match="window"):
        LSTMForecaster(LSTMSettings(horizon=2, window=0))


def test_forecasts_stay_within_the_bound_on_a_history_it_never_saw(trained):
    # Trained on a 50..150 sine, asked about an idle deployment that woke up: the network's learned
    # changes would add tens of requests to a history whose peak is 2.
    idle = pd.Series([0.0] * 60 + [2.0], index=pd.date_range("2024-01-01", periods=61, freq="5min"))
    forecast = trained.predict(idle, [30, 61])
    assert np.isfinite(forecast).all() and (forecast >= 0).all()
    assert forecast[0].max() <= BOUND_MARGIN  # only zeros seen before origin 30
    assert forecast[1].max() <= BOUND_FACTOR * 2.0 + BOUND_MARGIN


def test_importing_tensorflow_through_this_module_prints_nothing():
    # A fresh interpreter (TensorFlow logs at its first import only), without the caller's TF_* values.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    done = subprocess.run([sys.executable, "-c", "import autoglm_predictor.forecast.lstm, tensorflow"],
                          env=env, capture_output=True, text=True, timeout=120, check=True)
    assert done.stderr == "" and done.stdout == ""  # no "absl::InitializeLog", no "oneDNN custom operations"
