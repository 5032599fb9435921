"""Online calibration of the upper-quantile forecast: level-relative quantile tracking.

A forecaster's q-quantile is calibrated on its training history; on a new trace, or when the
load changes character, it is exceeded more (or less) often than 1 - q (issue 16: 6-10% instead
of 5% on traces of other shapes). Quantile tracking (the "P" part of conformal PID control,
Angelopoulos, Candes and Tibshirani, NeurIPS 2023; adaptive conformal inference, Gibbs and
Candes 2021, adapts the miscoverage level the same way) moves a correction per horizon after
every outcome. Here the correction is a factor on the forecast, tracked in log space:

    g <- clip(g + rate * scale * (miss - (1 - q)), -log 2, log 2)
    calibrated = max(median, upper * exp(g)),   miss = 1 if actual > calibrated (scores.exceeds)

Misses push g up by rate x scale x q and hits pull it down by rate x scale x (1 - q), so the
long-run miss rate tends to 1 - q as long as g stays inside its clip (the running sum of
(miss - (1 - q)) is g's total movement over rate x scale; the average miss error over T outcomes
is at most (2 log 2 / (rate x scale) + 1) / T).

Why a factor and not an offset in the load's unit (the tracker before): a surge's misses pushed
an additive offset up 19 times faster than hits in the trough pulled it down at q0.95, and the
same offset added to the trough's low forecast kept the daily-cycle e2e's trough floor one
replica high; a factor learned at the surge adds in proportion to the level.
Why never below the median: an upper quantile (q >= 0.5) is not below the median, and an exact
forecast (the linear AR on the deterministic staged ramp: median = upper = actual) then gets no
downward correction; the additive tracker pulled it below the actual and missed 6.5-18.9% there.
Why the clip: the forecast bound (forecasters.BOUND_FACTOR, 2: a rise beyond 2x is the reactive
path's) also bounds the correction, so a long idle or exact stretch cannot wind g up or down
without limit. `scale` puts the step in the series' terms: the training history's mean absolute
one-bucket change over its mean (the relative MASE denominator); `rate` trades reaction speed
against jitter and is chosen on training data only.

Outcomes are used only once known: at origin o (standing just before bucket o) the forecast
made at origin o - 1 - j for horizon j has just been scored by bucket o - 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from autoglm_predictor.forecast.forecasters import BOUND_FACTOR
from autoglm_predictor.forecast.scores import exceeds, naive_scale

DEFAULT_RATE = 0.05
MAX_LOG_FACTOR = math.log(BOUND_FACTOR)


class CalibrationError(ValueError):
    """Settings or inputs calibration cannot use (message says which)."""


def relative_scale(history: np.ndarray) -> float:
    """`scores.naive_scale` (the mean absolute one-bucket change) over the mean level of `history`
    (NaN = missing); 1 for an idle or unknown level."""
    values = np.asarray(history, dtype=float)
    level = float(np.nanmean(values)) if np.isfinite(values).any() else 0.0
    return naive_scale(values) / level if level > 0 else 1.0


@dataclass
class QuantileTracker:
    """The per-horizon log factors of one series; `apply` then `observe` as buckets close (live use)."""

    quantile: float
    horizon: int
    scale: float
    rate: float = DEFAULT_RATE
    log_factors: np.ndarray = field(default=None)  # type: ignore[assignment]
    misses: int = 0
    outcomes: int = 0

    def __post_init__(self) -> None:
        if not 0.5 <= self.quantile < 1:
            raise CalibrationError(f"quantile must be in [0.5, 1) (an upper quantile), got {self.quantile}")
        if self.horizon < 1 or not (np.isfinite(self.scale) and self.scale > 0):
            raise CalibrationError(f"need horizon >= 1 and a finite scale > 0, got {self.horizon}, {self.scale}")
        if not (np.isfinite(self.rate) and self.rate >= 0):
            raise CalibrationError(f"rate must be >= 0, got {self.rate}")
        if self.log_factors is None:
            self.log_factors = np.zeros(self.horizon)

    def apply(self, upper: np.ndarray, median: np.ndarray) -> np.ndarray:
        """The calibrated forecast (horizon,): the upper one scaled, never below the median nor zero."""
        scaled = np.asarray(upper, dtype=float) * np.exp(self.log_factors)
        return np.maximum(np.maximum(scaled, np.asarray(median, dtype=float)), 0.0)

    def observe(self, horizon_index: int, calibrated: float, actual: float) -> None:
        """Score one calibrated forecast once its bucket has closed (a missing actual is skipped)."""
        if not np.isfinite(actual) or not np.isfinite(calibrated):
            return
        miss = float(exceeds(actual, calibrated))
        self.misses += int(miss)
        self.outcomes += 1
        moved = self.log_factors[horizon_index] + self.rate * self.scale * (miss - (1.0 - self.quantile))
        self.log_factors[horizon_index] = min(max(moved, -MAX_LOG_FACTOR), MAX_LOG_FACTOR)

    @property
    def miss_rate(self) -> float | None:
        return self.misses / self.outcomes if self.outcomes else None


def calibrate(upper: np.ndarray, median: np.ndarray, values: np.ndarray, start: int, quantile: float,
              scale: float, rate: float = DEFAULT_RATE) -> np.ndarray:
    """Replay quantile tracking over forecasts from consecutive origins.

    `upper` and `median` are (origins, horizon): row i was made at origin start + i from
    `values[:start + i]`; `values` is the whole series (NaN = missing). Returns the calibrated
    upper forecasts, same shape; each row uses only outcomes known at its origin.
    """
    upper, median = np.asarray(upper, dtype=float), np.asarray(median, dtype=float)
    if upper.ndim != 2 or median.shape != upper.shape:
        raise CalibrationError(f"upper and median must be (origins, horizon), got {upper.shape} and {median.shape}")
    n, horizon = upper.shape
    tracker = QuantileTracker(quantile=quantile, horizon=horizon, scale=scale, rate=rate)
    out = np.empty_like(upper)
    for i in range(n):
        origin = start + i
        closed = origin - 1  # the bucket that has just closed
        if 0 <= closed < len(values):
            for j in range(horizon):
                made = i - 1 - j  # row of the forecast that targeted `closed` at horizon j
                if made >= 0:
                    tracker.observe(j, out[made, j], float(values[closed]))
        out[i] = tracker.apply(upper[i], median[i])
    return out


class LiveCalibration:
    """Quantile tracking for a live series: one forecast per origin bucket, scored as buckets close.

    The predictor decides several times per bucket; every decision standing before the same bucket
    gets the same factors (they move only when a bucket closes), and the first calibrated
    forecast per origin is the one scored. A new horizon (the lead time changed) starts over.
    `scale` is `relative_scale` of the history at the start.
    """

    NAME = "relative-quantile-tracking"

    def __init__(self, quantile: float, rate: float = DEFAULT_RATE) -> None:
        self.quantile, self.rate = quantile, rate
        self.tracker: QuantileTracker | None = None
        self._pending: dict[object, np.ndarray] = {}  # origin bucket start -> its calibrated forecast
        self._scored_until = None  # start of the newest bucket already scored

    def apply(self, buckets, upper: np.ndarray, median: np.ndarray, bucket_seconds: float) -> np.ndarray:
        """Calibrate `upper` (horizon,) forecast from the end of `buckets` (complete buckets, a pandas
        Series indexed by bucket start) with its `median` (horizon,); scores earlier forecasts
        against buckets closed since."""
        import pandas as pd

        upper = np.asarray(upper, dtype=float)
        step = pd.Timedelta(seconds=bucket_seconds)
        if self.tracker is None or self.tracker.horizon != len(upper):
            scale = relative_scale(buckets.to_numpy(dtype=float))
            self.tracker = QuantileTracker(self.quantile, len(upper), scale, self.rate)
            self._pending, self._scored_until = {}, buckets.index[-1] if len(buckets) else None
        closed = buckets if self._scored_until is None else buckets[buckets.index > self._scored_until]
        for when, actual in closed.items():
            for origin, forecast in self._pending.items():
                j = int(round((when - origin) / step))
                if 0 <= j < len(forecast) and origin + j * step == when:
                    self.tracker.observe(j, float(forecast[j]), float(actual))
            self._scored_until = when
        origin = buckets.index[-1] + step if len(buckets) else None
        self._pending = {o: f for o, f in self._pending.items() if o + len(f) * step > origin}
        calibrated = self.tracker.apply(upper, median)
        self._pending.setdefault(origin, calibrated)
        return calibrated

    def describe(self) -> str:
        """For status.forecast: which calibration, its step and the miss rate it has seen."""
        tracker = self.tracker
        seen = "" if tracker is None or tracker.miss_rate is None else \
            f", {100 * tracker.miss_rate:.1f}% missed of {tracker.outcomes}, factor " \
            f"{np.exp(tracker.log_factors.min()):.2f}-{np.exp(tracker.log_factors.max()):.2f}"
        return f"{self.NAME} q{self.quantile:g} rate {self.rate:g}{seen}"
