"""Which AutoGLMDeployments take part in the pipeline, read tolerantly from their objects.

The CR schema grows under us (spec.autoscaling.predictive is newer than the CRD some clusters
run), so every field is optional here: absent predictive settings mean "disabled", absent
numbers take the operator's defaults (read from its spec classes, so the two cannot drift), and
one malformed object is skipped, not fatal.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from autoglm_operator.api.forecast import clamp_floor
from autoglm_operator.api.queries import default_load_query
from autoglm_operator.api.spec import GROUP, PLURAL, VERSION, Autoscaling, Runtime

# The spec's defaults, for fields an object leaves out.
_SCALING, _RUNTIME = Autoscaling(), Runtime()
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """One predictive deployment: what to query, and what its floor may be."""

    namespace: str
    name: str
    engine: str
    load_query: str
    per_replica: float
    min_replicas: int
    highest_floor: int  # maxReplicas, or maxFloor when lower: the most the operator would render
    quantile: float
    horizon_seconds: int | None  # None: derive from the measured cold start (lead_time.py)
    cold_start_seconds: float | None
    polling_interval_seconds: int
    forecast: dict[str, Any] | None  # status.forecast as last written (by us)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def target_from(obj: dict[str, Any]) -> Target | None:
    """None when predictive autoscaling is off (or autoscaling itself is)."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    scaling = spec.get("autoscaling") or {}
    predictive = scaling.get("predictive") or {}
    if not (scaling.get("enabled") and predictive.get("enabled")):
        return None
    namespace, name = meta["namespace"], meta["name"]
    engine = (spec.get("runtime") or {}).get("engine") or _RUNTIME.engine
    target = scaling.get("target") or {}
    min_replicas = int(scaling.get("minReplicas", _SCALING.min_replicas))
    max_replicas = int(scaling.get("maxReplicas", _SCALING.max_replicas))
    max_floor = predictive.get("maxFloor")
    # The highest floor the operator would render is the highest one worth deciding.
    highest_floor = max_replicas if max_floor is None else clamp_floor(
        max_replicas, min_replicas=min_replicas, max_replicas=max_replicas, max_floor=int(max_floor))
    cold = (status.get("coldStartSeconds") or {}).get(status.get("currentRevision") or "")
    horizon = predictive.get("horizonSeconds")
    per_replica = float(target.get("perReplica", _SCALING.target.per_replica))
    quantile = float(predictive.get("quantile", _SCALING.predictive.quantile))
    if not (math.isfinite(per_replica) and per_replica > 0 and 0.5 <= quantile <= 0.99):
        raise ValueError(f"perReplica {per_replica} or quantile {quantile} out of range")
    return Target(
        namespace=namespace, name=name, engine=engine,
        load_query=target.get("query") or default_load_query(namespace, name, engine),
        per_replica=per_replica, min_replicas=min_replicas, highest_floor=highest_floor, quantile=quantile,
        horizon_seconds=None if horizon is None else int(horizon),
        cold_start_seconds=None if cold is None else float(cold),
        polling_interval_seconds=int(scaling.get("pollingIntervalSeconds", _SCALING.polling_interval_seconds)),
        forecast=status.get("forecast"),
    )


def targets_from(objects: list[dict[str, Any]]) -> dict[str, Target]:
    targets = {}
    for obj in objects:
        try:
            target = target_from(obj)
        except (KeyError, TypeError, ValueError) as error:
            meta = obj.get("metadata") or {}
            log.warning("skipping %s/%s: unusable autoscaling settings (%s)", meta.get("namespace"), meta.get("name"), error)
            continue
        if target is not None:
            targets[target.key] = target
    return targets


def list_targets(api: Any) -> dict[str, Target]:
    """All predictive deployments in the cluster (one LIST; callers refresh on a timer)."""
    listing = api.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    return targets_from(listing.get("items") or [])
