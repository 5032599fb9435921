"""Per-request SLO attainment from a fluid first-in first-out queue, replayed open loop.

This is the field's yardstick for autoscalers (llm-d's SLO-aware loop, Dynamo's planner replay):
the share of requests whose time to first token stays within the SLO, not the share of minutes
with demand above capacity. The model, per simulation step of `step_seconds`:

- arrivals are open loop (they never depend on capacity) and spread evenly over their step, so
  the cumulative arrivals A(t) are piecewise linear;
- Ready replicas serve `capacity` requests per step at an even rate; requests beyond it wait in
  one backlog served first-in first-out, so the cumulative departures D(t) (a request "departs"
  when an engine takes it) are piecewise linear too: the served rate is the capacity while a
  backlog exists and the arrival rate once it is drained;
- a request arriving at s waits until D reaches A(s); it meets the SLO when that wait plus the
  engine's base time to first token is within the TTFT SLO, i.e. when D(s + slack) >= A(s) with
  slack = SLO - base TTFT. Between the merged breakpoints of A and of D shifted by the slack both
  sides are linear, so the count of late requests is exact, not sampled.

Nothing is served after the replay ends, so a request still waiting then counts as late. The model has no queueing below full capacity:
the capacity per replica must be the rate a replica sustains *within* the base TTFT (for an LLM,
the request rate at which a pod still meets its TTFT target), which is how llm-d sizes it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class QueueError(ValueError):
    """Inputs the fluid queue cannot replay (message says which)."""


@dataclass(frozen=True)
class Attainment:
    requests: float  # all arrivals (fluid: fractional counts)
    late: float  # arrivals whose wait + base TTFT exceeded the TTFT SLO
    final_backlog: float  # requests still waiting when the replay ended

    @property
    def met(self) -> float:
        return self.requests - self.late

    @property
    def attainment_pct(self) -> float:
        return 100.0 * self.met / self.requests if self.requests > 0 else 100.0


def departures(arrivals: np.ndarray, capacity: np.ndarray, step_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints (times in seconds, cumulative departures) of the FIFO fluid queue's D(t).

    `arrivals` and `capacity` are requests per step (arrays of equal length, finite, >= 0).
    Per step D has at most two linear pieces: at the capacity while a backlog remains, then at
    the arrival rate once it is drained within the step.
    """
    times, served = [0.0], [0.0]
    backlog, total = 0.0, 0.0
    for i, (a, c) in enumerate(zip(arrivals, capacity)):
        start = i * step_seconds
        if backlog > 0 and c > a:
            drain = backlog / (c - a) * step_seconds  # seconds until the backlog is gone
            if drain < step_seconds:
                total += c * drain / step_seconds
                times.append(start + drain)
                served.append(total)
                total += a * (step_seconds - drain) / step_seconds
                backlog = 0.0
            else:
                total += c
                backlog += a - c
        elif backlog > 0 or a > c:
            total += c
            backlog += a - c
        else:
            total += a
        times.append(start + step_seconds)
        served.append(total)
    return np.asarray(times), np.asarray(served)


def attainment(arrivals: np.ndarray, capacity: np.ndarray, step_seconds: float, slo_seconds: float,
               base_ttft_seconds: float) -> Attainment:
    """Count the requests whose wait in the FIFO backlog plus `base_ttft_seconds` exceeds `slo_seconds`.

    `arrivals` (requests per step; NaN = monitoring gap, counted as no arrivals) and `capacity`
    (requests the Ready replicas serve per step) have one entry per step. Raises QueueError for
    mismatched or negative inputs and for a base TTFT above the SLO (nothing could meet it).
    """
    arrivals = np.asarray(arrivals, dtype=float)
    arrivals = np.where(np.isnan(arrivals), 0.0, arrivals)
    capacity = np.asarray(capacity, dtype=float)
    if arrivals.ndim != 1 or arrivals.shape != capacity.shape:
        raise QueueError("arrivals and capacity must be 1-D arrays of equal length")
    if (arrivals < 0).any() or (capacity < 0).any() or not np.isfinite(arrivals).all() or not np.isfinite(capacity).all():
        raise QueueError("arrivals and capacity must be finite and >= 0")
    if step_seconds <= 0:
        raise QueueError(f"step_seconds must be > 0, got {step_seconds}")
    slack = slo_seconds - base_ttft_seconds
    if base_ttft_seconds < 0 or slack < 0:
        raise QueueError(f"need 0 <= base TTFT ({base_ttft_seconds} s) <= TTFT SLO ({slo_seconds} s)")
    d_times, d_served = departures(arrivals, capacity, step_seconds)
    a_times = np.arange(len(arrivals) + 1) * step_seconds
    a_cum = np.concatenate([[0.0], np.cumsum(arrivals)])
    # Arrival instants s where either A(s) or D(s + slack) changes slope, within the replay.
    points = np.unique(np.concatenate([a_times, np.clip(d_times - slack, 0.0, a_times[-1])]))
    arrived = np.interp(points, a_times, a_cum)
    margin = np.interp(points + slack, d_times, d_served) - arrived  # D(s + slack) - A(s); D holds after the end
    tolerance = 1e-9 * max(1.0, float(a_cum[-1]))
    f0, f1 = margin[:-1], margin[1:]
    ok0, ok1 = f0 >= -tolerance, f1 >= -tolerance
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = np.clip(f0 / (f0 - f1), 0.0, 1.0)  # where the linear margin crosses zero
    met_fraction = np.where(ok0 & ok1, 1.0, np.where(~ok0 & ~ok1, 0.0, np.where(ok0, crossing, 1.0 - crossing)))
    late = float(np.sum((1.0 - met_fraction) * np.diff(arrived)))
    return Attainment(requests=float(a_cum[-1]), late=late, final_backlog=float(a_cum[-1] - d_served[-1]))
