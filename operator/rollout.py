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


def serving_revision(current: str | None, desired: str, deployments: Mapping[str, Mapping[str, Any]]) -> str:
    """The revision that should take traffic now.

    `current` is the revision recorded as serving in the status (None for a new resource) and
    `deployments` maps each revision to its live Deployment. The old revision keeps traffic while
    the new one starts, unless it serves nothing anyway (gone, or no Ready pod, e.g. because it
    could never be scheduled): then waiting would protect nobody.
    """
    if current is None or current == desired:
        return desired
    old = deployments.get(current)
    if old is None or ready_replicas(old) == 0:
        return desired
    return desired if revision_ready(deployments.get(desired)) else current


def revisions_to_keep(serving: str, desired: str) -> set[str]:
    """Every other revision's Deployment is retired."""
    return {serving, desired}
