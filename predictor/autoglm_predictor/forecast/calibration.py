"""Online calibration of the upper-quantile forecast: level-relative quantile tracking whose rate
is chosen online (DtACI).

A forecaster's q-quantile is calibrated on its training history; on a new trace, or when the
load changes character, it is exceeded more (or less) often than 1 - q (issue 16: 6-10% instead
of 5% on traces of other shapes). Quantile tracking (the "P" part of conformal PID control,
Angelopoulos, Candes and Tibshirani, NeurIPS 2023; adaptive conformal inference, ACI, Gibbs and
Candes 2021, adapts the miscoverage level the same way) moves a correction per horizon after
every outcome. Here the correction is a factor on the forecast, tracked in log space:

    g <- clip(g + rate * scale * (miss - (1 - q)), -log 2, log 2)
    calibrated = max(median, upper * exp(g)),   miss = 1 if actual > calibrated (scores.exceeds)

Misses push g up by rate x scale x q and hits pull it down by rate x scale x (1 - q), so the
long-run miss rate of one such tracker tends to 1 - q as long as g stays inside its clip (the
running sum of (miss - (1 - q)) is g's total movement over rate x scale; the average miss error
over T outcomes is at most (2 log 2 / (rate x scale) + 1) / T).

Why the rate is chosen online: one fixed rate is either too slow for a short or shifting trace
(rate 0.05 took the linear AR on the 29-minute Azure `conv` test from a raw 13.6% miss rate only
to 7.7%) or too jittery on a long steady one, and a rate chosen on a test period is not allowed.
Dynamically-tuned ACI (DtACI: Gibbs and Candes, "Conformal Inference for Online Prediction with
Arbitrary Distribution Shifts", JMLR 25(162), 2024, Algorithm 1) runs one tracker ("expert") per
rate of a grid and weights them by exponential weights on their pinball loss, per horizon:

    loss_i = pinball_q(b - h_i)          b: the log factor that would just have covered the actual,
                                         log(actual / upper); h_i: expert i's, log(f_i / upper);
                                         both clipped to +-log 2 (b = -log 2 for an actual of 0)
    w_i <- w_i exp(-eta loss_i);  w <- (1 - sigma) w / sum(w) + sigma / k
    g = sum_i w_i g_i                    (the weighted mean of the experts' log factors)

with each expert moving by its own miss (actual > its own forecast f_i). The settings are the
paper's defaults, none fitted here: k = 8 rates doubling over a factor 128 (the paper's grid
0.001-0.128 around ACI's step 0.005, i.e. 0.2x-25.6x the base `rate`, so the single tracker's
0.05 is one expert); I = 100 (the local interval width), sigma = 1 / (2 I), and
eta = sqrt((log(k I) + 2) / sum of the last I squared losses): the paper's eta for a loss of that
size, with the size measured on the outcomes as the authors' code does (isgibbs/DtACI,
DtACI.R, `etaAdapt`) and the R package AdaptiveConformal (herbps10, dtaci.R) for scores that are
not already quantile levels in [0, 1] (ours are log factors). The window includes the outcome
being scored, so the first update already has a scale. The mixing sigma keeps every expert's
weight at least sigma / k, so after a level shift the weight moves to a faster expert within a
few dozen outcomes instead of waiting out the slow experts' accumulated lead. The paper's
guarantees (local regret against the best rate over every interval of I outcomes; long-run miss
rate near 1 - q) are for the randomised choice of one expert; the weighted mean is what the
authors' code outputs and what their experiments report.

Why a factor and not an offset in the load's unit (the tracker before): a surge's misses pushed
an additive offset up 19 times faster than hits in the trough pulled it down at q0.95, and the
same offset added to the trough's low forecast kept the daily-cycle e2e's trough floor one
replica high; a factor learned at the surge adds in proportion to the level.
Why never below the median: an upper quantile (q >= 0.5) is not below the median, and an exact
forecast (the linear AR on the deterministic staged ramp: median = upper = actual) then gets no
downward correction; the additive tracker pulled it below the actual and missed 6.5-18.9% there.
Why the clip: the forecast bound (forecasters.BOUND_FACTOR, 2: a rise beyond 2x is the reactive
path's) also bounds the correction, so a long idle or exact stretch cannot wind g up or down
without limit, and it bounds the pinball loss as the paper's [0, 1] levels do. `scale` puts the
step in the series' terms: the training history's mean absolute one-bucket change over its mean
(the relative MASE denominator).

Outcomes are used only once known: at origin o (standing just before bucket o) the forecast
made at origin o - 1 - j for horizon j has just been scored by bucket o - 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from autoglm_predictor.forecast.forecasters import BOUND_FACTOR
from autoglm_predictor.forecast.scores import exceeds, naive_scale

DEFAULT_RATE = 0.05  # the base rate; the experts run at RATE_MULTIPLES of it
RATE_MULTIPLES = 0.2 * 2.0 ** np.arange(8)  # DtACI's grid 0.001-0.128 over ACI's 0.005: 0.2x-25.6x
LOSS_WINDOW = 100  # DtACI's I: outcomes behind eta, and 1 / (2 I) is the mixing sigma
MAX_LOG_FACTOR = math.log(BOUND_FACTOR)


class CalibrationError(ValueError):
    """Settings or inputs calibration cannot use (message says which)."""


def relative_scale(history: np.ndarray) -> float:
    """`scores.naive_scale` (the mean absolute one-bucket change) over the mean level of `history`
    (NaN = missing); 1 for an idle or unknown level."""
    values = np.asarray(history, dtype=float)
    level = float(np.nanmean(values)) if np.isfinite(values).any() else 0.0
    return naive_scale(values) / level if level > 0 else 1.0


@dataclass(frozen=True)
class Calibrated:
    """One origin's calibrated forecast with what scoring it later needs (shapes: horizon, and
    experts x horizon for `experts`)."""

    forecast: np.ndarray  # the weighted experts' forecast: the one used
    upper: np.ndarray  # the forecaster's own upper quantile
    experts: np.ndarray  # each expert's forecast, max(median, upper x e^g_i, 0)


def _log_ratio(value: np.ndarray, upper: float) -> np.ndarray:
    """log(value / upper) clipped to +-MAX_LOG_FACTOR (a value of 0 is -MAX_LOG_FACTOR); upper > 0."""
    with np.errstate(divide="ignore"):
        return np.clip(np.log(np.maximum(value, 0.0) / upper), -MAX_LOG_FACTOR, MAX_LOG_FACTOR)


@dataclass
class QuantileTracker:
    """The per-horizon experts of one series; `apply` then `observe` as buckets close (live use).

    `log_factors` and `weights` are (experts, horizon); `squared_losses` (LOSS_WINDOW, horizon)
    holds each horizon's last squared weighted losses (NaN = not yet seen)."""

    quantile: float
    horizon: int
    scale: float
    rate: float = DEFAULT_RATE
    log_factors: np.ndarray = field(default=None)  # type: ignore[assignment]
    weights: np.ndarray = field(default=None)  # type: ignore[assignment]
    squared_losses: np.ndarray = field(default=None)  # type: ignore[assignment]
    scored: np.ndarray = field(default=None)  # type: ignore[assignment]  # outcomes per horizon
    misses: int = 0
    outcomes: int = 0

    def __post_init__(self) -> None:
        if not 0.5 <= self.quantile < 1:
            raise CalibrationError(f"quantile must be in [0.5, 1) (an upper quantile), got {self.quantile}")
        if self.horizon < 1 or not (np.isfinite(self.scale) and self.scale > 0):
            raise CalibrationError(f"need horizon >= 1 and a finite scale > 0, got {self.horizon}, {self.scale}")
        if not (np.isfinite(self.rate) and self.rate >= 0):
            raise CalibrationError(f"rate must be >= 0, got {self.rate}")
        shape = (len(RATE_MULTIPLES), self.horizon)
        if self.log_factors is None:
            self.log_factors = np.zeros(shape)
        if self.weights is None:
            self.weights = np.full(shape, 1.0 / len(RATE_MULTIPLES))
        if self.squared_losses is None:
            self.squared_losses = np.full((LOSS_WINDOW, self.horizon), np.nan)
        if self.scored is None:
            self.scored = np.zeros(self.horizon, dtype=int)

    @property
    def combined_log_factors(self) -> np.ndarray:
        """The weighted mean of the experts' log factors (horizon,): the one applied."""
        return np.sum(self.weights * self.log_factors, axis=0)

    @property
    def rates(self) -> np.ndarray:
        """The experts' rates (experts,)."""
        return self.rate * RATE_MULTIPLES

    def apply(self, upper: np.ndarray, median: np.ndarray) -> Calibrated:
        """The calibrated forecast (horizon,): the upper one scaled by the experts' weighted log
        factor, never below the median nor zero; with the experts' own forecasts for `observe`."""
        upper, median = np.asarray(upper, dtype=float), np.asarray(median, dtype=float)
        floor = np.maximum(median, 0.0)
        return Calibrated(forecast=np.maximum(upper * np.exp(self.combined_log_factors), floor), upper=upper,
                          experts=np.maximum(upper * np.exp(self.log_factors), floor))

    def observe(self, horizon_index: int, calibrated: Calibrated, actual: float) -> None:
        """Score one calibrated forecast's `horizon_index` once its bucket has closed (a missing
        actual is skipped): every expert moves by its own miss, then the weights by their loss."""
        j = horizon_index
        forecast, upper, experts = float(calibrated.forecast[j]), float(calibrated.upper[j]), calibrated.experts[:, j]
        if not np.isfinite(actual) or not np.isfinite(forecast):
            return
        self.misses += int(exceeds(actual, forecast))
        self.outcomes += 1
        if upper > 0:  # else no factor changes the forecast: every expert's loss is the same
            errors = _log_ratio(np.array(actual), upper) - _log_ratio(experts, upper)
            losses = np.maximum(self.quantile * errors, (self.quantile - 1.0) * errors)  # pinball
            self._reweight(j, losses)
        misses = exceeds(actual, experts).astype(float)
        moved = self.log_factors[:, j] + self.rates * self.scale * (misses - (1.0 - self.quantile))
        self.log_factors[:, j] = np.clip(moved, -MAX_LOG_FACTOR, MAX_LOG_FACTOR)

    def _reweight(self, j: int, losses: np.ndarray) -> None:
        """DtACI's exponential weights with mixing for horizon j (module docstring)."""
        weights = self.weights[:, j]
        self.squared_losses[self.scored[j] % LOSS_WINDOW, j] = float(np.dot(weights, losses)) ** 2
        self.scored[j] += 1
        seen = self.squared_losses[:, j][np.isfinite(self.squared_losses[:, j])]
        total = float(np.sum(seen)) * LOSS_WINDOW / len(seen)  # the last I outcomes', scaled up while fewer
        experts = len(weights)
        eta = math.sqrt((math.log(experts * LOSS_WINDOW) + 2.0) / total) if total > 0 else 0.0
        moved = weights * np.exp(-eta * (losses - losses.min()))  # the shift cancels in the normalisation
        sigma = 1.0 / (2 * LOSS_WINDOW)
        self.weights[:, j] = (1.0 - sigma) * moved / moved.sum() + sigma / experts

    @property
    def miss_rate(self) -> float | None:
        return self.misses / self.outcomes if self.outcomes else None

    @property
    def mean_rate(self) -> float:
        """The weighted mean of the experts' rates over horizons (the paper's gamma-bar)."""
        return float(np.mean(np.sum(self.weights * self.rates[:, None], axis=0)))


