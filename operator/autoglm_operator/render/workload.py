"""The GPU Deployment of one revision, named `<name>-<revision>`.

A revision's Deployment never changes its pods after creation: a new model or engine setting
is a new revision with its own Deployment, so a canary never reloads the stable model.

User entries join the lists the operator fills by one rule: the operator's entries first, the
user's after them, and a user key the operator owns (env HOME/HF_HOME, volumes dshm/cache/weights-*,
mounts under /dev/shm, /cache, /models, node labels it selects on) is refused by validation
(api.spec), so a rendered keyed list never holds a key twice. Quantities are rendered in the
API server's canonical form (api.quantity), so what is applied is what the server stores.
"""
from __future__ import annotations

import ast
import math
from pathlib import Path
from typing import Any

from autoglm_operator.api.engines import MODEL_DIR, PORT, PROFILES, Launch
from autoglm_operator.api.labels import REVISION_LABEL, deployment_name, metadata, pod_selector
from autoglm_operator.api.quantity import canonical_quantity
from autoglm_operator.api.schema import resource_form
from autoglm_operator.api.spec import (
    CACHE_DIR,
    EDGE_NODE_LABEL,
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    SHM_DIR,
    WEIGHTS_VOLUME_PREFIX,
    EnvFrom,
    EnvVar,
    Instance,
    Toleration,
    Volume,
    VolumeMount,
)
from autoglm_operator.render.drain_hook import SETTLE_SECONDS

__all__ = ["CACHE_DIR", "EDGE_NODE_LABEL", "GPU_PRODUCT_LABEL", "GPU_RESOURCE", "deployment", "drain_hook",
           "env_entry", "pod_spec", "termination_grace_seconds"]

# Seconds kubelet leaves the engine between SIGTERM (the hook's end) and SIGKILL, to stop its workers.
STOP_SECONDS = 30


