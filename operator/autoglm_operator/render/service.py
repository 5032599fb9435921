"""The Service in front of one model.

With Istio the Service spans every revision and the VirtualService picks one by subset. Without
Istio nothing else can split traffic, so the Service selects only the serving revision and a new
revision gets traffic when the selector moves, once it is Ready.
"""
from __future__ import annotations

from typing import Any

from autoglm_operator.api.engines import PORT
from autoglm_operator.api.labels import REVISION_LABEL, metadata, pod_selector
from autoglm_operator.api.spec import Instance


def service(inst: Instance, revision: str | None) -> dict[str, Any]:
    """`revision` None selects every revision (Istio routes); otherwise only that revision."""
    selector = pod_selector(inst) if revision is None else {**pod_selector(inst), REVISION_LABEL: revision}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(inst, inst.name, "inference"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}],
        },
    }
