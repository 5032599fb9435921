"""Names and labels shared by every rendered object.

The apply layer prunes by `app.kubernetes.io/managed-by` plus `autoglm.io/instance`, so every
object the operator renders must carry both; `metadata()` is the only way objects get them.
"""
from __future__ import annotations

from typing import Any

from autoglm_operator.spec import Instance

MANAGED_BY = "autoglm-operator"
INSTANCE_LABEL = "autoglm.io/instance"
REVISION_LABEL = "autoglm.io/revision"


def instance_labels(inst: Instance) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "autoglm",
        "app.kubernetes.io/instance": inst.name,
        "app.kubernetes.io/part-of": "autoglm",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        INSTANCE_LABEL: inst.name,
    }


def pod_selector(inst: Instance) -> dict[str, str]:
    """Selects the pods of every revision; Istio subsets split them by revision."""
    return {INSTANCE_LABEL: inst.name}


def selector_string(inst: Instance) -> str:
    """The `status.selector` the scale subresource publishes."""
    return ",".join(f"{k}={v}" for k, v in pod_selector(inst).items())


def deployment_name(inst: Instance, revision: str) -> str:
    return f"{inst.name}-{revision}"


def service_host(inst: Instance) -> str:
    return f"{inst.name}.{inst.namespace}.svc.cluster.local"


def metadata(inst: Instance, name: str, component: str, extra_labels: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {**instance_labels(inst), "app.kubernetes.io/component": component, **(extra_labels or {})}
    return {"name": name, "namespace": inst.namespace, "labels": labels}
