"""Load request traces into one shape: a regular, float, possibly-gappy pandas Series.

Every forecaster, the simulator and the CLI start from this shape, so all input validation
lives here and downstream code can trust it (regular DatetimeIndex, non-negative floats,
NaN only where the trace had no coverage).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

VALUE_COLUMNS = ("requests", "value")
# Above this many requests in one sample a value is a unit mistake, not demand: the largest web
# services serve ~1e8 requests/s, and sums over millions of such samples must stay exact in float64
# (integers are exact below 2**53 ~ 9e15).
MAX_VALUE = 1e15
# Numeric timestamps are Unix epoch seconds; from 1e11 on (year 5138 in seconds) they are
# milliseconds or finer, which we refuse rather than guess.
MAX_EPOCH_SECONDS = 1e11
TIMESTAMP_FORMATS = "ISO 8601 (2024-03-01T00:00:00, optionally with an offset such as +02:00) or Unix epoch seconds"


class TraceError(ValueError):
    """A trace, or a date or step applied to it, that cannot make a usable demand series (message
    says why and what to change)."""


def load_trace(path: str | Path, column: str | None = None) -> pd.Series:
    """Read a comma-separated `timestamp,<value>` CSV (or .csv.gz); empty cells become NaN (missing,
    not zero); other columns are ignored.

    The value column defaults to `requests` (NASA, Azure per-second) or `value` (generic).
    Timestamps with a UTC offset are kept as local wall-clock time, because the daily cycle
    the forecasters learn follows local time. Raises TraceError for anything pandas cannot read
    (bad gzip, binary, ragged rows) with the file's name.
    """
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"trace file not found: {path}")
    try:
        # skipinitialspace: "timestamp, value" headers and ", 5" cells read as their names and numbers
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise TraceError(f"{path}: the file is empty; expected a header line 'timestamp,value'") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError, zlib.error) as error:
        kind = "a gzip-compressed CSV" if path.suffix == ".gz" else "a CSV"
        reason = " ".join(str(error).split())
        raise TraceError(f"{path}: cannot be read as {kind} ({reason}); expected comma-separated "
                         "'timestamp,value' lines, gzip-compressed only when the name ends in .gz") from None
    found = list(frame.columns)
    if len(found) == 1 and any(separator in found[0] for separator in (";", "\t", "|")):
        raise TraceError(f"{path}: one column {found[0]!r}: the trace must be comma-separated")
    if "timestamp" not in found:
        raise TraceError(f"{path}: no 'timestamp' column (found {found}); the header must name it 'timestamp'")
    if column is None:
        column = next((c for c in VALUE_COLUMNS if c in found), None)
        if column is None:
            raise TraceError(f"{path}: no value column (found {found}); name it one of {VALUE_COLUMNS} or pass --column")
    elif column not in found:
        raise TraceError(f"{path}: column {column!r} not found (found {found})")
    return to_series(frame["timestamp"], frame[column], name=column)


def to_series(timestamps: pd.Series, values: pd.Series, name: str = "value") -> pd.Series:
    """Validate raw timestamp/value strings into a sorted float Series with a DatetimeIndex.

    Row numbers in errors are the CSV's line numbers (the header is line 1).
    """
    if len(timestamps) == 0:
        raise TraceError("trace is empty: a header but no rows")
    index = _parse_timestamps(timestamps)
    raw = values.astype(str).str.strip()
    numbers = pd.to_numeric(raw.where(raw != "", None), errors="coerce")
    bad = numbers.isna() & (raw != "") & (raw.str.lower() != "nan")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise TraceError(f"non-numeric value {raw.iloc[row]!r} at line {row + 2}: values must be plain numbers "
                         "(no thousands separators or units); leave a cell empty where the trace has no data")
    series = pd.Series(numbers.to_numpy(dtype=float), index=index, name=name)
    checks = ((np.isinf(series.to_numpy()), "infinite value", "leave the cell empty if it is missing"),
              (series.to_numpy() < 0, "negative value", "demand cannot be negative"),
              (series.to_numpy() > MAX_VALUE, "value", f"above {MAX_VALUE:g} requests per sample: check the unit"))
    for wrong, what, advice in checks:
        if wrong.any():
            row = int(np.flatnonzero(wrong)[0])
            raise TraceError(f"{what} {series.iloc[row]:g} at line {row + 2} ({series.index[row]}): {advice}")
    if series.index.has_duplicates:
        rows = np.flatnonzero(series.index.duplicated(keep=False))[:2] + 2
        raise TraceError(f"duplicate timestamp {series.index[rows[0] - 2]} (lines {rows[0]} and {rows[1]}): one row "
                         "per timestamp; sum the rows of each timestamp first")
    series = series.sort_index()
    if series.isna().all():
        raise TraceError("trace has no values (all missing)")
    return series


def _parse_timestamps(timestamps: pd.Series) -> pd.DatetimeIndex:
    """ISO 8601 strings (offsets kept as wall-clock time; mixed offsets through UTC) or epoch seconds (UTC)."""
    text = timestamps.astype(str).str.strip()
    epoch = pd.to_numeric(text, errors="coerce") if _numeric(text.iloc[0]) else None
    if epoch is not None and epoch.notna().all():
        if epoch.abs().max() >= MAX_EPOCH_SECONDS:
            raise TraceError(f"numeric timestamps up to {epoch.abs().max():g} look like epoch milliseconds or finer: "
                             f"use {TIMESTAMP_FORMATS}")
        return pd.DatetimeIndex(pd.to_datetime(epoch, unit="s"))
    try:
        parsed = pd.to_datetime(text, format="ISO8601")
    except (ValueError, TypeError):
        # mixed UTC offsets (e.g. across a DST change): normalise through UTC; NaT marks what fails
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    if parsed.isna().any():  # unparseable, or an empty cell (which pandas reads as NaT)
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise TraceError(f"unparseable timestamp {text.iloc[row]!r} at line {row + 2}: use {TIMESTAMP_FORMATS}")
    index = pd.DatetimeIndex(parsed)
    if index.tz is not None:
        index = index.tz_localize(None)
    return index


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def timestamp(text: str, option: str) -> pd.Timestamp:
    """A date given on the command line, read like the trace's timestamps (an offset is dropped, keeping
    the wall-clock time, as for the trace's own); `option` names it in the error."""
    try:
        value = pd.Timestamp(text)
    except ValueError:
        raise TraceError(f"{option} {text!r} is not a date: use {TIMESTAMP_FORMATS.split(' or ')[0]}") from None
    return value.tz_localize(None) if value.tz is not None else value


