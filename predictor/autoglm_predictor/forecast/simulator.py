"""Closed-loop replay: demand per step against pods that need a cold start to become Ready.

The reactive path emulates the Kubernetes HPA as KEDA drives it (AverageValue target, 10%
tolerance, stabilisation windows, sync period, min/max); a predictive policy enters only as a
per-step replica floor, exactly as a rewritten minReplicaCount would. Floors do not depend on
the simulated cluster, so they are computed beforehand and passed in as an array.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autoglm_predictor.forecast.queueing import QueueError, attainment
from autoglm_predictor.forecast.scores import Elasticity, elasticity


class SimulationError(ValueError):
    """Inputs the simulator cannot replay (message says which)."""


@dataclass(frozen=True)
class ClusterConfig:
    """Demand and capacity are in requests per step."""

    step_seconds: float
    capacity_per_replica: float
    max_replicas: int
    min_replicas: int = 1
    cold_start_seconds: float = 300.0
    target_utilisation: float = 0.8
    tolerance: float = 0.1
    sync_period_seconds: float = 15.0
    scale_up_window_seconds: float = 0.0
    scale_down_window_seconds: float = 300.0
    # Per-request SLO of the fluid queue (forecast/queueing.py): a request meets it when its wait
    # in the backlog plus the engine's base time to first token is within the TTFT SLO. 3 s is
    # llm-d's SLO-aware autoscaling benchmark's TTFT target.
    ttft_slo_seconds: float = 3.0
    base_ttft_seconds: float = 0.5

    def __post_init__(self) -> None:
        if self.step_seconds <= 0 or self.capacity_per_replica <= 0:
            raise SimulationError("step_seconds and capacity_per_replica must be > 0")
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise SimulationError("need 0 <= min_replicas <= max_replicas >= 1")
        if not 0 < self.target_utilisation <= 1:
            raise SimulationError("target_utilisation must be in (0, 1]")
        if self.cold_start_seconds < 0:
            raise SimulationError("cold_start_seconds must be >= 0")
        if not 0 <= self.base_ttft_seconds <= self.ttft_slo_seconds:
            raise SimulationError(f"need 0 <= base TTFT ({self.base_ttft_seconds} s) <= TTFT SLO ({self.ttft_slo_seconds} s)")

    @property
    def cold_start_steps(self) -> int:
        return math.ceil(self.cold_start_seconds / self.step_seconds - 1e-9)

    @property
    def sync_every(self) -> int:
        """HPA syncs happen at most once per simulated step."""
        return max(1, round(self.sync_period_seconds / self.step_seconds))

    @property
    def lead_steps(self) -> int:
        """Steps a floor set now must cover: pods started now serve from step t+1+cold start,
        and the next chance to act is one sync later."""
        return self.cold_start_steps + self.sync_every

    def needed(self, load: np.ndarray, utilisation: float) -> np.ndarray:
        return np.ceil(np.maximum(load, 0) / (self.capacity_per_replica * utilisation) - 1e-9)


@dataclass(frozen=True)
class Trajectory:
    ready: np.ndarray  # Ready replicas serving during each step
    starting: np.ndarray  # pods started but not Ready during each step
    scale_events: int


@dataclass(frozen=True)
class Outcome:
    """Per-policy scores over the replayed period.

    The first four are the field's axes (per-request attainment against what the GPUs cost); the
    violation minutes and the SPEC RG elasticity metrics are the secondary, per-step view.
    """

    slo_attainment_pct: float  # percent of requests within the TTFT SLO (fluid FIFO queue)
    avg_replicas: float  # time-averaged pods, Starting ones included (a loading GPU is paid for)
    gpu_hours: float  # pod-hours including pods still starting
    goodput_per_gpu_hour: float  # requests that met the SLO per GPU-hour
    late_requests: float
    violation_pct: float  # percent of observed steps with demand above ready capacity
    violation_minutes: float
    cold_start_gpu_minutes: float
    scale_events: int
    elasticity: Elasticity


def simulate(config: ClusterConfig, demand: np.ndarray, floors: np.ndarray | None = None,
             initial_replicas: int | None = None) -> Trajectory:
    """Replay `demand`; `floors[t]` is the minReplicas in force at the control point after step t.

    NaN demand (monitoring gap) is skipped by the metrics; the HPA holds its last reading.
    """
    demand = np.asarray(demand, dtype=float)
    if demand.ndim != 1 or demand.size == 0:
        raise SimulationError("demand must be a non-empty 1-D array")
    if np.isnan(demand).all() or (demand[np.isfinite(demand)] < 0).any() or np.isinf(demand).any():
        raise SimulationError("demand must contain finite, non-negative values")
    if floors is not None and (len(floors) != len(demand) or not np.isfinite(floors).all()):
        raise SimulationError("floors must be finite and as long as demand")
    first = demand[np.isfinite(demand)][0]
    replicas = initial_replicas if initial_replicas is not None else int(config.needed(np.array([first]), config.target_utilisation)[0])
    ready = min(config.max_replicas, max(config.min_replicas, replicas))
    pending: list[int] = []  # step at which each starting pod becomes Ready, oldest first
    history: list[tuple[int, int]] = []  # (step, raw recommendation) for stabilisation
    up_window = round(config.scale_up_window_seconds / config.step_seconds)
    down_window = round(config.scale_down_window_seconds / config.step_seconds)
    observed = first
    ready_out = np.zeros(len(demand), dtype=int)
    starting_out = np.zeros(len(demand), dtype=int)
    events = 0
    for t in range(len(demand)):
        ready += sum(1 for when in pending if when <= t)
        pending = [when for when in pending if when > t]
        ready_out[t], starting_out[t] = ready, len(pending)
        if np.isfinite(demand[t]):
            observed = demand[t]
        if t % config.sync_every:
            continue
        current = ready + len(pending)
        floor = config.min_replicas if floors is None else max(config.min_replicas, int(floors[t]))
        target = config.capacity_per_replica * config.target_utilisation
        ratio = observed / (target * current) if current else math.inf
        recommendation = current if abs(ratio - 1) <= config.tolerance else int(config.needed(np.array([observed]), config.target_utilisation)[0])
        history = [(s, r) for s, r in history if s > t - max(up_window, down_window, 1)]
        up = min([r for s, r in history if s > t - up_window] + [recommendation])
        down = max([r for s, r in history if s > t - down_window] + [recommendation])
        history.append((t, recommendation))
        desired = min(max(current, up), down)
        desired = min(config.max_replicas, max(floor, desired))
        if desired > current:
            pending += [t + 1 + config.cold_start_steps] * (desired - current)
            events += 1
        elif desired < current:
            remove = current - desired
            dropped = min(remove, len(pending))
            pending = pending[: len(pending) - dropped]  # newest (not yet Ready) pods go first
            ready -= remove - dropped
            events += 1
    return Trajectory(ready=ready_out, starting=starting_out, scale_events=events)


def score(config: ClusterConfig, demand: np.ndarray, trajectory: Trajectory) -> Outcome:
    """Score a replay; demand is requests per step (NaN: a monitoring gap, no arrivals counted)."""
    demand = np.asarray(demand, dtype=float)
    observed = np.isfinite(demand)
    capacity = trajectory.ready[observed] * config.capacity_per_replica
    violations = int(np.sum(demand[observed] > capacity + 1e-9))
    step_minutes = config.step_seconds / 60
    pods = trajectory.ready + trajectory.starting
    gpu_hours = float(np.sum(pods)) * step_minutes / 60
    try:
        queue = attainment(demand, trajectory.ready * config.capacity_per_replica, config.step_seconds,
                           config.ttft_slo_seconds, config.base_ttft_seconds)
    except QueueError as error:
        raise SimulationError(str(error)) from None
    return Outcome(
        slo_attainment_pct=queue.attainment_pct,
        avg_replicas=float(np.mean(pods)),
        gpu_hours=gpu_hours,
        goodput_per_gpu_hour=queue.met / gpu_hours if gpu_hours > 0 else 0.0,
        late_requests=queue.late,
        violation_pct=100 * violations / max(1, int(observed.sum())),
        violation_minutes=violations * step_minutes,
        cold_start_gpu_minutes=float(np.sum(trajectory.starting)) * step_minutes,
        scale_events=trajectory.scale_events,
        elasticity=elasticity(config.needed(demand[observed], 1.0), trajectory.ready[observed]),
    )
