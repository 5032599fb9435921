"""Autoscaling of the current revision: a KEDA ScaledObject, or an autoscaling/v2 HPA without KEDA.

Both share one HPA `behavior`: scale up fast, scale down slowly, because a GPU pod given back
takes minutes of weight loading to return.
"""
from __future__ import annotations

from typing import Any

from autoglm_operator.engines import PROFILES
from autoglm_operator.labels import deployment_name, metadata
from autoglm_operator.spec import Instance


def autoscaler(inst: Instance, revision: str, *, keda: bool) -> dict[str, Any] | None:
    """None when autoscaling is off: the Deployment then carries `spec.replicas` itself."""
    scaling = inst.spec.autoscaling
    if not scaling.enabled:
        return None
    if scaling.engine == "keda" and keda:
        return scaled_object(inst, revision)
    return horizontal_pod_autoscaler(inst, revision)


def load_query(inst: Instance, revision: str) -> str:
    """Total running plus waiting requests of the revision's pods (0 when no pod reports yet)."""
    if inst.spec.autoscaling.target.query:
        return inst.spec.autoscaling.target.query
    profile = PROFILES[inst.spec.runtime.engine]
    pods = f'namespace="{inst.namespace}",pod=~"{deployment_name(inst, revision)}-[a-z0-9]+-[a-z0-9]+"'
    return f"(sum({profile.running_metric}{{{pods}}}) or vector(0)) + (sum({profile.waiting_metric}{{{pods}}}) or vector(0))"


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


def scaled_object(inst: Instance, revision: str) -> dict[str, Any]:
    scaling = inst.spec.autoscaling
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(inst, inst.name, "autoscaling"),
        "spec": {
            "scaleTargetRef": _target_ref(inst, revision),
            "pollingInterval": scaling.polling_interval_seconds,
            "cooldownPeriod": scaling.cooldown_seconds,
            "minReplicaCount": scaling.min_replicas,
            "maxReplicaCount": scaling.max_replicas,
            # If Prometheus is unreachable, never shrink below what is running now.
            "fallback": {
                "failureThreshold": 3,
                "replicas": max(scaling.min_replicas, 1),
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
                        "query": load_query(inst, revision),
                        "threshold": f"{scaling.target.per_replica:g}",
                    },
                }
            ],
        },
    }


def horizontal_pod_autoscaler(inst: Instance, revision: str) -> dict[str, Any]:
    """Reads the engine's running-requests gauge through a custom metrics adapter (e.g. prometheus-adapter)."""
    scaling = inst.spec.autoscaling
    per_replica = scaling.target.per_replica
    average = str(int(per_replica)) if per_replica.is_integer() else f"{round(per_replica * 1000)}m"
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(inst, inst.name, "autoscaling"),
        "spec": {
            "scaleTargetRef": _target_ref(inst, revision),
            "minReplicas": scaling.min_replicas,
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
