"""Load request traces into one shape: a regular, float, possibly-gappy pandas Series.

Every forecaster, the simulator and the CLI start from this shape, so all input validation
lives here and downstream code can trust it (regular DatetimeIndex, non-negative floats,
NaN only where the trace had no coverage).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

VALUE_COLUMNS = ("requests", "value")


class TraceError(ValueError):
    """A trace that cannot be turned into a usable demand series (message says why)."""


def load_trace(path: str | Path, column: str | None = None) -> pd.Series:
    """Read a `timestamp,<value>` CSV; empty cells become NaN (missing, not zero).

    The value column defaults to `requests` (NASA, Azure per-second) or `value` (generic).
    Timestamps with a UTC offset are kept as local wall-clock time, because the daily cycle
    the forecasters learn follows local time.
    """
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"trace file not found: {path}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "timestamp" not in frame.columns:
        raise TraceError(f"{path}: no 'timestamp' column (found {list(frame.columns)})")
    if column is None:
        column = next((c for c in VALUE_COLUMNS if c in frame.columns), None)
        if column is None:
            raise TraceError(f"{path}: no value column; expected one of {VALUE_COLUMNS} or --column")
    elif column not in frame.columns:
        raise TraceError(f"{path}: column {column!r} not found (found {list(frame.columns)})")
    return to_series(frame["timestamp"], frame[column], name=column)


def to_series(timestamps: pd.Series, values: pd.Series, name: str = "value") -> pd.Series:
    """Validate raw timestamp/value strings into a sorted float Series with a DatetimeIndex."""
    if len(timestamps) == 0:
        raise TraceError("trace is empty")
    index = _parse_timestamps(timestamps)
    raw = values.astype(str).str.strip()
    numbers = pd.to_numeric(raw.where(raw != "", None), errors="coerce")
    bad = numbers.isna() & (raw != "") & (raw.str.lower() != "nan")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise TraceError(f"non-numeric value {raw.iloc[row]!r} at row {row + 1}")
    series = pd.Series(numbers.to_numpy(dtype=float), index=index, name=name)
    if np.isinf(series.to_numpy()).any():
        raise TraceError("trace contains infinite values")
    if (series < 0).any():
        first = series[series < 0].index[0]
        raise TraceError(f"negative value {series[first]} at {first}; demand cannot be negative")
    if series.index.has_duplicates:
        raise TraceError(f"duplicate timestamp {series.index[series.index.duplicated()][0]}")
    series = series.sort_index()
    if series.isna().all():
        raise TraceError("trace has no values (all missing)")
    return series


def _parse_timestamps(timestamps: pd.Series) -> pd.DatetimeIndex:
    try:
        parsed = pd.to_datetime(timestamps, format="ISO8601")
    except (ValueError, TypeError):
        try:  # mixed UTC offsets (e.g. across a DST change): normalise through UTC
            parsed = pd.to_datetime(timestamps, format="ISO8601", utc=True)
        except (ValueError, TypeError) as error:
            raise TraceError(f"unparseable timestamp: {error}") from None
    index = pd.DatetimeIndex(parsed)
    if index.tz is not None:
        index = index.tz_localize(None)
    return index


def native_step(series: pd.Series) -> pd.Timedelta:
    """The trace's own sampling step: the most common gap between consecutive rows."""
    if len(series) < 2:
        raise TraceError("need at least two rows to infer the sampling step")
    step = pd.Series(series.index[1:] - series.index[:-1]).mode().iloc[0]
    if step <= pd.Timedelta(0):
        raise TraceError("timestamps do not increase")
    return step


def resample(series: pd.Series, step: pd.Timedelta, how: str = "sum") -> pd.Series:
    """Aggregate to a coarser regular step; a bucket with any missing sample is missing.

    A partially covered bucket would otherwise look like a demand drop, which teaches the
    forecasters (and the reactive emulation) something that never happened.
    """
    base = native_step(series)
    ratio = step / base
    if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
        raise TraceError(f"step {step} is not a whole multiple of the trace step {base}")
    if how not in ("sum", "max", "mean"):
        raise TraceError(f"unknown aggregation {how!r}")
    buckets = series.resample(step, origin="start_day")
    aggregated = getattr(buckets, how)()
    complete = buckets.count() >= round(ratio)
    return aggregated.where(complete).astype(float)


def rescale_factor(series: pd.Series, p99_fraction: float, max_replicas: int, capacity: float) -> float:
    """The factor that makes the series' p99 equal `p99_fraction` of the fleet's total capacity.

    This lets one trace exercise any cluster size while keeping its shape and burstiness.
    """
    if not 0 < p99_fraction <= 1:
        raise TraceError(f"p99 fraction must be in (0, 1], got {p99_fraction}")
    p99 = float(np.nanpercentile(series.to_numpy(), 99))
    if p99 <= 0:
        raise TraceError("cannot rescale: the trace's p99 is zero")
    return p99_fraction * max_replicas * capacity / p99


@dataclass(frozen=True)
class Split:
    """A chronological train/test split (test starts where train ends: no look-ahead)."""

    train: pd.Series
    test: pd.Series


def split(series: pd.Series, test_start: str | None = None, test_end: str | None = None,
          train_start: str | None = None, train_fraction: float = 0.7) -> Split:
    """Split at a date, or at `train_fraction` of the rows when no date is given."""
    if test_start is None:
        cut = series.index[int(len(series) * train_fraction)]
    else:
        cut = pd.Timestamp(test_start)
    train = series[series.index < cut]
    if train_start is not None:
        train = train[train.index >= pd.Timestamp(train_start)]
    test = series[series.index >= cut]
    if test_end is not None:
        test = test[test.index < pd.Timestamp(test_end)]
    if train.notna().sum() == 0 or test.notna().sum() == 0:
        raise TraceError(f"split at {cut} leaves an empty train or test period")
    return Split(train=train, test=test)
