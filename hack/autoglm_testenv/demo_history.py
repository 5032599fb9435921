"""The load records the collector would have published before the demo's replay starts.

The demo replays four trace hours; a forecaster learns a daily ramp only from earlier days
(with `--season-seconds` one trace day, the linear AR adds its same-time-yesterday lag once
two days of history exist). So before the replay the demo publishes, to its Kafka topic, the
records of the `days` trace days before the replayed window, as if the system had been
running for that long: the same `LoadRecord`s (records.py), one per collector step, in the
same unit as the collector's load signal (running + waiting requests of the deployment), with
timestamps in compressed time just before the replay starts. Nothing after the replay's first
trace minute is used, so the predictor is never shown the future.

Derivation, for trace steps before the replayed window:
- arrivals: each trace step lasts step/speedup real seconds and carries
  `loadgen.step_counts(values, scale)` requests at uniformly random offsets inside it, which
  is how the load generator sends them during the replay;
- load: the fleet is assumed to have had enough ready capacity throughout (nobody waits), and
  the engine serves each request in `service_seconds` (its prefill plus decode time for the
  demo's fixed request size; the demo's engines run without batch slowdown so that this time
  is a constant). The load at instant t is then the number of requests that arrived in
  (t - service_seconds, t];
- sampling: the collector publishes the load at every whole step second, as Prometheus saw it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from autoglm_predictor.pipeline.records import LoadRecord
from autoglm_testenv.loadgen import step_counts


def arrival_times(values: pd.Series, scale: float, step_seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival instants in seconds from the start of `values` (one trace step = `step_seconds`)."""
    times = [i * step_seconds + rng.uniform(0.0, step_seconds, count)
             for i, count in enumerate(step_counts(values, scale)) if count]
    return np.sort(np.concatenate(times)) if times else np.empty(0)


def in_flight(arrivals: np.ndarray, instants: np.ndarray, service_seconds: float) -> np.ndarray:
    """Requests in flight at each instant when every request is served in `service_seconds` at once."""
    return (np.searchsorted(arrivals, instants, side="right")
            - np.searchsorted(arrivals, instants - service_seconds, side="right"))


def past_records(deployment: str, trace: pd.Series, start: pd.Timestamp, days: float, scale: float, speedup: float,
                 service_seconds: float, replay_start: int, step_seconds: int = 1, seed: int = 0) -> list[LoadRecord]:
    """One record per collector step for `days` trace days before `start`, ending just before
    `replay_start` (epoch seconds, where the replay of `start` begins).

    Raises ValueError when the trace does not reach that far back. A trace gap (no coverage)
    becomes load None, an explicit gap as the collector publishes one.
    """
    if days <= 0 or scale < 0 or speedup <= 0 or service_seconds <= 0 or step_seconds < 1:
        raise ValueError("days, speedup, service_seconds and step_seconds must be > 0 and scale >= 0")
    if replay_start % step_seconds:
        raise ValueError(f"replay_start {replay_start} is not a multiple of the step {step_seconds}")
    first = start - pd.Timedelta(days=days)
    past = trace[(trace.index >= first) & (trace.index < start)]
    if past.empty or past.index[0] > first:
        raise ValueError(f"the trace starts at {trace.index[0]}, after {first} ({days:g} days before {start})")
    trace_step = (past.index[1] - past.index[0]).total_seconds() if len(past) > 1 else 60.0
    step_real = trace_step / speedup
    span = len(past) * step_real  # real seconds the past window lasts
    arrivals = arrival_times(past, scale, step_real, np.random.default_rng(seed))
    count = int(span // step_seconds)
    offsets = np.arange(span - count * step_seconds, span, step_seconds)[:count]  # sample instants, end-aligned
    loads = in_flight(arrivals, offsets, service_seconds)
    covered = past.notna().to_numpy()[np.minimum((offsets // step_real).astype(int), len(past) - 1)]
    timestamps = replay_start - span + offsets
    return [LoadRecord(deployment=deployment, ts=int(round(ts)), step=step_seconds, load=float(load) if ok else None)
            for ts, load, ok in zip(timestamps, loads, covered)]