def calibrate(upper: np.ndarray, median: np.ndarray, values: np.ndarray, start: int, quantile: float,
              scale: float, rate: float = DEFAULT_RATE) -> np.ndarray:
    """Replay the calibration over forecasts from consecutive origins.

    `upper` and `median` are (origins, horizon): row i was made at origin start + i from
    `values[:start + i]`; `values` is the whole series (NaN = missing). Returns the calibrated
    upper forecasts, same shape; each row uses only outcomes known at its origin.
    """
    upper, median = np.asarray(upper, dtype=float), np.asarray(median, dtype=float)
    if upper.ndim != 2 or median.shape != upper.shape:
        raise CalibrationError(f"upper and median must be (origins, horizon), got {upper.shape} and {median.shape}")
    n, horizon = upper.shape
    tracker = QuantileTracker(quantile=quantile, horizon=horizon, scale=scale, rate=rate)
    issued: list[Calibrated] = []
    for i in range(n):
        origin = start + i
        closed = origin - 1  # the bucket that has just closed
        if 0 <= closed < len(values):
            for j in range(horizon):
                made = i - 1 - j  # row of the forecast that targeted `closed` at horizon j
                if made >= 0:
                    tracker.observe(j, issued[made], float(values[closed]))
        issued.append(tracker.apply(upper[i], median[i]))
    return np.array([row.forecast for row in issued]).reshape(upper.shape)


