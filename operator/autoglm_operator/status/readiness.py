"""What a revision's Deployment says about it: pods wanted and Ready, Ready as a whole, served before.

Read by the status (conditions.py: replicas and Ready) and by the traffic decisions above it
(rollout.switch, rollout.plan), so it sits in the lower of the two layers.
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
