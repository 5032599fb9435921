from pathlib import Path

import gzip

import numpy as np
import pandas as pd
import pytest

from autoglm_predictor.forecast.series import TraceError, load_trace, rescale_factor, resample, span, split


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    return path


def test_empty_cells_are_missing_not_zero(tmp_path):
    path = write(tmp_path, "timestamp,requests\n1995-07-01T00:00:00-04:00,4\n1995-07-01T00:01:00-04:00,\n1995-07-01T00:02:00-04:00,6\n")
    series = load_trace(path)
    assert series.iloc[0] == 4 and np.isnan(series.iloc[1])
    assert series.index[0] == pd.Timestamp("1995-07-01 00:00")  # local wall-clock time kept


def test_generic_value_column(tmp_path):
    path = write(tmp_path, "timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:01,2\n")
    assert load_trace(path).tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("timestamp,value\n", "empty"),
        ("", "the file is empty"),
        ("timestamp;value\n2024-01-01 00:00;1\n", "must be comma-separated"),
        ("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:01,2,3\n", "cannot be read as a CSV"),
        ("timestamp,value\n03/01/2024 00:00,1\n03/01/2024 00:01,2\n", "unparseable timestamp '03/01/2024 00:00' at line 2: use ISO 8601"),
        ("timestamp,value\n2024-01-01 00:00,1\n,2\n", "unparseable timestamp '' at line 3"),
        ("timestamp,value\n1709251200000,1\n1709251260000,2\n", "epoch milliseconds"),
        ("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:01,inf\n", "infinite value inf at line 3"),
        ("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:01,1e300\n", "above 1e\\+15 requests per sample"),
        ("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:01,\"1,234\"\n", "no thousands separators"),
        ("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:01,2\n2024-01-01 00:00,3\n", "lines 2 and 4"),
        ("Timestamp,Value\n2024-01-01 00:00,1\n", "the header must name it 'timestamp'"),
        ("timestamp,value\n2024-01-01 00:00,\n2024-01-01 00:01,\n", "all missing"),
        ("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:01,-3\n", "negative"),
        ("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:01,abc\n", "non-numeric"),
        ("timestamp,value\nyesterday,1\n2024-01-01 00:01,2\n", "unparseable timestamp"),
        ("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:00,2\n", "duplicate"),
        ("time,value\n2024-01-01 00:00,1\n", "no 'timestamp'"),
        ("timestamp,other\n2024-01-01 00:00,1\n", "no value column"),
    ],
)
def test_bad_traces_raise_clear_errors(tmp_path, text, message):
    with pytest.raises(TraceError, match=message):
        load_trace(write(tmp_path, text))


@pytest.mark.parametrize("text, expected", [
    # an offset is dropped, keeping the wall-clock time the daily cycle follows
    ("timestamp,value\n2024-01-01T00:00:00+02:00,1\n2024-01-01T00:01:00+02:00,2\n", ["2024-01-01 00:00", "2024-01-01 00:01"]),
    ("timestamp,value\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,2\n", ["2024-01-01 00:00", "2024-01-01 00:01"]),
    # mixed offsets (a DST change) go through UTC: one continuous minute apart, not an hour's jump
    ("timestamp,value\n2024-03-10T01:59:00-05:00,1\n2024-03-10T03:00:00-04:00,2\n", ["2024-03-10 06:59", "2024-03-10 07:00"]),
    # Unix epoch seconds, integer or fractional, are UTC
    ("timestamp,value\n1709251200,1\n1709251260,2\n", ["2024-03-01 00:00", "2024-03-01 00:01"]),
    ("timestamp,value\n1709251200.0,1\n1709251260.0,2\n", ["2024-03-01 00:00", "2024-03-01 00:01"]),
    # spaces after the commas, extra columns
    ("timestamp, value, host\n2024-01-01 00:00, 1, a\n2024-01-01 00:01, 2, b\n", ["2024-01-01 00:00", "2024-01-01 00:01"]),
])
def test_timestamp_shapes(tmp_path, text, expected):
    series = load_trace(write(tmp_path, text))
    assert list(series.index) == [pd.Timestamp(t) for t in expected] and series.tolist() == [1.0, 2.0]


def test_gzip_by_suffix_only(tmp_path):
    text = "timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:01,2\n"
    packed = tmp_path / "trace.csv.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    assert load_trace(packed).tolist() == [1.0, 2.0]
    plain = tmp_path / "plain.csv.gz"
    plain.write_text(text)
    with pytest.raises(TraceError, match="cannot be read as a gzip-compressed CSV"):
        load_trace(plain)


def test_missing_file():
    with pytest.raises(TraceError, match="not found"):
        load_trace("no/such/file.csv")


def test_unsorted_rows_are_sorted(tmp_path):
    path = write(tmp_path, "timestamp,value\n2024-01-01 00:01,2\n2024-01-01 00:00,1\n")
    assert load_trace(path).tolist() == [1.0, 2.0]


