"""Forecasters behind one interface: fit on history, predict the next H buckets as quantiles.

`predict` takes many forecast origins at once because the backtest and the closed-loop replay
ask for thousands of them; a single live forecast is just one origin. Origin `o` means
"standing just before bucket `o`": only `values[:o]` may be used, and the forecast covers
buckets `o .. o + horizon - 1`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

DEFAULT_QUANTILES = (0.5, 0.9)


class ForecastError(ValueError):
    """A forecaster was used outside what it supports (message says why)."""


class Forecaster(ABC):
    """Quantile forecaster over a bucketed demand series (NaN = missing bucket)."""

    name: str

    def __init__(self, horizon: int, quantiles: Sequence[float] = DEFAULT_QUANTILES) -> None:
        if horizon < 1:
            raise ForecastError(f"horizon must be >= 1, got {horizon}")
        if not quantiles or any(not 0 < q < 1 for q in quantiles) or list(quantiles) != sorted(quantiles):
            raise ForecastError(f"quantiles must be increasing and inside (0, 1), got {quantiles}")
        self.horizon = horizon
        self.quantiles = tuple(float(q) for q in quantiles)

    @abstractmethod
    def fit(self, history: pd.Series) -> None:
        """Learn from the (training) history."""

    @abstractmethod
    def predict(self, history: pd.Series, origins: Sequence[int]) -> np.ndarray:
        """Return shape (len(origins), horizon, len(quantiles)), never NaN."""

    def quantile_index(self, q: float) -> int:
        if q not in self.quantiles:
            raise ForecastError(f"{self.name} was built for quantiles {self.quantiles}, not {q}")
        return self.quantiles.index(q)


def filled(values: np.ndarray) -> np.ndarray:
    """Carry the last observation over gaps (leading gaps take the first observation).

    Forecasts must exist even right after a monitoring outage; holding the last value is the
    least surprising stand-in and never invents a trend.
    """
    series = pd.Series(values, dtype=float).ffill().bfill()
    if series.isna().all():
        raise ForecastError("history has no observed values")
    return series.to_numpy()


def check_origins(origins: Sequence[int], length: int, minimum: int = 1) -> np.ndarray:
    positions = np.asarray(origins, dtype=int)
    if positions.size and (positions.min() < minimum or positions.max() > length):
        raise ForecastError(f"origins must lie in [{minimum}, {length}] (history has {length} buckets)")
    return positions


def gather(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """values[positions] with NaN for positions outside the array."""
    inside = (positions >= 0) & (positions < len(values))
    out = np.full(positions.shape, np.nan)
    out[inside] = values[positions[inside]]
    return out


class PointForecaster(Forecaster):
    """A point rule plus per-horizon residual quantiles measured on the training history.

    The point forecast serves as the median (so MAE matches the textbook baselines); upper
    quantiles add the empirical residual quantile, which is what makes a naive rule usable as a
    scaling floor.
    """

    def fit(self, history: pd.Series) -> None:
        values = history.to_numpy(dtype=float)
        self._fit_point(values)
        origins = np.arange(1, len(values) - self.horizon + 1)
        if origins.size == 0:
            raise ForecastError(f"history of {len(values)} buckets is shorter than the horizon")
        actual = gather(values, origins[:, None] + np.arange(self.horizon))
        residual = actual - self._point(values, origins)
        self._offsets = np.zeros((self.horizon, len(self.quantiles)))
        for k, q in enumerate(self.quantiles):
            if q != 0.5:
                with np.errstate(all="ignore"):
                    offset = np.nanquantile(residual, q, axis=0) if np.isfinite(residual).any() else 0.0
                self._offsets[:, k] = np.nan_to_num(offset)

    def predict(self, history: pd.Series, origins: Sequence[int]) -> np.ndarray:
        values = history.to_numpy(dtype=float)
        positions = check_origins(origins, len(values))
        history_filled = filled(values)
        point = self._point(history_filled, positions)
        # Missing seasonal lags (too little history) fall back to the last observation.
        point = np.where(np.isnan(point), history_filled[positions - 1][:, None], point)
        forecast = point[:, :, None] + self._offsets[None, :, :]
        return np.maximum(forecast, 0.0)

    def _fit_point(self, values: np.ndarray) -> None:
        """Learn the point rule's parameters (none for the naive rules)."""

    @abstractmethod
    def _point(self, values: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """Point forecasts, shape (len(origins), horizon); NaN allowed where inputs are missing."""


class Persistence(PointForecaster):
    """The last observed bucket, held flat: the bar every model must clear."""

    name = "persistence"

    def _point(self, values: np.ndarray, origins: np.ndarray) -> np.ndarray:
        return np.repeat(gather(values, origins - 1)[:, None], self.horizon, axis=1)


class SeasonalNaive(PointForecaster):
    """The same bucket one season (a day, a week) earlier; falls back to persistence."""

    def __init__(self, season: int, horizon: int, quantiles: Sequence[float] = DEFAULT_QUANTILES,
                 label: str = "") -> None:
        super().__init__(horizon, quantiles)
        if season < horizon:
            raise ForecastError(f"season ({season} buckets) must cover the horizon ({horizon})")
        self.season = season
        self.name = f"seasonal-naive{label or f' ({season})'}"

    def _point(self, values: np.ndarray, origins: np.ndarray) -> np.ndarray:
        seasonal = gather(values, origins[:, None] + np.arange(self.horizon) - self.season)
        last = gather(values, origins - 1)[:, None]
        return np.where(np.isnan(seasonal), last, seasonal)


class LinearAR(PointForecaster):
    """Direct multi-horizon least squares on recent lags plus same-time-last-season lags."""

    name = "linear-AR"

    def __init__(self, horizon: int, lags: int = 12, seasons: Sequence[int] = (),
                 quantiles: Sequence[float] = DEFAULT_QUANTILES) -> None:
        super().__init__(horizon, quantiles)
        if lags < 1:
            raise ForecastError(f"lags must be >= 1, got {lags}")
        self.lags = lags
        self.seasons = tuple(seasons)

    def _features(self, values: np.ndarray, origins: np.ndarray) -> Iterator[np.ndarray]:
        """The design matrix of each horizon step; the constant and recent lags are built once
        for all steps (the live predictor refits on every bucket, so this is its hot path)."""
        shared = np.hstack([np.ones((len(origins), 1)), gather(values, origins[:, None] - np.arange(1, self.lags + 1))])
        for step in range(self.horizon):
            yield np.hstack([shared, *[gather(values, origins + step - s)[:, None] for s in self.seasons]])

    def _fit_point(self, values: np.ndarray) -> None:
        # Seasons longer than half the history cannot be estimated; drop them rather than fail.
        self.seasons = tuple(s for s in self.seasons if s >= self.horizon and 2 * s < len(values))
        origins = np.arange(self.lags, len(values) - self.horizon + 1)
        self._coefficients = []
        for step, features in enumerate(self._features(values, origins)):
            target = gather(values, origins + step)
            rows = np.isfinite(features).all(axis=1) & np.isfinite(target)
            if rows.sum() < features.shape[1]:
                raise ForecastError(f"only {int(rows.sum())} complete training rows for the linear AR")
            coefficients, *_ = np.linalg.lstsq(features[rows], target[rows], rcond=None)
            self._coefficients.append(coefficients)

    def _point(self, values: np.ndarray, origins: np.ndarray) -> np.ndarray:
        return np.stack([features @ coefficients
                         for features, coefficients in zip(self._features(values, origins), self._coefficients)], axis=1)
