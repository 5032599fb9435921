"""The live ladder's LSTM is the backtest's LSTMForecaster, base choice included (tiny model)."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from autoglm_predictor.forecast.models import DeploymentModel, ModelSettings


def test_the_live_lstm_trains_off_thread_then_answers_on_its_chosen_base():
    # Hourly buckets, a daily season of 24: the LSTM is due after 3 seasons + the horizon.
    noise = np.random.default_rng(0).normal(0, 3, 200)
    load = pd.Series(100 + 50 * np.sin(2 * np.pi * np.arange(200) / 24) + noise,
                     index=pd.date_range("2026-01-05", periods=200, freq="1h"))
    settings = ModelSettings(bucket_seconds=3600, lstm_epochs=2, lstm_units=4)
    with ThreadPoolExecutor(1) as trainer:
        model = DeploymentModel(settings, trainer)
        _, first = model.forecast(load, horizon=3, quantiles=(0.5, 0.95), now=0)
        assert first.kind == "linear-ar"  # answers while the LSTM trains
        model._training.result(timeout=600)  # a guard against a hang, not a timing check
        values, fitted = model.forecast(load, horizon=3, quantiles=(0.5, 0.95), now=1)
    assert fitted.kind == "lstm" and values.shape == (3, 2) and np.isfinite(values).all()
    scaler = fitted.forecaster.scaler
    assert scaler.base == "linear-ar" and scaler.base_choice.startswith("validation MAE")
