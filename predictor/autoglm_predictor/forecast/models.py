"""Which forecaster a deployment gets, given how much history it has.

A new deployment must get useful floors within minutes, long before an LSTM can be trained:
persistence as soon as one horizon of buckets exists, the linear AR on recent lags once a gap-free
history would give it 4 complete rows per coefficient (67 buckets at a 4-bucket horizon; it adds
the same-time-yesterday lag by itself once two seasons exist and that lag's rows pass the same
rule), and the LSTM once several seasons exist
and TensorFlow is installed. A forecaster that refuses (gaps left too few rows, an explosive or
out-of-bound fit, see forecasters.LinearAR; a non-finite forecast) hands over to the next one down
the LADDER lstm -> linear AR -> persistence, and the log says so once per change. Fallbacks refit
inline on every new complete bucket (a linear AR fit is a few least-squares solves: milliseconds,
see docs/pipeline.md), so their forecast follows the load; the LSTM retrains every
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

from autoglm_predictor.forecast.forecasters import Forecaster, ForecastError, LinearAR, Persistence

log = logging.getLogger(__name__)
LAGS = 12
# Best first. A forecaster that refuses (ForecastError) or is not trained yet hands over to the next.
LADDER = ("lstm", "linear-ar", "persistence")


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
    if buckets >= LinearAR.min_history(horizon, LAGS):
        return "linear-ar"
    if buckets > horizon:
        return "persistence"
    return None


def build(kind: str, horizon: int, quantiles: tuple[float, ...], settings: ModelSettings) -> Forecaster:
    if kind == "persistence":
        return Persistence(horizon, quantiles)
    if kind == "linear-ar":
        return LinearAR(horizon, lags=LAGS, seasons=(settings.season_buckets,), quantiles=quantiles)
    from autoglm_predictor.forecast.lstm import LSTMForecaster, LSTMSettings

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
    """The forecasters of one deployment: inline fallbacks, and an LSTM trained off-thread.

    `name` (namespace/name) only labels the log lines.
    """

    def __init__(self, settings: ModelSettings, trainer: ThreadPoolExecutor | None, name: str = "") -> None:
        self.settings = settings
        self.trainer = trainer
        self.name = name
        self.lstm: Fitted | None = None
        # Per inline kind: (horizon, quantiles, newest bucket) -> its fit, or why the fit was refused.
        self._fits: dict[str, tuple[tuple, Fitted | ForecastError]] = {}
        # Who answered and the (kind, reason) refusals, as last logged; None: the best one answered.
        self._answer: tuple[str | None, tuple[tuple[str, str], ...]] | None = None
        self._training: Future | None = None
        self._lock = threading.Lock()

    def forecast(self, buckets: pd.Series, horizon: int, quantiles: tuple[float, ...],
                 now: float) -> tuple[np.ndarray, Fitted] | None:
        """Forecast (horizon, len(quantiles)) from the end of `buckets`, or None while warming up.

        The best forecaster the history supports answers; when it refuses (a ForecastError: a fit
        judged unstable, a non-finite forecast) or, for the LSTM, is not trained yet, the next one
        down the LADDER does. Raises the last ForecastError when even persistence refuses.
        """
        best = choose(len(buckets), horizon, self.settings, self.trainer is not None)
        if best is None:
            return None
        refused: list[tuple[str, ForecastError]] = []
        for kind in LADDER[LADDER.index(best):]:
            try:
                answer = (self._lstm_forecast(buckets, horizon, quantiles, now) if kind == "lstm"
                          else self._inline_forecast(kind, buckets, horizon, quantiles, now))
            except ForecastError as error:
                refused.append((kind, error))
                continue
            if answer is not None:
                self._log_change(kind, refused)
                return answer
        self._log_change(None, refused)
        raise refused[-1][1]

    def _lstm_forecast(self, buckets: pd.Series, horizon: int, quantiles: tuple[float, ...],
                       now: float) -> tuple[np.ndarray, Fitted] | None:
        """The LSTM's forecast, or None while it is untrained, being trained, or built for other settings."""
        self._schedule_lstm(buckets, horizon, quantiles, now)
        current = self.lstm
        if current is None or current.horizon != horizon or current.quantiles != quantiles \
                or not self._lock.acquire(blocking=False):
            return None
        try:
            return current.forecaster.predict(buckets, [len(buckets)])[0], current
        finally:
            self._lock.release()

    def _inline_forecast(self, kind: str, buckets: pd.Series, horizon: int, quantiles: tuple[float, ...],
                         now: float) -> tuple[np.ndarray, Fitted]:
        """A fallback's forecast; it is refitted once per new complete bucket, and a refusal is
        remembered for that bucket too (decisions come faster than buckets)."""
        key = (horizon, quantiles, buckets.index[-1])
        cached = self._fits.get(kind)
        if cached is None or cached[0] != key:
            forecaster = build(kind, horizon, quantiles, self.settings)
            try:
                forecaster.fit(buckets)
                cached = self._fits[kind] = key, Fitted(kind, forecaster, horizon, quantiles, now, buckets.index[-1])
            except ForecastError as error:
                cached = self._fits[kind] = key, error
        fit = cached[1]
        if isinstance(fit, ForecastError):
            raise fit
        return fit.forecaster.predict(buckets, [len(buckets)])[0], fit

    def _log_change(self, answered: str | None, refused: list[tuple[str, ForecastError]]) -> None:
        """Say why better forecasters were refused and which one answers: once per change, not per
        decision. The best one answering (also while the LSTM trains) is the normal case, not logged."""
        answer = (answered, tuple((kind, error.reason) for kind, error in refused)) if refused else None
        if answer == self._answer:
            return
        self._answer = answer
        why = "; ".join(f"{kind} refused ({error.reason}: {error})" for kind, error in refused)
        if answered is None:
            log.warning("%s: no forecaster answers: %s", self.name, why)
        elif refused:
            log.info("%s: %s; %s answers (logged again when this changes)", self.name, why, answered)
        else:
            log.info("%s: %s answers again", self.name, answered)

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
