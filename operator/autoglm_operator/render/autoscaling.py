"""Autoscaling of the current revision: a KEDA ScaledObject, or an autoscaling/v2 HPA without KEDA.

Both share one HPA `behavior`: scale up fast, scale down slowly, because a GPU pod given back
takes minutes of weight loading to return.

Predictive floor (spec.autoscaling.predictive): the predictor writes only `status.forecast`; the
minimum rendered here is max(minReplicas, min(recommendedMinReplicas, maxFloor or maxReplicas))
while the forecast is fresh, and plain minReplicas otherwise (disabled, missing, stale or
unreadable forecast). The operator is the only writer of the ScaledObject / HPA, and reports the
minimum in effect in status.autoscaling (`autoscaling_status`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from autoglm_operator.api.engines import PROFILES
from autoglm_operator.api.forecast import clamp_floor, forecast_floor
from autoglm_operator.api.labels import deployment_name, metadata
from autoglm_operator.api.queries import default_load_query
from autoglm_operator.api.spec import Instance


def autoscaler(
    inst: Instance, revision: str, *, keda: bool, forecast: Mapping[str, Any] | None = None, now: datetime | None = None
) -> dict[str, Any] | None:
    """None when autoscaling is off: the Deployment then carries `spec.replicas` itself.

    `forecast` is the resource's `status.forecast` and `now` the time it is judged at (both needed
    for the predictive floor; without them the floor is the reactive minimum).
    """
    scaling = inst.spec.autoscaling
    if not scaling.enabled:
        return None
    floor = min_replicas(inst, forecast, now)
    if scaling.engine == "keda" and keda:
        return scaled_object(inst, revision, floor)
    return horizontal_pod_autoscaler(inst, revision, floor)


def min_replicas(inst: Instance, forecast: Mapping[str, Any] | None, now: datetime | None) -> int:
    """The autoscaler's minimum: the reactive one, raised to a fresh forecast's floor when predictive is on."""
    scaling = inst.spec.autoscaling
    if not scaling.predictive.enabled or now is None:
        return scaling.min_replicas
    floor = forecast_floor(forecast, now)
    if floor is None:
        return scaling.min_replicas
    return clamp_floor(floor, min_replicas=scaling.min_replicas, max_replicas=scaling.max_replicas,
                       max_floor=scaling.predictive.max_floor)


def autoscaling_status(inst: Instance, forecast: Mapping[str, Any] | None, now: datetime) -> dict[str, Any] | None:
    """status.autoscaling: the minimum rendered into the autoscaler at `now` and whether the forecast
    sets it (Used, Stale, Missing, Disabled), with the forecast's `predicted` load only while Used, so
    the Predicted printer column never shows a forecast the operator no longer follows.
    None while autoscaling is off."""
    scaling = inst.spec.autoscaling
    if not scaling.enabled:
        return None
    if not scaling.predictive.enabled:
        state = "Disabled"
    elif not isinstance(forecast, Mapping) or not forecast:
        state = "Missing"
    else:
        state = "Used" if forecast_floor(forecast, now) is not None else "Stale"
    status: dict[str, Any] = {"minReplicas": min_replicas(inst, forecast, now), "forecast": state}
    predicted = forecast.get("predicted") if state == "Used" else None  # type: ignore[union-attr]
    if isinstance(predicted, (int, float)) and not isinstance(predicted, bool) and math.isfinite(predicted):
        status["predicted"] = float(predicted)
    return status


def load_query(inst: Instance) -> str:
    """The user's query, else running plus waiting requests of all the deployment's pods (the
    predictor forecasts the same query, so threshold and floor share one unit)."""
    if inst.spec.autoscaling.target.query:
        return inst.spec.autoscaling.target.query
    return default_load_query(inst.namespace, inst.name, inst.spec.runtime.engine)


def hpa_behavior(inst: Instance) -> dict[str, Any]:
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 60},
                {"type": "Percent", "value": 100, "periodSeconds": 60},
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": inst.spec.autoscaling.scale_down_stabilization_seconds,
            "selectPolicy": "Min",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
        },
    }


def _target_ref(inst: Instance, revision: str) -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name(inst, revision)}


def scaled_object(inst: Instance, revision: str, floor: int | None = None) -> dict[str, Any]:
    scaling = inst.spec.autoscaling
    floor = scaling.min_replicas if floor is None else floor
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(inst, inst.name, "autoscaling"),
        "spec": {
            "scaleTargetRef": _target_ref(inst, revision),
            "pollingInterval": scaling.polling_interval_seconds,
            "cooldownPeriod": scaling.cooldown_seconds,
            "minReplicaCount": floor,
            "maxReplicaCount": scaling.max_replicas,
            # If Prometheus is unreachable, never shrink below what is running now.
            "fallback": {
                "failureThreshold": 3,
                "replicas": max(floor, 1),
                "behavior": "currentReplicasIfHigher",
            },
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": hpa_behavior(inst)}},
            "triggers": [
                {
                    "type": "prometheus",
                    "name": "load",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": scaling.prometheus_address,
                        "query": load_query(inst),
                        "threshold": f"{scaling.target.per_replica:g}",
                    },
                }
            ],
        },
    }


def horizontal_pod_autoscaler(inst: Instance, revision: str, floor: int | None = None) -> dict[str, Any]:
    """Reads the engine's running-requests gauge through a custom metrics adapter (e.g. prometheus-adapter)."""
    scaling = inst.spec.autoscaling
    floor = scaling.min_replicas if floor is None else floor
    per_replica = scaling.target.per_replica
    average = str(int(per_replica)) if per_replica.is_integer() else f"{round(per_replica * 1000)}m"
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(inst, inst.name, "autoscaling"),
        "spec": {
            "scaleTargetRef": _target_ref(inst, revision),
            "minReplicas": floor,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": PROFILES[inst.spec.runtime.engine].running_metric},
                        "target": {"type": "AverageValue", "averageValue": average},
                    },
                }
            ],
            "behavior": hpa_behavior(inst),
        },
    }
