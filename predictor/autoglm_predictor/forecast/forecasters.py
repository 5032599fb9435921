"""Forecasters behind one interface: fit on history, predict the next H buckets as quantiles.

`predict` takes many forecast origins at once because the backtest and the closed-loop replay
ask for thousands of them; a single live forecast is just one origin. Origin `o` means
"standing just before bucket `o`": only `values[:o]` may be used, and the forecast covers
buckets `o .. o + horizon - 1`.

Every forecast is finite and inside [0, bound(o)], bound(o) = BOUND_FACTOR x the largest bucket
before `o` + BOUND_MARGIN, whatever the model: a forecaster fitted on a short, idle or restarted
history must not turn a load of 5 into a floor at the maximum (issue 13). A linear AR fit is also
judged before use (`LinearAR` lists the rules) and refused with a `ForecastError` naming the
reason, so the live ladder (models.py) falls back to persistence.
"""
from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

DEFAULT_QUANTILES = (0.5, 0.9)

# The bound on every forecast, in the series' own unit. On the shipped traces the peak of the next
# 30 buckets never exceeded 1.93x the largest bucket seen before (NASA, 5-minute buckets; 1.45x at
# 1 minute), so a forecast above twice the history's peak is a broken fit, not foresight; a real
# surge beyond it is the reactive path's job. The margin lets an all-zero history forecast a little
# (one request) rather than nothing. Measurements: docs/forecasting.md#forecast-bounds.
BOUND_FACTOR = 2.0
BOUND_MARGIN = 1.0
# A linear AR needs this many complete training rows per coefficient: with fewer, least squares
# interpolates noise (every runaway fit in the issue-13 reproduction had 13-50 rows for 13).
MIN_ROWS_PER_COEFFICIENT = 4
# The largest modulus allowed for a root of the one-step lag polynomial (the companion matrix's
# spectral radius). A unit root is ordinary (persistence is one, a ramp fits near one: up to 1.075
# on windows of the shipped traces); 1.1 compounds to 2.1x over 8 buckets, past BOUND_FACTOR.
MAX_ONE_STEP_RADIUS = 1.1


class ForecastError(ValueError):
    """A forecaster was used outside what it supports, or refused its own fit (message says why).

    `reason` is a short stable name ("too-few-rows", "explosive", "out-of-bound", "non-finite"
    for refused fits and forecasts, "unsupported" otherwise) for logs and metrics, whose numbers
    in the message change with every refit.
    """

    def __init__(self, message: str, reason: str = "unsupported") -> None:
        super().__init__(message)
        self.reason = reason


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

    def predict(self, history: pd.Series, origins: Sequence[int]) -> np.ndarray:
        """Forecasts from each origin: shape (len(origins), horizon, len(quantiles)).

        Every value is finite and inside [0, `bounds`] of its origin; non-finite history values
        count as missing. Raises ForecastError for origins outside [1, len(history)], a history
        without any observed value, or a model whose output is not finite.
        """
        series = observed(history)
        positions = check_origins(origins, len(series))
        forecast = self._predict(series, positions)
        if not np.isfinite(forecast).all():
            raise ForecastError(f"{self.name} produced a non-finite forecast", reason="non-finite")
        return np.clip(forecast, 0.0, bounds(series.to_numpy(), positions)[:, None, None])

    @abstractmethod
    def _predict(self, history: pd.Series, positions: np.ndarray) -> np.ndarray:
        """The unclamped forecasts (same shape as `predict`); `history` has NaN for every gap."""

    def quantile_index(self, q: float) -> int:
        if q not in self.quantiles:
            raise ForecastError(f"{self.name} was built for quantiles {self.quantiles}, not {q}")
        return self.quantiles.index(q)


def observed(history: pd.Series) -> pd.Series:
    """The history as floats with infinities as missing (NaN): an overflowed sample measures nothing."""
    values = history.to_numpy(dtype=float, copy=True)
    values[~np.isfinite(values)] = np.nan
    return pd.Series(values, index=history.index)


