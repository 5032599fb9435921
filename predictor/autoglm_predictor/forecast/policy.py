"""The predictive scaling policy: a pure function from (config, state, inputs) to a decision.

The forecast only ever sets a replica *floor* (KEDA minReplicaCount / HPA minReplicas): the
reactive path still scales above it, and the floor never asks for fewer replicas than the
reactive settings would. A live consumer calls `decide` once per forecast or tick and writes
`Decision.min_replicas`; the simulator calls it the same way.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


class PolicyError(ValueError):
    """An impossible policy configuration (message says which field)."""


@dataclass(frozen=True)
class PolicyConfig:
    """Load and capacity share one unit (e.g. requests per minute)."""

    capacity_per_replica: float
    max_replicas: int
    min_replicas: int = 1
    target_utilisation: float = 0.8
    max_step_up: int = 10  # replicas the floor may rise per decision
    max_step_down: int = 2  # replicas the floor may fall per decision (also the stale decay rate)
    hysteresis: float = 0.1  # the floor falls only when the need is this fraction below it
    stale_after_seconds: float = 600.0
    # The floor falls only to the highest need of the fresh decisions within this window, as the
    # HPA's scale-down stabilisation does; 0 = the current need only. It keeps a forecast that
    # swings bucket to bucket from flipping the floor (issue 13: max and min every few seconds).
    scale_down_window_seconds: float = 0.0
    # The lead a forecast has over reactive scaling is the pod cold start (the pipeline lag delays
    # both). Below the break-even cold start a floor costs GPUs without beating tuned reactive
    # scaling at equal cost (issue 16: with fast starts reactive catches up within a sync or two),
    # so the policy backs off to the reactive path by itself: the floor stays at min_replicas.
    cold_start_seconds: float = math.inf
    break_even_cold_start_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.capacity_per_replica) and self.capacity_per_replica > 0):
            raise PolicyError(f"capacity_per_replica must be > 0, got {self.capacity_per_replica}")
        if not 0 < self.target_utilisation <= 1:
            raise PolicyError(f"target_utilisation must be in (0, 1], got {self.target_utilisation}")
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise PolicyError(f"need 0 <= min_replicas <= max_replicas >= 1, got {self.min_replicas}, {self.max_replicas}")
        if self.max_step_up < 1 or self.max_step_down < 1:
            raise PolicyError("max_step_up and max_step_down must be >= 1")
        if not 0 <= self.hysteresis < 1:
            raise PolicyError(f"hysteresis must be in [0, 1), got {self.hysteresis}")
        if self.stale_after_seconds <= 0:
            raise PolicyError("stale_after_seconds must be > 0")
        if not (math.isfinite(self.scale_down_window_seconds) and self.scale_down_window_seconds >= 0):
            raise PolicyError(f"scale_down_window_seconds must be >= 0, got {self.scale_down_window_seconds}")
        if not (self.cold_start_seconds >= 0 and math.isfinite(self.break_even_cold_start_seconds)
                and self.break_even_cold_start_seconds >= 0):
            raise PolicyError(f"need cold_start_seconds >= 0 and a finite break_even_cold_start_seconds >= 0, got "
                              f"{self.cold_start_seconds}, {self.break_even_cold_start_seconds}")

    @property
    def reactive_only(self) -> bool:
        """True when pods start too fast for a forecast floor to pay (see break_even_cold_start_seconds)."""
        return self.cold_start_seconds < self.break_even_cold_start_seconds

    @property
    def target_per_replica(self) -> float:
        """The reactive trigger's threshold (KEDA `threshold` / HPA AverageValue)."""
        return self.capacity_per_replica * self.target_utilisation

    def replicas_for(self, load: float) -> int:
        """Replicas that serve `load` at the target utilisation, within [min, max]."""
        needed = math.ceil(load / self.target_per_replica - 1e-9) if load > 0 else 0
        return min(self.max_replicas, max(self.min_replicas, needed))


@dataclass(frozen=True)
class PolicyState:
    floor: int
    needs: tuple[tuple[float, int], ...] = ()  # (time, replicas needed) of fresh decisions in the scale-down window


@dataclass(frozen=True)
class PolicyInput:
    now_seconds: float
    forecast: Sequence[float]  # upper-quantile load per step over the lead time; empty if none
    forecast_seconds: float | None  # when that forecast was made
    observed_load: float | None = None


@dataclass(frozen=True)
class Decision:
    min_replicas: int
    target_per_replica: float
    stale: bool
    reason: str


def initial_state(config: PolicyConfig) -> PolicyState:
    return PolicyState(floor=config.min_replicas)


def decide(config: PolicyConfig, state: PolicyState, inputs: PolicyInput) -> tuple[Decision, PolicyState]:
    """One policy step. Stale, missing or non-finite forecasts decay the floor to the reactive min;
    below the break-even cold start the floor is the reactive min whatever the forecast says."""
    floor = min(max(state.floor, config.min_replicas), config.max_replicas)
    if config.reactive_only:
        reason = (f"cold start {config.cold_start_seconds:g} s is below the break-even "
                  f"{config.break_even_cold_start_seconds:g} s: reactive scaling alone")
        return _decision(config, config.min_replicas, stale=False, reason=reason), PolicyState(config.min_replicas)
    forecast = [float(x) for x in inputs.forecast]
    age = None if inputs.forecast_seconds is None else inputs.now_seconds - inputs.forecast_seconds
    usable = bool(forecast) and age is not None and age <= config.stale_after_seconds
    if not usable or not all(math.isfinite(x) for x in forecast):
        new_floor = max(config.min_replicas, floor - config.max_step_down)
        reason = "no fresh forecast: decaying to the reactive minimum"
        return _decision(config, new_floor, stale=True, reason=reason), PolicyState(new_floor)

    load = max(forecast)
    if inputs.observed_load is not None and math.isfinite(inputs.observed_load):
        load = max(load, inputs.observed_load)  # a forecast below what is already here is wrong
    wanted = config.replicas_for(load)
    now = inputs.now_seconds
    needs = tuple((t, n) for t, n in state.needs if 0 <= now - t < config.scale_down_window_seconds)
    needs += ((now, wanted),)
    held = max(n for _, n in needs)  # the highest need in the window: what the floor may fall to
    if wanted > floor:
        new_floor = min(wanted, floor + config.max_step_up)
        reason = f"forecast peak {load:.1f} needs {wanted}: raising the floor"
    elif held < floor * (1 - config.hysteresis):
        new_floor = max(held, floor - config.max_step_down)
        reason = f"forecast peak {load:.1f} needs {wanted}: lowering the floor"
    elif held > wanted:
        new_floor = floor
        reason = (f"forecast peak {load:.1f} needs {wanted}: holding {floor}, needed {held} within "
                  f"{config.scale_down_window_seconds:g} s")
    else:
        new_floor = floor
        reason = f"forecast peak {load:.1f} needs {wanted}: within hysteresis, holding"
    return _decision(config, new_floor, stale=False, reason=reason), PolicyState(new_floor, needs)


def _decision(config: PolicyConfig, floor: int, stale: bool, reason: str) -> Decision:
    return Decision(min_replicas=floor, target_per_replica=config.target_per_replica, stale=stale, reason=reason)
