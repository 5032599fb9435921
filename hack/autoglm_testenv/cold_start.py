"""Pods that take a cold start: kwok marks a pod Ready only after the delay its namespace asks for.

A GPU pod serves only after it has loaded its weights (minutes). Here kwok plays the kubelet, and
its pod-ready Stage (kwok's own "fast" set, copied from its module by hack/build-tools.sh) gets a
per-pod delay read from the pod annotation kwok documents for that purpose
(`pod-ready.stage.kwok.x-k8s.io/delay`, a Go duration such as "20s"). Pods are made by the
ReplicaSet controller, so that annotation is set at admission: a MutatingAdmissionPolicy copies it
from the namespace's `testenv.autoglm.io/cold-start` annotation. A test or the demo sets the cold
start of its own namespace (`set`); namespaces without it keep kwok's instant Ready.

Termination the kubelet way, for the stream-safe scale-in test. kwok's "fast" pod-delete Stage
deletes a pod as soon as it has a deletionTimestamp, while kubelet would first run the preStop hook
and SIGKILL the containers only at the end of the grace period. A namespace annotated
TERMINATION_ANNOTATION (`termination_patch`) gets that annotation on its new pods (the same
policy), and such pods go through another Stage, `pod-delete-at-grace-end`, which deletes them at
their deletionTimestamp: the API server sets it to the deletion time plus the grace period, and
kwok reads an RFC 3339 time from `durationFrom` as the delay until then (kwok's own "general"
pod-delete Stage uses the same expression; `pkg/utils/lifecycle/value_duration_from.go`). Until
then the termination runner (termination.py) plays kubelet: it runs the pod's preStop hook and
deletes the pod when the hook returns. Pods of other namespaces keep kwok's instant delete.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

NAMESPACE_ANNOTATION = "testenv.autoglm.io/cold-start"
KWOK_DELAY_ANNOTATION = "pod-ready.stage.kwok.x-k8s.io/delay"
POLICY_NAME = "testenv-cold-start"
TERMINATION_ANNOTATION = "testenv.autoglm.io/termination"  # on a namespace, then on its pods: "kubelet"
GRACEFUL_DELETE_STAGE = "pod-delete-at-grace-end"


def pod_stages(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """kwok's pod Stages with the pod-ready one delayed by the pod's KWOK_DELAY_ANNOTATION (0 when
    absent), and pod-delete split in two: at once, or at the grace period's end for pods with
    TERMINATION_ANNOTATION (GRACEFUL_DELETE_STAGE)."""
    out = []
    names = {s["metadata"]["name"] for s in stages}
    if not {"pod-ready", "pod-delete"} <= names:
        raise ValueError("kwok's stages need pod-ready and pod-delete Stages (hack/build-tools.sh stages copies them)")
    opted_in = f'.metadata.annotations["{TERMINATION_ANNOTATION}"]'
    for stage in stages:
        name = stage["metadata"]["name"]
        if name == "pod-ready":
            stage = {**stage, "spec": {**stage["spec"], "delay": {
                "durationMilliseconds": 0,
                "durationFrom": {"expressionFrom": f'.metadata.annotations["{KWOK_DELAY_ANNOTATION}"]'},
            }}}
        elif name == "pod-delete":
            expressions = stage["spec"]["selector"]["matchExpressions"]
            out.append({**stage, "metadata": {"name": GRACEFUL_DELETE_STAGE}, "spec": {
                **stage["spec"],
                "selector": {"matchExpressions": [*expressions, {"key": opted_in, "operator": "Exists"}]},
                "delay": {"durationMilliseconds": 0, "durationFrom": {"expressionFrom": ".metadata.deletionTimestamp"}},
            }})
            stage = {**stage, "spec": {**stage["spec"], "selector": {
                "matchExpressions": [*expressions, {"key": opted_in, "operator": "DoesNotExist"}]}}}
        out.append(stage)
    return out


def write_kwok_config(stages_dir: Path, path: Path) -> Path:
    """kwok's --config file: its pod Stages from `stages_dir`, with the Ready delay (`pod_stages`)."""
    stages = [yaml.safe_load(p.read_text()) for p in sorted(stages_dir.glob("pod-*.yaml"))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n---\n".join(json.dumps(s) for s in pod_stages(stages)))
    return path


def _copy(namespace_key: str, pod_key: str) -> dict[str, Any]:
    """A mutation giving a new pod the annotation `pod_key` = its namespace's `namespace_key`, when set."""
    value = f'namespaceObject.metadata.annotations["{namespace_key}"]'
    # A ternary rather than matchConditions: those see an empty namespaceObject ("no such key: metadata").
    return {"patchType": "ApplyConfiguration", "applyConfiguration": {
        "expression": f'has(namespaceObject.metadata.annotations) && "{namespace_key}" in '
                      f'namespaceObject.metadata.annotations ? Object{{metadata: Object.metadata{{annotations: '
                      f'{{"{pod_key}": {value}}}}}}} : Object{{}}'}}


def policy() -> list[dict[str, Any]]:
    """The MutatingAdmissionPolicy (admissionregistration.k8s.io/v1beta1 in Kubernetes 1.34) and its
    binding: a pod created in a namespace with NAMESPACE_ANNOTATION gets KWOK_DELAY_ANNOTATION = that
    value, and with TERMINATION_ANNOTATION the same annotation."""
    api = "admissionregistration.k8s.io/v1beta1"
    return [
        {"apiVersion": api, "kind": "MutatingAdmissionPolicy", "metadata": {"name": POLICY_NAME},
         "spec": {
             # Ignore: a policy error must not stop pods (no cold start then; the e2e tests measure it).
             "failurePolicy": "Ignore", "reinvocationPolicy": "Never",
             "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                                     "resources": ["pods"]}]},
             "mutations": [_copy(NAMESPACE_ANNOTATION, KWOK_DELAY_ANNOTATION),
                           _copy(TERMINATION_ANNOTATION, TERMINATION_ANNOTATION)],
         }},
        {"apiVersion": api, "kind": "MutatingAdmissionPolicyBinding", "metadata": {"name": POLICY_NAME},
         "spec": {"policyName": POLICY_NAME}},
    ]


def namespace_patch(seconds: float) -> dict[str, Any]:
    """The namespace patch giving its new pods a cold start of `seconds` (0 or less: none)."""
    if seconds < 0:
        raise ValueError(f"a cold start cannot be negative: {seconds}")
    return {"metadata": {"annotations": {NAMESPACE_ANNOTATION: f"{seconds:g}s" if seconds > 0 else None}}}


def termination_patch() -> dict[str, Any]:
    """The namespace patch after which its new pods stop the kubelet way (the module docstring)."""
    return {"metadata": {"annotations": {TERMINATION_ANNOTATION: "kubelet"}}}
