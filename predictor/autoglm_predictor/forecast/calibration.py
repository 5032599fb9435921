"""Online calibration of the upper-quantile forecast: quantile tracking on recent misses.

A forecaster's q-quantile is calibrated on its training history; on a new trace, or when the
load changes character, it is exceeded more (or less) often than 1 - q (issue 16: 6-10% instead
of 5% on traces of other shapes). Quantile tracking (the "P" part of conformal PID control,
Angelopoulos, Candes and Tibshirani, NeurIPS 2023; adaptive conformal inference, Gibbs and
Candes 2021, adapts the miscoverage level the same way) adds an offset per horizon and moves it
after every outcome:

    offset <- offset + rate * scale * (miss - (1 - q)),   miss = 1 if actual > forecast + offset

so misses push the offset up by rate x scale x q and hits pull it down by rate x scale x (1 - q).
Whatever the forecaster and the trace, the long-run miss rate then tends to 1 - q: the offset is
bounded by the data's range, and the running sum of (miss - (1 - q)) equals the offset's total
movement divided by rate x scale, so the average miss error over T outcomes is at most
(offset range / (rate x scale) + 1) / T. `scale` puts the step in the load's unit (the
training history's mean absolute one-bucket change, the MASE denominator); `rate` trades
reaction speed against jitter and is chosen on training data only.

Outcomes are used only once known: at origin o (standing just before bucket o) the forecast
made at origin o - 1 - j for horizon j has just been scored by bucket o - 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_RATE = 0.05


class CalibrationError(ValueError):
    """Settings or inputs calibration cannot use (message says which)."""


@dataclass
class QuantileTracker:
    """The per-horizon offsets of one series; `apply` then `observe` as buckets close (live use)."""

    quantile: float
    horizon: int
    scale: float
    rate: float = DEFAULT_RATE
    offsets: np.ndarray = field(default=None)  # type: ignore[assignment]
    misses: int = 0
    outcomes: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.quantile < 1:
            raise CalibrationError(f"quantile must be in (0, 1), got {self.quantile}")
        if self.horizon < 1 or not (np.isfinite(self.scale) and self.scale > 0):
            raise CalibrationError(f"need horizon >= 1 and a finite scale > 0, got {self.horizon}, {self.scale}")
        if not (np.isfinite(self.rate) and self.rate >= 0):
            raise CalibrationError(f"rate must be >= 0, got {self.rate}")
        if self.offsets is None:
            self.offsets = np.zeros(self.horizon)

    def apply(self, upper: np.ndarray) -> np.ndarray:
        """The calibrated forecast (horizon,), never below zero."""
        return np.maximum(np.asarray(upper, dtype=float) + self.offsets, 0.0)

    def observe(self, horizon_index: int, calibrated: float, actual: float) -> None:
        """Score one calibrated forecast once its bucket has closed (a missing actual is skipped)."""
        if not np.isfinite(actual) or not np.isfinite(calibrated):
            return
        miss = float(actual > calibrated)
        self.misses += int(miss)
        self.outcomes += 1
        self.offsets[horizon_index] += self.rate * self.scale * (miss - (1.0 - self.quantile))

    @property
    def miss_rate(self) -> float | None:
        return self.misses / self.outcomes if self.outcomes else None


def calibrate(upper: np.ndarray, values: np.ndarray, start: int, quantile: float, scale: float,
              rate: float = DEFAULT_RATE) -> np.ndarray:
    """Replay quantile tracking over forecasts from consecutive origins.

    `upper` is (origins, horizon): row i was made at origin start + i from `values[:start + i]`;
    `values` is the whole series (NaN = missing). Returns the calibrated forecasts, same shape;
    each row uses only outcomes known at its origin.
    """
    upper = np.asarray(upper, dtype=float)
    if upper.ndim != 2:
        raise CalibrationError(f"upper must be (origins, horizon), got shape {upper.shape}")
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
        out[i] = tracker.apply(upper[i])
    return out


class LiveCalibration:
    """Quantile tracking for a live series: one forecast per origin bucket, scored as buckets close.

    The predictor decides several times per bucket; every decision standing before the same bucket
    gets the same offsets (they move only when a bucket closes), and the first calibrated
    forecast per origin is the one scored. A new horizon (the lead time changed) starts over.
    `scale` is the mean absolute one-bucket change of the history at the start (at least 1 request).
    """

    NAME = "quantile-tracking"

    def __init__(self, quantile: float, rate: float = DEFAULT_RATE) -> None:
        self.quantile, self.rate = quantile, rate
        self.tracker: QuantileTracker | None = None
        self._pending: dict[object, np.ndarray] = {}  # origin bucket start -> its calibrated forecast
        self._scored_until = None  # start of the newest bucket already scored

    def apply(self, buckets, upper: np.ndarray, bucket_seconds: float) -> np.ndarray:
        """Calibrate `upper` (horizon,) forecast from the end of `buckets` (complete buckets, a pandas
        Series indexed by bucket start); scores earlier forecasts against buckets closed since."""
        import pandas as pd

        upper = np.asarray(upper, dtype=float)
        step = pd.Timedelta(seconds=bucket_seconds)
        if self.tracker is None or self.tracker.horizon != len(upper):
            values = buckets.to_numpy(dtype=float)
            changes = np.abs(np.diff(values))
            scale = float(np.nanmean(changes)) if np.isfinite(changes).any() else 0.0
            self.tracker = QuantileTracker(self.quantile, len(upper), max(scale, 1.0), self.rate)
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
        calibrated = self.tracker.apply(upper)
        self._pending.setdefault(origin, calibrated)
        return calibrated

    def describe(self) -> str:
        """For status.forecast: which calibration, its step and the miss rate it has seen."""
        tracker = self.tracker
        seen = "" if tracker is None or tracker.miss_rate is None else \
            f", {100 * tracker.miss_rate:.1f}% missed of {tracker.outcomes}"
        return f"{self.NAME} q{self.quantile:g} rate {self.rate:g}{seen}"
