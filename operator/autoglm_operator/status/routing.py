"""What the routing objects the operator runs say about serving: the endpoint picker of an InferencePool.

With provider inference-pool the gateway asks the serving revision's pool's picker for every request,
so a picker with no available pod serves nothing (FailClose) or routes blind (FailOpen): the
resource is not Ready then, whatever its engine pods say (conditions.judge).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoglm_operator.status.readiness import revision_ready


def picker_problem(name: str, deployment: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """("EndpointPickerNotReady", why) while the rendered picker Deployment `name` is missing or not
    every wanted pod is Ready, else None. `why` carries the Deployment controller's ReplicaFailure
    condition when it has one (FailedCreate: a missing ServiceAccount, a quota): the cause a user
    must fix, which the pod counts alone do not say."""
    if deployment is None:
        return "EndpointPickerNotReady", f"endpoint picker Deployment {name} does not exist yet"
    if revision_ready(deployment):
        return None
    status = deployment.get("status") or {}
    counts = f"endpoint picker Deployment {name}: {int(status.get('readyReplicas') or 0)}/" \
             f"{int((deployment.get('spec') or {}).get('replicas', 1))} pods Ready"
    failure = next((c for c in status.get("conditions") or []
                    if c.get("type") == "ReplicaFailure" and c.get("status") == "True"), None)
    if failure:
        counts += f" ({failure.get('reason', '')}: {failure.get('message', '')})"
    return "EndpointPickerNotReady", counts
