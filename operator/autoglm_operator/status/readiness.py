"""What a revision's Deployment says about it: pods wanted and Ready, Ready as a whole, served before;
and which of its pods the scheduler cannot place.

Read by the status (conditions.py: replicas and Ready) and by the traffic decisions above it
(rollout.switch, rollout.plan), so it sits in the lower of the two layers.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def wanted_replicas(deployment: Mapping[str, Any]) -> int:
    """The API server defaults `spec.replicas` to 1, so a missing value means 1."""
    return int(deployment.get("spec", {}).get("replicas", 1))


def ready_replicas(deployment: Mapping[str, Any]) -> int:
    return int(deployment.get("status", {}).get("readyReplicas", 0))


def revision_ready(deployment: Mapping[str, Any] | None) -> bool:
    """The Deployment controller has seen the latest spec and every wanted pod is updated and Ready."""
    if deployment is None:
        return False
    status = deployment.get("status", {})
    wanted = wanted_replicas(deployment)
    return (
        status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 1)
        and status.get("updatedReplicas", 0) >= wanted
        and ready_replicas(deployment) >= wanted
    )


def has_served(deployment: Mapping[str, Any]) -> bool:
    """The Deployment controller saw every pod of this Deployment available once: its Progressing
    condition says NewReplicaSetAvailable, and keeps saying so when pods later turn NotReady (a
    node missing heartbeats, probes failing under load) until the next rollout of its pods."""
    return any(
        c.get("type") == "Progressing" and c.get("reason") == "NewReplicaSetAvailable"
        for c in deployment.get("status", {}).get("conditions", [])
    )


def serves_nothing(deployment: Mapping[str, Any] | None) -> bool:
    """Gone, scaled to zero, or never Ready (e.g. never schedulable): nobody to protect.

    A revision with no Ready pod *now* that has served before is not one of these: it is expected
    back, and giving up on it would prune the Deployment of the model that serves, for a new
    revision that may not start at all (held by a GPU quota, say)."""
    if deployment is None or wanted_replicas(deployment) == 0:
        return True
    return ready_replicas(deployment) == 0 and not has_served(deployment)


def unschedulable(pods: Iterable[Mapping[str, Any]]) -> tuple[str, str] | None:
    """The `Unschedulable` reason and message for the first pod (by name) the scheduler cannot place.

    One rule for the cloud revisions (status.conditions) and the edge groups (status.edge). Pods
    being deleted are passed over: their replacement is the one that has to fit.
    """
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        for cond in (pod.get("status") or {}).get("conditions", []):
            if cond["type"] == "PodScheduled" and cond["status"] == "False" and cond.get("reason") == "Unschedulable":
                return "Unschedulable", f"pod {pod['metadata']['name']} cannot be scheduled: {cond.get('message', '')}"
    return None


def autoscaler_problem(autoscalers: Iterable[Mapping[str, Any]]) -> tuple[str, str] | None:
    """("AutoscalerFailed", why) when the ScaledObject or HPA the operator rendered cannot scale, else None.

    Pods keep serving at their current count, so Ready stays True, but nothing follows the load:
    - KEDA ScaledObject: `Ready=False` (KEDA refused the spec: ScaledObjectCheckFailed; or its HPA
      cannot scale: HPAMetricsUnavailable) or `Fallback=True` (a scaler cannot reach its source:
      KEDA holds `fallback.replicas`). The operator renders a fallback, so a scaler that keeps
      failing shows as Fallback=True while Ready stays True (KEDA 2.20.1 RequestScale sets Ready=False
      "TriggerError" only without a fallback; seen in tests/e2e/operator/test_keda.py); conditions as
      in keda.sh docs and KEDA's api/v1alpha1 `Conditions` (Ready, Active, Fallback, Paused).
    - autoscaling/v2 HPA: `ScalingActive=False` except `ScalingDisabled` (the target scaled to 0 on
      purpose); `FailedGetExternalMetric` and the like mean the metric cannot be read.
    An autoscaler without conditions yet (just created) is no problem.
    """
    failing = []
    for obj in autoscalers:
        conditions = {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}
        name = f"{obj.get('kind')} {obj['metadata']['name']}"
        if obj.get("kind") == "ScaledObject":
            ready, fallback = conditions.get("Ready", {}), conditions.get("Fallback", {})
            if ready.get("status") == "False":
                failing.append(f"{name} not Ready ({ready.get('reason', '')}): {ready.get('message', '')}".rstrip(": "))
            elif fallback.get("status") == "True":
                failing.append(f"{name} uses its fallback replicas ({fallback.get('reason', '')}): "
                               f"{fallback.get('message', '')}".rstrip(": "))
        elif obj.get("kind") == "HorizontalPodAutoscaler":
            active = conditions.get("ScalingActive", {})
            if active.get("status") == "False" and active.get("reason") != "ScalingDisabled":
                failing.append(f"{name} cannot scale ({active.get('reason', '')}): {active.get('message', '')}".rstrip(": "))
    return ("AutoscalerFailed", "; ".join(failing)) if failing else None
