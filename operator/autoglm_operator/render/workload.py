"""The GPU Deployment of one revision, named `<name>-<revision>`.

A revision's Deployment never changes its pods after creation: a new model or engine setting
is a new revision with its own Deployment, so a canary never reloads the stable model.
"""
from __future__ import annotations

import math
from typing import Any

from autoglm_operator.api.engines import MODEL_DIR, PORT, PROFILES, Launch
from autoglm_operator.api.labels import REVISION_LABEL, deployment_name, metadata, pod_selector
from autoglm_operator.api.spec import Instance

CACHE_DIR = "/cache"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
EDGE_NODE_LABEL = "node-role.kubernetes.io/edge"


def deployment(inst: Instance, revision: str) -> dict[str, Any]:
    spec = inst.spec
    labels = {**pod_selector(inst), REVISION_LABEL: revision}
    meta = metadata(inst, deployment_name(inst, revision), "inference", {REVISION_LABEL: revision})
    body: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "revisionHistoryLimit": 2,
        # Weights load for minutes; a rollout is only stuck once the startup budget is spent.
        "progressDeadlineSeconds": spec.runtime.startup_timeout_seconds + 300,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {
            "metadata": {
                "labels": dict(meta["labels"]),
                "annotations": {
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": str(PORT),
                    "prometheus.io/path": "/metrics",
                },
            },
            "spec": pod_spec(inst),
        },
    }
    if not spec.autoscaling.enabled:
        # With autoscaling on, the autoscaler owns `replicas`; setting it here would fight it.
        body = {"replicas": spec.replicas, **body}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": body}


def pod_spec(inst: Instance) -> dict[str, Any]:
    runtime = inst.spec.runtime
    profile = PROFILES[runtime.engine]
    sources = _pvc_sources(inst)
    security: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if profile.run_as_non_root:
        security.update(runAsNonRoot=True, runAsUser=1000, runAsGroup=1000, fsGroup=1000)
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": runtime.drain_seconds + 30,
        "securityContext": security,
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": _node_terms(inst)}},
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [_container(inst, sources)],
        "volumes": [
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": inst.spec.resources.shm_size}},
            {"name": "cache", "emptyDir": {}},
            *(
                {"name": volume, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
                for claim, volume in sources.items()
            ),
        ],
    }


def _node_terms(inst: Instance) -> dict[str, Any]:
    # Cloud replicas stay off edge nodes: edge sites get their own placement.
    expressions: list[dict[str, Any]] = [{"key": EDGE_NODE_LABEL, "operator": "DoesNotExist"}]
    product = inst.spec.resources.gpu.product
    if product:
        expressions.append({"key": GPU_PRODUCT_LABEL, "operator": "In", "values": [product]})
    return {"nodeSelectorTerms": [{"matchExpressions": expressions}]}


def _pvc_sources(inst: Instance) -> dict[str, str]:
    """Claim name -> volume name, for the model and adapter weights, in first-use order."""
    model = inst.spec.model
    uris = [model.source] if model.source else []
    uris += [adapter.source for adapter in model.lora_adapters]
    claims = dict.fromkeys(_split_pvc(uri)[0] for uri in uris)
    return {claim: f"weights-{i}" for i, claim in enumerate(claims)}


def _split_pvc(uri: str) -> tuple[str, str]:
    claim, _, path = uri.removeprefix("pvc://").partition("/")
    return claim, path


def _mounted_path(uri: str) -> str:
    claim, path = _split_pvc(uri)
    return f"{MODEL_DIR}/{claim}/{path}".rstrip("/")


def _launch(inst: Instance) -> Launch:
    model = inst.spec.model
    return Launch(
        model_path=_mounted_path(model.source) if model.source else model.name,
        served_name=model.name,
        revision=None if model.source else model.revision,
        adapters=[(adapter.name, _mounted_path(adapter.source)) for adapter in model.lora_adapters],
    )


def _http_get(path: str) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}}


def _container(inst: Instance, sources: dict[str, str]) -> dict[str, Any]:
    spec = inst.spec
    runtime = spec.runtime
    profile = PROFILES[runtime.engine]
    limits: dict[str, str] = {GPU_RESOURCE: str(spec.resources.gpu.count)}
    if spec.resources.cpu:
        limits["cpu"] = spec.resources.cpu
    if spec.resources.memory:
        limits["memory"] = spec.resources.memory
    container: dict[str, Any] = {
        "name": "engine",
        "image": runtime.image or profile.image,
        "command": profile.command,
        "args": profile.args(_launch(inst), spec.model, runtime) + runtime.args,
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": [
            {"name": "HOME", "value": CACHE_DIR},
            {"name": "HF_HOME", "value": f"{CACHE_DIR}/huggingface"},
            *({"name": e.name, "value": e.value} for e in runtime.env),
        ],
        "resources": {"requests": dict(limits), "limits": limits},
        "volumeMounts": [
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "cache", "mountPath": CACHE_DIR},
            *({"name": volume, "mountPath": f"{MODEL_DIR}/{claim}", "readOnly": True} for claim, volume in sources.items()),
        ],
        # Sized for weight loading: the pod gets the whole startup budget before liveness applies.
        "startupProbe": {
            **_http_get(profile.health_path),
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": math.ceil(runtime.startup_timeout_seconds / 10),
        },
        "readinessProbe": {**_http_get(profile.health_path), "periodSeconds": 5, "timeoutSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**_http_get(profile.health_path), "periodSeconds": 15, "timeoutSeconds": 10, "failureThreshold": 4},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    if runtime.drain_seconds:
        # Keep serving in-flight streams while endpoints and Istio stop sending new requests.
        container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(runtime.drain_seconds)]}}}
    return container
