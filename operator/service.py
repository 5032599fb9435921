"""The Service in front of every revision of one model; Istio subsets split it by revision."""
from __future__ import annotations

from typing import Any

from autoglm_operator.engines import PORT
from autoglm_operator.labels import metadata, pod_selector
from autoglm_operator.spec import Instance


def service(inst: Instance) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(inst, inst.name, "inference"),
        "spec": {
            "type": "ClusterIP",
            "selector": pod_selector(inst),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}],
        },
    }