def span(duration: pd.Timedelta) -> str:
    """A duration as a user writes it on the command line: 1h, 5min, 90s, 0.5s."""
    seconds = duration.total_seconds()
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds and seconds % length == 0:
            return f"{seconds / length:g}{unit}"
    return f"{seconds:g}s"


def native_step(series: pd.Series) -> pd.Timedelta:
    """The trace's own sampling step: the most common gap between consecutive rows.

    TraceError when it is less than half of the gaps (jittered or event-driven timestamps): a
    bucket could then not tell a missing sample from a late one. Gaps of several steps (outages,
    left-out rows) are allowed; resample() judges those.
    """
    if len(series) < 2:
        raise TraceError("need at least two rows to infer the sampling step; the trace has one")
    gaps = pd.Series(series.index[1:] - series.index[:-1])
    step = gaps.mode().iloc[0]
    share = float((gaps == step).mean())
    if share < 0.5:
        raise TraceError(f"irregular timestamps: only {share:.0%} of the gaps between rows are the most common one "
                         f"({span(step)}); give one row per fixed step, e.g. round the timestamps to it or sum the "
                         "rows per step")
    return step


def resample(series: pd.Series, step: pd.Timedelta, how: str = "sum") -> pd.Series:
    """Aggregate to a coarser regular step; a bucket with any missing sample is missing.

    A partially covered bucket would otherwise look like a demand drop, which teaches the
    forecasters (and the reactive emulation) something that never happened. TraceError when `step`
    is not a whole multiple of the trace's step, when the rows are irregular (most buckets holding
    rows hold fewer than the step implies: jittered or event-driven timestamps, or rows left out
    where the load was zero), or when no bucket is complete.
    """
    base = native_step(series)
    ratio = step / base
    if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
        raise TraceError(f"step {span(step)} is not a whole multiple of the trace's step {span(base)} (its most "
                         f"common gap): choose --bucket (and the backtest's --step) as a multiple of {span(base)}")
    if how not in ("sum", "max", "mean"):
        raise TraceError(f"unknown aggregation {how!r}")
    covered = series.index[-1] - series.index[0] + base
    if covered < step:
        raise TraceError(f"the trace covers {span(covered)}, less than one {span(step)} step or bucket")
    buckets = series.resample(step, origin="start_day")
    rows = buckets.size()
    inner = rows[rows > 0].iloc[1:-1]  # the first and last buckets may be partly outside the trace
    short = int((inner < round(ratio)).sum())
    if short > len(inner) / 2:
        raise TraceError(f"irregular timestamps: {short} of {len(inner)} {span(step)} buckets hold fewer "
                         f"than the {round(ratio)} rows the trace's step of {span(base)} implies; give one row per "
                         f"{span(base)} (an empty cell where there is no data, 0 where there was no load)")
    aggregated = getattr(buckets, how)()
    complete = buckets.count() >= round(ratio)
    if not complete.any():
        raise TraceError(f"no complete {span(step)} bucket: every one has a missing sample (an empty cell or a gap)")
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
    """Split at a date, or at `train_fraction` of the rows when no date is given.

    TraceError, naming the option and the trace's range, when a date is not one or a period would
    hold no values (a date outside the trace, --test-end before --test-start, missing data).
    """
    first, last = series.index[0], series.index[-1]
    where = f"the trace runs {first} .. {last}"
    if test_start is None:
        cut = series.index[int(len(series) * train_fraction)]
    else:
        cut = timestamp(test_start, "--test-start")
        if not first < cut <= last:
            raise TraceError(f"--test-start {cut} leaves no {'training' if cut <= first else 'test'} period: {where}; "
                             "pick a date inside it")
    train = series[series.index < cut]
    if train_start is not None:
        begin = timestamp(train_start, "--train-start")
        if begin >= cut:
            raise TraceError(f"--train-start {begin} is not before the test start {cut}")
        train = train[train.index >= begin]
    test = series[series.index >= cut]
    if test_end is not None:
        end = timestamp(test_end, "--test-end")
        if end <= cut:
            raise TraceError(f"--test-end {end} is not after the test start {cut}")
        test = test[test.index < end]
    for period, part in (("training", train), ("test", test)):
        if part.notna().sum() == 0:
            raise TraceError(f"the {period} period holds no values: {where}; move --test-start, --test-end or --train-start")
    return Split(train=train, test=test)
