"""The `AutoGLMDeployment` status, declared in the CRD so the operator's writes are not pruned.

Every field is optional: the operator fills them in over time, and kstatus, Argo CD and
`kubectl wait --for=condition=Ready` read `observedGeneration` and `conditions`.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Literal

from autoglm_operator.api.schema import spec_field


class Phase(enum.StrEnum):
    """`status.canary.phase`: where a canary rollout is (the machine in rollout/canary.py, docs/rollouts.md).

    A `StrEnum`, so a member equals (and hashes like) its string, `Phase.PAUSED == "Paused"`: the
    status keeps the strings it always had and code reading the raw status dict compares alike.
    """

    STARTING = "Starting"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"


@dataclasses.dataclass(frozen=True)
class Condition:
    """A standard Kubernetes condition (Ready, Progressing, Degraded)."""

    type: str = spec_field("Condition type: Ready, Progressing or Degraded.")
    status: Literal["True", "False", "Unknown"] = spec_field("Whether the condition holds.")
    reason: str | None = spec_field("CamelCase reason, stable for automation.", default=None)
    message: str | None = spec_field("Human-readable detail.", default=None)
    last_transition_time: str | None = spec_field("When status last changed.", default=None, format="date-time")
    observed_generation: int | None = spec_field("metadata.generation this condition describes.", default=None, minimum=0)


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One analysis check as last measured."""

    name: str = spec_field("Check name: successRate, ttftP95, queueDepth or a user check.")
    result: Literal["Pass", "Fail", "NoData"] = spec_field("Outcome.")
    value: float | None = spec_field("Measured on the canary.", default=None)
    stable: float | None = spec_field("Measured on the stable revision, for relative checks.", default=None)
    message: str | None = spec_field("Bound that failed, if any.", default=None)


@dataclasses.dataclass(frozen=True)
class RolloutRecord:
    """How one past rollout ended."""

    revision: str = spec_field("Canary revision.")
    result: str = spec_field("Promoted, RolledBack, Aborted or Superseded.")
    finished_at: str | None = spec_field("When it ended.", default=None, format="date-time")
    message: str | None = spec_field("Why.", default=None)


@dataclasses.dataclass(frozen=True)
class Retiring:
    """A revision that no longer takes traffic: deleted once Prometheus reports no request in flight on it, or at
    the end of its drain budget (rollout/canary.py `retirement`)."""

    revision: str = spec_field("Revision whose Deployment is retired.")
    at: str = spec_field("When its Deployment is deleted at the latest (spec.rollout.drainDelaySeconds after since).",
                         format="date-time")
    since: str | None = spec_field("When its traffic left it.", default=None, format="date-time")
    in_flight: float | None = spec_field(
        "Requests running or queued on it at the last reading (Prometheus); absent: none yet.", default=None, minimum=0)


@dataclasses.dataclass(frozen=True)
class Canary:
    """Progress of a canary rollout; re-read every reconcile so a restarted operator resumes."""

    revision: str | None = spec_field("Revision under test.", default=None)
    step: int | None = spec_field("Index of the current rollout step.", default=None, minimum=0)
    weight: int | None = spec_field("Percent of live traffic sent to the canary.", default=None, minimum=0, maximum=100)
    mirror: int | None = spec_field("Percent of traffic mirrored to the canary.", default=None, minimum=0, maximum=100)
    # Written from phase, weight and mirror (rollout/canary.py `CanaryState.to_status`), never read back: the
    # printer column's text, since a column's jsonPath cannot pick weight or mirror by itself.
    traffic: str | None = spec_field(
        "What the canary gets, for kubectl get: '20%' (live traffic), 'mirror 20%' during a mirror step, "
        "or the finished rollout's phase (Promoted, RolledBack, Aborted).", default=None)
    step_started_at: str | None = spec_field("When the current step started.", default=None, format="date-time")
    failed_checks: int | None = spec_field("Failed analysis checks so far.", default=None, minimum=0)
    message: str | None = spec_field("Last analysis result.", default=None)
    # A `Phase` value; a plain string here so the CRD stays without an enum (rollout/canary.py `CanaryState` reads it).
    phase: str | None = spec_field(
        "Starting, Progressing, Paused, Promoted, RolledBack or Aborted (see docs/rollouts.md).", default=None
    )
    stable: str | None = spec_field("Revision the canary is compared with and falls back to.", default=None)
    started_at: str | None = spec_field("When the canary Deployment was started.", default=None, format="date-time")
    paused: bool | None = spec_field("Held by spec.rollout.paused.", default=None)
    no_data_intervals: int | None = spec_field("Consecutive analyses without data.", default=None, minimum=0)
    analysis: list[CheckResult] | None = spec_field("Last analysis, per check.", default=None)
    last_action: str | None = spec_field(
        "The autoglm.io/rollout-action annotation value last consumed (action:nonce).", default=None
    )
    retiring: list[Retiring] | None = spec_field(
        "Revisions that lost their traffic, deleted once drained or when their drain budget ends.", default=None)
    history: list[RolloutRecord] | None = spec_field("The last rollouts, newest first.", default=None)


