"""The PodDisruptionBudget: node drains take GPU pods one at a time, since each takes minutes to replace."""
from __future__ import annotations

from typing import Any

from autoglm_operator.api.labels import metadata, pod_selector
from autoglm_operator.api.spec import Instance


def pod_disruption_budget(inst: Instance) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(inst, inst.name, "inference"),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": pod_selector(inst)},
            # A pod stuck loading weights is not serving anyway: let drains evict it.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
