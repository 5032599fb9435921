"""Per-deployment load samples, deduplicated by timestamp, as the bucketed series forecasters read.

Kafka delivers at least once and a collector catching up re-sends steps, so the same sample can
arrive twice, late or out of order: keying by `ts` makes all of that harmless. An explicit gap
(`load=None`) is stored as NaN and stays a gap; a real value for the same instant replaces it.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from autoglm_predictor.forecast.series import resample


class History:
    def __init__(self, step_seconds: int, keep_seconds: int) -> None:
        self.step = step_seconds
        self.keep = keep_seconds
        self._samples: dict[int, float] = {}

    def add(self, ts: int, load: float | None) -> bool:
        """Store one sample; False when it adds nothing (duplicate, or older than what is kept)."""
        value = math.nan if load is None else load
        known = self._samples.get(ts)
        if known is not None and (math.isnan(value) or not math.isnan(known)):
            return False
        if self._samples and ts < max(self._samples) - self.keep:
            return False
        self._samples[ts] = value
        newest = max(self._samples)
        if min(self._samples) < newest - self.keep:
            self._samples = {t: v for t, v in self._samples.items() if t >= newest - self.keep}
        return True

    def copy(self) -> History:
        """A snapshot another thread can read while this one keeps receiving samples."""
        twin = History(self.step, self.keep)
        twin._samples = dict(self._samples)
        return twin

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def latest(self) -> tuple[int, float] | None:
        """The newest observed (non-gap) sample."""
        observed = [t for t, v in self._samples.items() if not math.isnan(v)]
        if not observed:
            return None
        ts = max(observed)
        return ts, self._samples[ts]

    def missing_steps(self) -> int:
        """Step instants between the first and last sample that never arrived (not even as a gap)."""
        if not self._samples:
            return 0
        span = (max(self._samples) - min(self._samples)) // self.step + 1
        return int(span - len(self._samples))

    def buckets(self, bucket_seconds: int) -> pd.Series:
        """Peak load per complete bucket (bucket boundaries on multiples of `bucket_seconds`).

        Partial buckets at either end are dropped: a half-seen bucket would look like a dip.
        """
        if not self._samples:
            return pd.Series(dtype=float)
        first = -(-min(self._samples) // bucket_seconds) * bucket_seconds
        end = (max(self._samples) + self.step) // bucket_seconds * bucket_seconds
        steps = np.arange(first, end, self.step)
        if len(steps) < 2:
            return pd.Series(dtype=float)
        values = [self._samples.get(int(t), math.nan) for t in steps]
        series = pd.Series(values, index=pd.to_datetime(steps, unit="s"), dtype=float)
        return resample(series, pd.Timedelta(seconds=bucket_seconds), how="max")
