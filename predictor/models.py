"""Which forecaster a deployment gets, given how much history it has.

A new deployment must get useful floors within minutes, long before an LSTM can be trained:
persistence as soon as one horizon of buckets exists, the linear AR on recent lags once a few
dozen buckets exist (it adds the same-time-yesterday lag by itself after two seasons), and the
LSTM once several seasons exist and TensorFlow is installed. Fallbacks refit inline on every
new complete bucket (a linear AR fit is a few least-squares solves: milliseconds, see
docs/pipeline.md), so their forecast follows the load; the LSTM retrains every
`retrain_seconds` in one background thread and the linear AR answers while it does.
"""
from __future__ import annotations

import importlib.util
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from autoglm_predictor.forecasters import Forecaster, LinearAR, Persistence

log = logging.getLogger(__name__)
LAGS = 12


@dataclass(frozen=True)
class ModelSettings:
    bucket_seconds: int = 60
    season_seconds: int = 86400
    retrain_seconds: float = 600.0  # the LSTM's; fallbacks refit on every new complete bucket
    lstm: bool = True
    lstm_min_seasons: float = 3.0
    lstm_epochs: int = 10
    lstm_units: int = 32

    @property
    def season_buckets(self) -> int:
        return self.season_seconds // self.bucket_seconds


def lstm_available() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def choose(buckets: int, horizon: int, settings: ModelSettings, lstm_ok: bool) -> str | None:
    """The best forecaster `buckets` of history support; None while even persistence cannot fit."""
    if lstm_ok and settings.lstm and buckets >= settings.lstm_min_seasons * settings.season_buckets + horizon:
        return "lstm"
    if buckets >= 3 * LAGS + horizon:
        return "linear-ar"
    if buckets > horizon:
        return "persistence"
    return None


def build(kind: str, horizon: int, quantiles: tuple[float, ...], settings: ModelSettings) -> Forecaster:
    if kind == "persistence":
        return Persistence(horizon, quantiles)
    if kind == "linear-ar":
        return LinearAR(horizon, lags=LAGS, seasons=(settings.season_buckets,), quantiles=quantiles)
    from autoglm_predictor.lstm import LSTMForecaster, LSTMSettings

    window = min(3 * LAGS, settings.season_buckets)
    return LSTMForecaster(LSTMSettings(horizon=horizon, quantiles=quantiles, window=window,
                                       seasons=(settings.season_buckets,), units=settings.lstm_units,
                                       epochs=settings.lstm_epochs, threads=1))


@dataclass
class Fitted:
    kind: str
    forecaster: Forecaster
    horizon: int
    quantiles: tuple[float, ...]
    fitted_at: float
    last_bucket: pd.Timestamp | None = None  # the newest bucket it was fitted on (fallbacks)


class DeploymentModel:
    """The forecasters of one deployment: an inline fallback, and an LSTM trained off-thread."""

    def __init__(self, settings: ModelSettings, trainer: ThreadPoolExecutor | None) -> None:
        self.settings = settings
        self.trainer = trainer
        self.fallback: Fitted | None = None
        self.lstm: Fitted | None = None
        self._training: Future | None = None
        self._lock = threading.Lock()

    def forecast(self, buckets: pd.Series, horizon: int, quantiles: tuple[float, ...],
                 now: float) -> tuple[np.ndarray, Fitted] | None:
        """Forecast (horizon, len(quantiles)) from the end of `buckets`, or None while warming up."""
        kind = choose(len(buckets), horizon, self.settings, self.trainer is not None)
        if kind is None:
            return None
        if kind == "lstm":
            self._schedule_lstm(buckets, horizon, quantiles, now)
            if self.lstm is not None and self.lstm.horizon == horizon and self.lstm.quantiles == quantiles \
                    and self._lock.acquire(blocking=False):
                try:
                    return self.lstm.forecaster.predict(buckets, [len(buckets)])[0], self.lstm
                finally:
                    self._lock.release()
            kind = "linear-ar"
        fallback = self.fallback
        if (fallback is None or fallback.kind != kind or fallback.horizon != horizon or fallback.quantiles != quantiles
                or fallback.last_bucket != buckets.index[-1]):
            forecaster = build(kind, horizon, quantiles, self.settings)
            forecaster.fit(buckets)
            fallback = self.fallback = Fitted(kind, forecaster, horizon, quantiles, now, buckets.index[-1])
        return fallback.forecaster.predict(buckets, [len(buckets)])[0], fallback

    def _schedule_lstm(self, buckets: pd.Series, horizon: int, quantiles: tuple[float, ...], now: float) -> None:
        if self._training is not None and not self._training.done():
            return
        current = self.lstm
        if current is not None and current.horizon == horizon and current.quantiles == quantiles \
                and now - current.fitted_at < self.settings.retrain_seconds:
            return
        self._training = self.trainer.submit(self._train, buckets.copy(), horizon, quantiles, current, now)

    def _train(self, buckets: pd.Series, horizon: int, quantiles: tuple[float, ...], current: Fitted | None,
               now: float) -> None:
        """Full fit the first time (or when the horizon changes); then incremental updates."""
        started = time.perf_counter()
        try:
            with self._lock:
                if current is not None and current.horizon == horizon and current.quantiles == quantiles:
                    recent = max(1, int((now - current.fitted_at) // self.settings.bucket_seconds))
                    current.forecaster.update(buckets, recent=recent, epochs=3)
                    self.lstm = Fitted("lstm", current.forecaster, horizon, quantiles, now)
                else:
                    forecaster = build("lstm", horizon, quantiles, self.settings)
                    forecaster.fit(buckets)
                    self.lstm = Fitted("lstm", forecaster, horizon, quantiles, now)
            log.info("LSTM trained on %d buckets in %.1f s", len(buckets), time.perf_counter() - started)
        except Exception:  # a failed training keeps the previous model; the fallback keeps answering
            log.exception("LSTM training failed on %d buckets", len(buckets))
