"""Tiny LSTMs only: these check behaviour and plumbing, not forecast quality at scale."""
import numpy as np
import pandas as pd
import pytest

from autoglm_predictor.forecast.forecasters import BOUND_FACTOR, BOUND_MARGIN, ForecastError, Persistence
from autoglm_predictor.forecast.lstm import LSTMForecaster, LSTMSettings

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
    with pytest.raises(ForecastError, match="complete training windows"):
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