def minutes(values: list[float]) -> pd.Series:
    return pd.Series(values, index=pd.date_range("2024-01-01", periods=len(values), freq="1min"), dtype=float)


def test_resample_marks_partial_buckets_missing():
    series = minutes([1, 2, 3, np.nan, 5, 6])
    out = resample(series, pd.Timedelta("3min"))
    assert out.iloc[0] == 6 and np.isnan(out.iloc[1])
    assert resample(minutes([1, 4, 2, 0]), pd.Timedelta("2min"), how="max").tolist() == [4, 2]


def test_resample_rejects_finer_or_fractional_steps():
    with pytest.raises(TraceError, match="whole multiple"):
        resample(minutes([1, 2, 3]), pd.Timedelta("30s"))
    with pytest.raises(TraceError, match="whole multiple"):
        resample(minutes([1, 2, 3]), pd.Timedelta("90s"))
    with pytest.raises(TraceError, match="step 1min is not a whole multiple of the trace's step 5min"):
        resample(minutes(list(range(10))).resample("5min").sum(), pd.Timedelta("1min"))


def at(offsets: list[str], values: list[float]) -> pd.Series:
    return pd.Series(values, index=pd.Timestamp("2024-01-01") + pd.to_timedelta(offsets), dtype=float)


def test_resample_refuses_irregular_rows():
    # per-second counts with the idle seconds left out: most minutes hold fewer than 60 rows
    seconds = [f"{m}min {s}s" for m in range(10) for s in range(10)]
    with pytest.raises(TraceError, match="irregular timestamps: 8 of 8 1min buckets hold fewer than the 60 rows"):
        resample(at(seconds, [1.0] * len(seconds)), pd.Timedelta("1min"))
    # jittered timestamps: no fixed step to count samples by
    jittered = at([f"{m}min {s}s" for m, s in enumerate([0, 20, 5, 40, 10, 0, 30, 15, 0, 25])], [1.0] * 10)
    with pytest.raises(TraceError, match="irregular timestamps: only 33% of the gaps between rows are the most common one"):
        resample(jittered, pd.Timedelta("1min"))
    # an outage (a longer gap) is not irregular: its buckets are missing
    outage = at(["0min", "1min", "2min", "3min", "7min", "8min", "9min"], [1.0] * 7)
    assert resample(outage, pd.Timedelta("1min")).isna().sum() == 3


@pytest.mark.parametrize("values, step, message", [
    ([1, 2], "5min", "covers 2min, less than one 5min step"),
    ([1, np.nan] * 5, "2min", "no complete 2min bucket"),
])
def test_resample_without_a_complete_bucket(values, step, message):
    with pytest.raises(TraceError, match=message):
        resample(minutes(values), pd.Timedelta(step))


@pytest.mark.parametrize("seconds, text", [(3600, "1h"), (300, "5min"), (90, "90s"), (0.5, "0.5s"), (86400, "1d")])
def test_span(seconds, text):
    assert span(pd.Timedelta(seconds=seconds)) == text


def test_rescale_maps_p99_to_fraction_of_fleet():
    series = minutes(list(range(101)))
    out = series * rescale_factor(series, 0.5, max_replicas=10, capacity=20)
    assert np.percentile(out, 99) == pytest.approx(100)
    with pytest.raises(TraceError, match="p99 is zero"):
        rescale_factor(minutes([0, 0, 0]), 0.5, 10, 20)
    with pytest.raises(TraceError, match="fraction"):
        rescale_factor(series, 1.5, 10, 20)


def test_split_by_date_and_fraction():
    series = minutes(list(range(10)))
    by_date = split(series, test_start="2024-01-01 00:07")
    assert len(by_date.train) == 7 and len(by_date.test) == 3
    by_fraction = split(series)
    assert len(by_fraction.train) == 7
    assert len(split(series, test_start="2024-01-01T00:07:00+02:00").train) == 7  # wall-clock, as the trace


@pytest.mark.parametrize("dates, message", [
    ({"test_start": "2030-01-01"}, "--test-start 2030-01-01 00:00:00 leaves no test period: the trace runs "
                                   "2024-01-01 00:00:00 .. 2024-01-01 00:09:00"),
    ({"test_start": "2023-01-01"}, "leaves no training period"),
    ({"test_start": "tomorrow"}, "--test-start 'tomorrow' is not a date"),
    ({"test_start": "2024-01-01 00:05", "test_end": "2024-01-01 00:02"}, "--test-end .* is not after the test start"),
    ({"test_start": "2024-01-01 00:05", "train_start": "2024-01-01 00:06"}, "--train-start .* is not before"),
    ({"test_start": "2024-01-01 00:05", "test_end": "nope"}, "--test-end 'nope' is not a date"),
])
def test_split_names_the_date_at_fault(dates, message):
    with pytest.raises(TraceError, match=message):
        split(minutes(list(range(10))), **dates)


def test_split_refuses_a_period_without_values():
    with pytest.raises(TraceError, match="the training period holds no values"):
        split(minutes([np.nan] * 5 + [1.0] * 5), test_start="2024-01-01 00:05")