@dataclasses.dataclass(frozen=True)
class Forecast:
    """The predictor's latest forecast for this deployment."""

    horizon_seconds: int | None = spec_field("How far ahead the forecast looks.", default=None, minimum=0)
    predicted: float | None = spec_field("Predicted load at the horizon (upper quantile).", default=None)
    recommended_min_replicas: int | None = spec_field("Replica floor derived from the forecast.", default=None, minimum=0)
    updated_at: str | None = spec_field("When the forecast was made.", default=None, format="date-time")
    error: str | None = spec_field("Why no fresh forecast is available, if so.", default=None)
    forecaster: str | None = spec_field("Which forecaster answered: lstm, linear-ar or persistence.", default=None)
    calibration: str | None = spec_field(
        "How the forecaster's upper quantile was calibrated online, and the miss rate it has seen.", default=None)


@dataclasses.dataclass(frozen=True)
class AutoscalingStatus:
    """The autoscaler's minimum the operator applies, and the forecast behind it while one is used."""

    min_replicas: int | None = spec_field(
        "Minimum replicas in effect: autoscaling.minReplicas, raised to the forecast's floor while one is used.",
        default=None, minimum=0,
    )
    forecast: Literal["Used", "Stale", "Missing", "Disabled"] | None = spec_field(
        "Whether status.forecast sets the floor: Used (fresh), Stale (older than the staleness window, or "
        "unreadable), Missing, or Disabled (autoscaling.predictive.enabled is false).",
        default=None,
    )
    predicted: float | None = spec_field(
        "Forecast load behind the floor in effect (status.forecast.predicted); absent unless the forecast is Used.",
        default=None,
    )


@dataclasses.dataclass(frozen=True)
class EdgeGroupStatus:
    """One edge group of spec.edge as last observed."""

    name: str = spec_field("Edge group name.")
    desired: int | None = spec_field("Pods wanted in the group.", default=None, minimum=0)
    ready: int | None = spec_field("Ready pods in the group.", default=None, minimum=0)
    revision: str | None = spec_field("Revision the group's pods run (it follows the cloud once that serves).", default=None)
    reason: str | None = spec_field("Why the group cannot be placed: NoMatchingEdgeNodes, NoEdgeGpu or Unschedulable.",
                                    default=None)
    message: str | None = spec_field("The last placement error, in words.", default=None)


@dataclasses.dataclass(frozen=True)
class Status:
    """Observed state of one served model."""

    observed_generation: int | None = spec_field("metadata.generation the status describes.", default=None, minimum=0)
    phase: str | None = spec_field("Short summary: Pending, Ready, Progressing, Paused or Degraded.", default=None)
    conditions: list[Condition] | None = spec_field("Ready, Progressing and Degraded.", default=None, map_key="type")
    replicas: int | None = spec_field("Pods of the current revision (scale subresource).", default=None, minimum=0)
    ready_replicas: int | None = spec_field("Ready pods of the current revision.", default=None, minimum=0)
    current_revision: str | None = spec_field("Revision hash serving stable traffic.", default=None)
    selector: str | None = spec_field("Label selector of the pods (scale subresource).", default=None)
    cold_start_seconds: dict[str, float] | None = spec_field(
        "Measured pod creation to Ready, per revision.", default=None
    )
    canary: Canary | None = spec_field("Canary rollout progress.", default=None)
    forecast: Forecast | None = spec_field("Predictive autoscaling forecast (written by the predictor).", default=None)
    autoscaling: AutoscalingStatus | None = spec_field(
        "The autoscaler's minimum in effect and whether the forecast sets it; absent while autoscaling is off.", default=None
    )
    edge: list[EdgeGroupStatus] | None = spec_field("Per edge group of spec.edge.", default=None, map_key="name")
