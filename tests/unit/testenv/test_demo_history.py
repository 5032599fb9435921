"""The load history the demo publishes before its replay: the collector's records for the
preceding trace days, derived from the trace the way the load generator sends it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from autoglm_testenv.demo_history import in_flight, past_records
from autoglm_testenv.loadgen import step_counts

START = pd.Timestamp("1995-07-12T06:30")


def _trace(per_minute: float, days: float = 2.0, after: float = 0.0) -> pd.Series:
    """`per_minute` requests every minute for `days` before START, then `after` from START on."""
    index = pd.date_range(START - pd.Timedelta(days=days), START + pd.Timedelta(hours=1), freq="1min", inclusive="left")
    return pd.Series(np.where(index < START, per_minute, after), index=index, dtype=float)


def test_step_counts_keep_the_total_and_skip_gaps() -> None:
    assert list(step_counts([1.0, 1.0, float("nan"), 1.0, 1.0], 0.5)) == [0, 1, None, 0, 1]


def test_in_flight_counts_arrivals_of_the_last_service_time() -> None:
    arrivals = np.array([0.5, 1.2, 1.9])
    assert list(in_flight(arrivals, np.array([1.0, 2.0, 3.0]), 1.0)) == [1, 2, 0]


def test_records_end_just_before_the_replay_one_per_step() -> None:
    records = past_records("ns/glm", _trace(40.0), START, 1.0, 0.25, 60.0, 1.28, replay_start=100_000)
    assert len(records) == 1440  # one trace day at 60x: 1440 real seconds, one record each
    assert [r.ts for r in records[-2:]] == [99_998, 99_999]
    assert {r.step for r in records} == {1} and {r.deployment for r in records} == {"ns/glm"}


def test_load_is_arrival_rate_times_service_time() -> None:
    """Little's law: 40 requests per trace minute x 0.25 = 10 per real second, each 1.28 s in a slot."""
    records = past_records("ns/glm", _trace(40.0), START, 1.0, 0.25, 60.0, 1.28, replay_start=0)
    loads = np.array([r.load for r in records[5:]])
    assert loads.mean() == pytest.approx(12.8, rel=0.05)


def test_nothing_from_the_replayed_window_is_used() -> None:
    quiet = past_records("ns/glm", _trace(40.0, after=0.0), START, 1.0, 0.25, 60.0, 1.28, replay_start=0)
    loud = past_records("ns/glm", _trace(40.0, after=1e6), START, 1.0, 0.25, 60.0, 1.28, replay_start=0)
    assert quiet == loud


def test_a_trace_gap_is_an_explicit_gap() -> None:
    trace = _trace(40.0)
    trace[START - pd.Timedelta(minutes=30):START - pd.Timedelta(minutes=20)] = np.nan
    records = past_records("ns/glm", trace, START, 1.0, 0.25, 60.0, 1.28, replay_start=0)
    assert [r.load for r in records[-30:-19]] == [None] * 11
    assert all(r.load is not None for r in records[-19:])


def test_a_trace_too_short_for_the_history_is_refused() -> None:
    with pytest.raises(ValueError, match="3 days before"):
        past_records("ns/glm", _trace(40.0, days=2.0), START, 3.0, 0.25, 60.0, 1.28, replay_start=0)
