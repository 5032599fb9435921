"""Which revision takes traffic: the small decision a canary state machine will later replace.

Traffic moves to a new revision only once its Deployment is Ready, so users never wait for weights
to load; then the old revision is retired (pruned), so the model is never loaded twice for long.
"""
from __future__ import annotations

from collections.abc import Mapping
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


def serving_revision(current: str | None, desired: str, deployments: Mapping[str, Mapping[str, Any]]) -> str:
    """The revision that should take traffic now.

    `current` is the revision recorded as serving in the status (None for a new resource) and
    `deployments` maps each revision to its live Deployment. The old revision keeps traffic while
    the new one starts, unless it serves nothing anyway (`serves_nothing`): then waiting would
    protect nobody.
    """
    if current is None or current == desired or serves_nothing(deployments.get(current)):
        return desired
    return desired if revision_ready(deployments.get(desired)) else current


def revisions_to_keep(serving: str, desired: str) -> set[str]:
    """Every other revision's Deployment is retired."""
    return {serving, desired}
