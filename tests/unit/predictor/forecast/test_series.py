from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from autoglm_predictor.forecast.series import TraceError, load_trace, rescale_factor, resample, split


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
    with pytest.raises(TraceError, match="empty"):
        split(series, test_start="2030-01-01")
