"""Pods that take a cold start: kwok marks a pod Ready only after the delay its namespace asks for.

A GPU pod serves only after it has loaded its weights (minutes). Here kwok plays the kubelet, and
its pod-ready Stage (kwok's own "fast" set, copied from its module by hack/build-tools.sh) gets a
per-pod delay read from the pod annotation kwok documents for that purpose
(`pod-ready.stage.kwok.x-k8s.io/delay`, a Go duration such as "20s"). Pods are made by the
ReplicaSet controller, so that annotation is set at admission: a MutatingAdmissionPolicy copies it
from the namespace's `testenv.autoglm.io/cold-start` annotation. A test or the demo sets the cold
start of its own namespace (`set`); namespaces without it keep kwok's instant Ready.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

NAMESPACE_ANNOTATION = "testenv.autoglm.io/cold-start"
KWOK_DELAY_ANNOTATION = "pod-ready.stage.kwok.x-k8s.io/delay"
POLICY_NAME = "testenv-cold-start"


def pod_stages(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """kwok's pod Stages with the pod-ready one delayed by the pod's KWOK_DELAY_ANNOTATION (0 when absent)."""
    out = []
    for stage in stages:
        if stage["metadata"]["name"] == "pod-ready":
            stage = {**stage, "spec": {**stage["spec"], "delay": {
                "durationMilliseconds": 0,
                "durationFrom": {"expressionFrom": f'.metadata.annotations["{KWOK_DELAY_ANNOTATION}"]'},
            }}}
        out.append(stage)
    if not any(s["metadata"]["name"] == "pod-ready" for s in out):
        raise ValueError("kwok's stages have no pod-ready Stage (hack/build-tools.sh stages copies them)")
    return out


def write_kwok_config(stages_dir: Path, path: Path) -> Path:
    """kwok's --config file: its pod Stages from `stages_dir`, with the Ready delay (`pod_stages`)."""
    stages = [yaml.safe_load(p.read_text()) for p in sorted(stages_dir.glob("pod-*.yaml"))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n---\n".join(json.dumps(s) for s in pod_stages(stages)))
    return path


def policy() -> list[dict[str, Any]]:
    """The MutatingAdmissionPolicy (admissionregistration.k8s.io/v1beta1 in Kubernetes 1.34) and its
    binding: a pod created in a namespace with NAMESPACE_ANNOTATION gets KWOK_DELAY_ANNOTATION = that value."""
    api = "admissionregistration.k8s.io/v1beta1"
    value = f'namespaceObject.metadata.annotations["{NAMESPACE_ANNOTATION}"]'
    return [
        {"apiVersion": api, "kind": "MutatingAdmissionPolicy", "metadata": {"name": POLICY_NAME},
         "spec": {
             # Ignore: a policy error must not stop pods (no cold start then; the e2e tests measure it).
             "failurePolicy": "Ignore", "reinvocationPolicy": "Never",
             "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                                     "resources": ["pods"]}]},
             # A ternary rather than matchConditions: those see an empty namespaceObject ("no such key: metadata").
             "mutations": [{"patchType": "ApplyConfiguration", "applyConfiguration": {
                 "expression": f'has(namespaceObject.metadata.annotations) && "{NAMESPACE_ANNOTATION}" in '
                               f'namespaceObject.metadata.annotations ? Object{{metadata: Object.metadata{{annotations: '
                               f'{{"{KWOK_DELAY_ANNOTATION}": {value}}}}}}} : Object{{}}'}}],
         }},
        {"apiVersion": api, "kind": "MutatingAdmissionPolicyBinding", "metadata": {"name": POLICY_NAME},
         "spec": {"policyName": POLICY_NAME}},
    ]


def namespace_patch(seconds: float) -> dict[str, Any]:
    """The namespace patch giving its new pods a cold start of `seconds` (0 or less: none)."""
    if seconds < 0:
        raise ValueError(f"a cold start cannot be negative: {seconds}")
    return {"metadata": {"annotations": {NAMESPACE_ANNOTATION: f"{seconds:g}s" if seconds > 0 else None}}}