def bounds(values: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """The largest forecast allowed from each origin (>= 1): BOUND_FACTOR x max(values[:o]) + BOUND_MARGIN.

    Only what precedes the origin counts, so a backtest's bound never peeks at the future.
    """
    seen = np.maximum.accumulate(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).clip(min=0.0))
    return BOUND_FACTOR * seen[origins - 1] + BOUND_MARGIN if len(origins) else np.empty(0)


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
        values = observed(history).to_numpy()
        self._fit_point(values)
        origins = np.arange(1, len(values) - self.horizon + 1)
        if origins.size == 0:
            raise ForecastError(f"history of {len(values)} buckets is shorter than the horizon")
        actual = gather(values, origins[:, None] + np.arange(self.horizon))
        residual = actual - self._point(values, origins)
        self._offsets = np.zeros((self.horizon, len(self.quantiles)))
        for k, q in enumerate(self.quantiles):
            if q != 0.5:
                with warnings.catch_warnings():  # a step with no finite residual gets no margin
                    warnings.simplefilter("ignore", RuntimeWarning)
                    offset = np.nanquantile(residual, q, axis=0) if np.isfinite(residual).any() else 0.0
                self._offsets[:, k] = np.nan_to_num(offset)

    def _predict(self, history: pd.Series, positions: np.ndarray) -> np.ndarray:
        history_filled = filled(history.to_numpy())
        point = self._point(history_filled, positions)
        # Missing seasonal lags (too little history) fall back to the last observation.
        point = np.where(np.isnan(point), history_filled[positions - 1][:, None], point)
        return point[:, :, None] + self._offsets[None, :, :]

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
    """Direct multi-horizon least squares on recent lags plus same-time-last-season lags.

    A fit is judged before it is used, and refused with a ForecastError whose `reason` says why:
    - "too-few-rows": fewer than MIN_ROWS_PER_COEFFICIENT complete rows per coefficient (every
      gap removes up to lags + horizon rows, so a restart leaves few);
    - "explosive": the one-step lag polynomial has a root of modulus above MAX_ONE_STEP_RADIUS;
    - "out-of-bound": a point forecast from some origin of its own history, the newest included
      (the one the live predictor uses), lies outside +-(BOUND_FACTOR x peak + BOUND_MARGIN).
    """

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
        # Seasons longer than half the history cannot be estimated; drop them rather than fail. A
        # seasonal lag also costs the rows of its first season: while those leave too few rows, the
        # longest season is dropped and the fit goes on without it, so the season's arrival never
        # turns an answering AR into a refusal (with a 20-bucket season the fit refused from 41 to
        # 80 buckets and persistence's wide band held the e2e daily cycle's trough floor high).
        seasons = tuple(s for s in self.seasons if s >= self.horizon and 2 * s < len(values))
        while True:
            self.seasons = seasons
            try:
                self._solve(values)
                break
            except ForecastError as refused:
                if refused.reason != "too-few-rows" or not seasons:
                    raise
                seasons = tuple(s for s in seasons if s != max(seasons))
        self._judge(values)

    def _solve(self, values: np.ndarray) -> None:
        """Least squares per horizon step; ForecastError("too-few-rows") under the row rule."""
        origins = np.arange(self.lags, len(values) - self.horizon + 1)
        self._coefficients = []
        for step, features in enumerate(self._features(values, origins)):
            target = gather(values, origins + step)
            rows = np.isfinite(features).all(axis=1) & np.isfinite(target)
            if rows.sum() < MIN_ROWS_PER_COEFFICIENT * features.shape[1]:
                raise ForecastError(f"only {int(rows.sum())} complete training rows for {features.shape[1]} "
                                    f"coefficients (need {MIN_ROWS_PER_COEFFICIENT} per coefficient)",
                                    reason="too-few-rows")
            coefficients, *_ = np.linalg.lstsq(features[rows], target[rows], rcond=None)
            self._coefficients.append(coefficients)

    @classmethod
    def from_coefficients(cls, horizon: int, lags: int, seasons: Sequence[int], coefficients: Sequence[Sequence[float]],
                          quantiles: Sequence[float] = (0.5,)) -> LinearAR:
        """A fit restored from its coefficients (per step: [1, lags 1..`lags`, `seasons`]), with no
        residual margins: the point forecast at every quantile. The LSTM saves its base AR this way."""
        forecaster = cls(horizon, lags=lags, seasons=seasons, quantiles=quantiles)
        forecaster._coefficients = [np.asarray(c, dtype=float) for c in coefficients]
        if len(forecaster._coefficients) != horizon or any(c.shape != (1 + lags + len(forecaster.seasons),)
                                                           for c in forecaster._coefficients):
            raise ForecastError(f"need {horizon} coefficient rows of {1 + lags + len(forecaster.seasons)} values")
        forecaster._offsets = np.zeros((horizon, len(forecaster.quantiles)))
        return forecaster

    @staticmethod
    def min_history(horizon: int, lags: int) -> int:
        """Buckets a gap-free history needs before the row rule can pass (no seasonal lag yet)."""
        return lags + horizon - 1 + MIN_ROWS_PER_COEFFICIENT * (lags + 1)

    def one_step_radius(self) -> float:
        """Spectral radius of the companion matrix of the one-step fit's recent lags (its largest root)."""
        companion = np.eye(self.lags, k=-1)
        companion[0] = self._coefficients[0][1 : self.lags + 1]
        return float(np.abs(np.linalg.eigvals(companion)).max())

    def _judge(self, values: np.ndarray) -> None:
        """Raise ForecastError unless the fit is stable and stays in bounds on its own history."""
        if not all(np.isfinite(c).all() for c in self._coefficients):
            raise ForecastError("the linear AR fit has non-finite coefficients", reason="non-finite")
        radius = self.one_step_radius()
        if radius > MAX_ONE_STEP_RADIUS:
            raise ForecastError(f"the one-step lag polynomial has a root of modulus {radius:.2f} "
                                f"(> {MAX_ONE_STEP_RADIUS}): explosive", reason="explosive")
        point = self._point(filled(values), np.arange(self.lags, len(values) + 1))
        worst = float(np.abs(point[np.isfinite(point)]).max(initial=0.0))
        limit = BOUND_FACTOR * float(np.nanmax(values)) + BOUND_MARGIN
        if worst > limit:
            raise ForecastError(f"the fit forecasts {worst:.3g} on its own history, beyond the bound {limit:.3g} "
                                f"({BOUND_FACTOR:g} x the peak {np.nanmax(values):.3g} + {BOUND_MARGIN:g})",
                                reason="out-of-bound")

    def _point(self, values: np.ndarray, origins: np.ndarray) -> np.ndarray:
        return np.stack([features @ coefficients
                         for features, coefficients in zip(self._features(values, origins), self._coefficients)], axis=1)
