"""The demo's stand-in for KEDA and the HPA it drives (the local environment runs no KEDA controller).

KEDA hands the trigger's value (the load query) to an HPA whose AverageValue target is
`perReplica`, so the HPA wants ceil(load / perReplica) replicas, never fewer than the
ScaledObject's minReplicaCount (the predictive floor, when the predictor is on) and never more
than maxReplicaCount. Scale-up has no stabilisation window (KEDA's default): it happens at once.
Scale-down follows the HPA's stabilisation rule: the replica count is the highest recommendation
of the last `window_seconds`, so it falls only once every recent recommendation was lower.
The HPA's 10% tolerance is left out (it would only make the reactive fleet later).

`decide` is pure; the demo calls it once per second for each deployment with the same settings,
so the predictive and the reactive fleet differ only in the minReplicaCount the operator renders.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Scaler:
    """One ScaledObject's settings (load and per_replica share one unit: requests in flight)."""

    per_replica: float
    max_replicas: int
    window_seconds: float  # spec.autoscaling.scaleDownStabilizationSeconds

    def __post_init__(self) -> None:
        if not (math.isfinite(self.per_replica) and self.per_replica > 0):
            raise ValueError(f"per_replica must be > 0, got {self.per_replica}")
        if self.max_replicas < 1 or self.window_seconds < 0:
            raise ValueError(f"need max_replicas >= 1 and window_seconds >= 0, got {self.max_replicas}, {self.window_seconds}")


@dataclass(frozen=True)
class ScalerState:
    replicas: int
    recommendations: tuple[tuple[float, int], ...] = ()  # (seconds, replicas wanted) inside the window


def decide(scaler: Scaler, state: ScalerState, now: float, load: float, min_replicas: int) -> ScalerState:
    """The replica count after one evaluation at `now` (seconds) of `load` with the floor `min_replicas`."""
    wanted = min(scaler.max_replicas, max(min_replicas, math.ceil(load / scaler.per_replica - 1e-9) if load > 0 else 0))
    recent = tuple((t, r) for t, r in state.recommendations if now - t < scaler.window_seconds) + ((now, wanted),)
    if wanted >= state.replicas:
        return ScalerState(wanted, recent)
    return ScalerState(min(state.replicas, max(r for _, r in recent)), recent)
