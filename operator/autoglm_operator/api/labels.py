"""Names and labels shared by every rendered object.

The apply layer prunes by `app.kubernetes.io/managed-by` plus `autoglm.io/instance`, so every
object the operator renders must carry both; `metadata()` is the only way objects get them.
"""
from __future__ import annotations

import hashlib
from typing import Any

from autoglm_operator.api.spec import Instance

MANAGED_BY = "autoglm-operator"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
INSTANCE_LABEL = "autoglm.io/instance"
REVISION_LABEL = "autoglm.io/revision"


def instance_labels(inst: Instance) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "autoglm",
        "app.kubernetes.io/instance": inst.name,
        "app.kubernetes.io/part-of": "autoglm",
        MANAGED_BY_LABEL: MANAGED_BY,
        INSTANCE_LABEL: inst.name,
    }


def pod_selector(inst: Instance) -> dict[str, str]:
    """Selects the pods of every revision; Istio subsets split them by revision."""
    return {INSTANCE_LABEL: inst.name}


def selector_string(inst: Instance, revision: str) -> str:
    """The `status.selector` the scale subresource publishes: the pods of the serving revision."""
    return ",".join(f"{k}={v}" for k, v in {**pod_selector(inst), REVISION_LABEL: revision}.items())


def children_selector(name: str) -> str:
    """Every object the operator made for the resource `name` (what pruning looks at)."""
    return f"{MANAGED_BY_LABEL}={MANAGED_BY},{INSTANCE_LABEL}={name}"


LABEL_VALUE_MAX = 63  # also a DNS label's limit: the strictest place a derived name ends up


def bounded_name(*parts: str, limit: int = LABEL_VALUE_MAX) -> str:
    """`parts` joined by '-', or, when that is longer than `limit`, its start plus an 8-hex hash of
    all the parts: stable (the same inputs give the same name at every converge), distinct for
    different inputs, and still a DNS label and a label value when the parts are DNS labels.
    Names that fit are unchanged, so objects made before this rule keep their names."""
    joined = "-".join(parts)
    if len(joined) <= limit:
        return joined
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()[:8]
    return f"{joined[:limit - len(digest) - 1].rstrip('-.')}-{digest}"


def deployment_name(inst: Instance, revision: str) -> str:
    return f"{inst.name}-{revision}"


def service_host(inst: Instance) -> str:
    return f"{inst.name}.{inst.namespace}.svc.cluster.local"


def metadata(inst: Instance, name: str, component: str, extra_labels: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {**instance_labels(inst), "app.kubernetes.io/component": component, **(extra_labels or {})}
    return {"name": name, "namespace": inst.namespace, "labels": labels}