def _program(source: str) -> str:
    """`source` (a Python module) as compact text that runs the same: ast.unparse of its syntax tree
    with the module's, classes' and functions' docstrings removed (ast.unparse drops comments).

    Why: the preStop hook's program is part of every engine pod template, and a template change
    rolls every engine pod (a model reload each) on the next operator upgrade; so only a change of
    code, not of a comment or a docstring, may change it. The text is deterministic for one Python
    version (the operator image's, hack/images/Dockerfile); tests/unit/operator/render pins it."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        documented = isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        if documented and ast.get_docstring(node, clean=False) is not None:
            node.body = node.body[1:] or [ast.Pass()]
    return ast.unparse(tree)


# The preStop hook's program: render/drain_hook.py's code without its docstrings and comments.
DRAIN_HOOK_SOURCE = _program(Path(__file__).with_name("drain_hook.py").read_text())


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
    scheduling = inst.spec.scheduling
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": termination_grace_seconds(inst),
        "securityContext": security,
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": _node_terms(inst)}},
        "tolerations": [
            {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
            *(_toleration(t) for t in scheduling.tolerations),
        ],
        "containers": [_container(inst, sources)],
        "volumes": [
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": canonical_quantity(inst.spec.resources.shm_size)}},
            {"name": "cache", "emptyDir": {}},
            *(
                {"name": volume, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
                for claim, volume in sources.items()
            ),
            *(_volume(v) for v in runtime.volumes),
        ],
    }
    if scheduling.node_selector:
        pod["nodeSelector"] = dict(sorted(scheduling.node_selector.items()))
    if runtime.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": s.name} for s in runtime.image_pull_secrets]
    return pod


def _node_terms(inst: Instance) -> dict[str, Any]:
    """The operator's requirements, ANDed into each of the user's terms (which are ORed), or alone."""
    # Cloud replicas stay off edge nodes: edge sites get their own placement.
    expressions: list[dict[str, Any]] = [{"key": EDGE_NODE_LABEL, "operator": "DoesNotExist"}]
    product = inst.spec.resources.gpu.product
    if product:
        expressions.append({"key": GPU_PRODUCT_LABEL, "operator": "In", "values": [product]})
    user_terms = [[_requirement(r) for r in term.match_expressions] for term in inst.spec.scheduling.node_affinity]
    return {"nodeSelectorTerms": [{"matchExpressions": [*expressions, *extra]} for extra in user_terms or [[]]]}


def _requirement(requirement: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"key": requirement.key, "operator": requirement.operator}
    if requirement.values:
        out["values"] = list(requirement.values)
    return out


def _toleration(toleration: Toleration) -> dict[str, Any]:
    """Only the fields that say something: the API server drops empty strings, and the drift check
    compares against what it stored."""
    out: dict[str, Any] = {"operator": toleration.operator}
    for key, value in (("key", toleration.key), ("value", toleration.value), ("effect", toleration.effect)):
        if value:
            out[key] = value
    if toleration.toleration_seconds is not None:
        out["tolerationSeconds"] = toleration.toleration_seconds
    return dict(sorted(out.items()))


def _volume(volume: Volume) -> dict[str, Any]:
    out: dict[str, Any] = {"name": volume.name}
    if volume.secret is not None:
        out["secret"] = {"secretName": volume.secret.secret_name, **({"optional": True} if volume.secret.optional else {})}
    elif volume.config_map is not None:
        out["configMap"] = {"name": volume.config_map.name, **({"optional": True} if volume.config_map.optional else {})}
    elif volume.persistent_volume_claim is not None:
        claim = volume.persistent_volume_claim
        out["persistentVolumeClaim"] = {"claimName": claim.claim_name, **({"readOnly": True} if claim.read_only else {})}
    elif volume.empty_dir is not None:
        empty: dict[str, Any] = {}
        if volume.empty_dir.medium:
            empty["medium"] = volume.empty_dir.medium
        if volume.empty_dir.size_limit:
            empty["sizeLimit"] = canonical_quantity(volume.empty_dir.size_limit)
        out["emptyDir"] = empty
    return out


def _mount(mount: VolumeMount) -> dict[str, Any]:
    out: dict[str, Any] = {"name": mount.name, "mountPath": mount.mount_path}
    if mount.read_only:
        out["readOnly"] = True
    if mount.sub_path:
        out["subPath"] = mount.sub_path
    return out


def env_entry(env: EnvVar) -> dict[str, Any]:
    """A container env entry: `value` only when not empty (the API server stores an empty value as
    absent), or `valueFrom` with the Secret or ConfigMap key (`optional` only when true)."""
    if env.value_from is not None:
        source = resource_form(env.value_from)
        for ref in source.values():
            if not ref.get("optional"):
                ref.pop("optional", None)
        return {"name": env.name, "valueFrom": source}
    return {"name": env.name, "value": env.value} if env.value else {"name": env.name}


def _env_from(source: EnvFrom) -> dict[str, Any]:
    out = resource_form(source)
    if not out.get("prefix"):
        out.pop("prefix", None)
    for key in ("secretRef", "configMapRef"):
        if key in out and not out[key].get("optional"):
            out[key].pop("optional", None)
    return out


def _pvc_sources(inst: Instance) -> dict[str, str]:
    """Claim name -> volume name, for the model and adapter weights, in first-use order."""
    model = inst.spec.model
    uris = [model.source] if model.source else []
    uris += [adapter.source for adapter in model.lora_adapters]
    claims = dict.fromkeys(_split_pvc(uri)[0] for uri in uris)
    return {claim: f"{WEIGHTS_VOLUME_PREFIX}{i}" for i, claim in enumerate(claims)}


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
        limits["cpu"] = canonical_quantity(spec.resources.cpu)
    if spec.resources.memory:
        limits["memory"] = canonical_quantity(spec.resources.memory)
    container: dict[str, Any] = {
        "name": "engine",
        "image": runtime.image or profile.image,
        "command": profile.command,
        "args": profile.args(_launch(inst), spec.model, runtime) + runtime.args,
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": [
            {"name": "HOME", "value": CACHE_DIR},
            {"name": "HF_HOME", "value": f"{CACHE_DIR}/huggingface"},
            *(env_entry(e) for e in runtime.env),
        ],
        "resources": {"requests": dict(limits), "limits": limits},
        "volumeMounts": [
            {"name": "dshm", "mountPath": SHM_DIR},
            {"name": "cache", "mountPath": CACHE_DIR},
            *({"name": volume, "mountPath": f"{MODEL_DIR}/{claim}", "readOnly": True} for claim, volume in sources.items()),
            *(_mount(m) for m in runtime.volume_mounts),
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
    if runtime.env_from:
        container["envFrom"] = [_env_from(source) for source in runtime.env_from]
    hook = drain_hook(inst)
    if hook:
        container["lifecycle"] = {"preStop": {"exec": {"command": hook}}}
    return container


def _drain_budget(inst: Instance) -> int:
    """Seconds a stopping pod waits for its requests to end: runtime.drainSeconds, or when unset the
    route's timeout (traffic.timeoutSeconds), the longest a stream can last before the proxy cuts it."""
    drain = inst.spec.runtime.drain_seconds
    return inst.spec.traffic.timeout_seconds if drain is None else drain


def drain_hook(inst: Instance) -> list[str] | None:
    """The engine container's preStop command (drain_hook.py: settle, then wait until the engine's
    running and waiting gauges read 0 or the drain budget ends); None with a drain budget of 0."""
    budget = _drain_budget(inst)
    if not budget:
        return None
    signals = PROFILES[inst.spec.runtime.engine].signals
    return ["python3", "-c", DRAIN_HOOK_SOURCE, str(SETTLE_SECONDS), str(budget), f"http://127.0.0.1:{PORT}/metrics",
            signals.running, signals.waiting]


def termination_grace_seconds(inst: Instance) -> int:
    """The pod's terminationGracePeriodSeconds: kubelet's SIGKILL comes this long after the deletion,
    so it covers the hook's settle time and drain budget, and then the engine's own stop."""
    budget = _drain_budget(inst)
    return (SETTLE_SECONDS + budget if budget else 0) + STOP_SECONDS