class LiveCalibration:
    """The calibration for a live series: one forecast per origin bucket, scored as buckets close.

    The predictor decides several times per bucket; every decision standing before the same bucket
    gets the same factors (they move only when a bucket closes), and the first calibrated
    forecast per origin is the one scored. A new horizon (the lead time changed) starts over.
    `scale` is `relative_scale` of the history at the start.
    """

    NAME = "relative-quantile-tracking"

    def __init__(self, quantile: float, rate: float = DEFAULT_RATE) -> None:
        self.quantile, self.rate = quantile, rate
        self.tracker: QuantileTracker | None = None
        self._pending: dict[object, Calibrated] = {}  # origin bucket start -> its calibrated forecast
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
            for origin, issued in self._pending.items():
                j = int(round((when - origin) / step))
                if 0 <= j < len(issued.forecast) and origin + j * step == when:
                    self.tracker.observe(j, issued, float(actual))
            self._scored_until = when
        origin = buckets.index[-1] + step if len(buckets) else None
        self._pending = {o: c for o, c in self._pending.items() if o + len(c.forecast) * step > origin}
        calibrated = self.tracker.apply(upper, median)
        self._pending.setdefault(origin, calibrated)
        return calibrated.forecast

    def describe(self) -> str:
        """For status.forecast: which calibration, its rates and the miss rate it has seen."""
        tracker = self.tracker
        rates = f"DtACI rates {self.rate * RATE_MULTIPLES[0]:.3g}-{self.rate * RATE_MULTIPLES[-1]:.3g}"
        if tracker is None or tracker.miss_rate is None:
            return f"{self.NAME} q{self.quantile:g} {rates}"
        combined = tracker.combined_log_factors
        return (f"{self.NAME} q{self.quantile:g} {rates} (weighted {tracker.mean_rate:.2g}), "
                f"{100 * tracker.miss_rate:.1f}% missed of {tracker.outcomes}, factor "
                f"{np.exp(combined.min()):.2f}-{np.exp(combined.max()):.2f}")
