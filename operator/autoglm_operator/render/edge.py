"""The model on KubeEdge edge node groups (`spec.edge`): what the operator renders for them.

With the KubeEdge `apps.kubeedge.io/v1alpha1` APIs served, the operator renders one cluster-scoped
NodeGroup per group and ONE EdgeApplication: its workload template holds the edge Deployment and
Service, and `workloadScope.targetNodeGroups[].overriders` carry what differs per group (only the
keys KubeEdge defines: replicas, image, env, args and resources). Without KubeEdge, each group gets
a plain Deployment pinned to its edge nodes, built by applying the same overriders to the same
template (`apply_overriders`), so both modes run the same pods.

Edge pods are kept apart from the cloud ones: they carry `autoglm.io/edge-of` instead of
`autoglm.io/instance`, so the cloud Service, PodDisruptionBudget and status never count them.
KubeEdge rewrites `nodeSelector` to its NodeGroup label, so placement constraints live in node
affinity (fallback) or in the NodeGroup's `matchLabels` (GPU product included).
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from autoglm_operator.api.engines import PORT, PROFILES, check_user_args
from autoglm_operator.api.labels import (
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    REVISION_LABEL,
    bounded_name,
    instance_labels,
    metadata,
)
from autoglm_operator.api.quantity import canonical_quantity
from autoglm_operator.api.schema import InvalidSpec
from autoglm_operator.api.spec import EdgeGroup, Instance, Scheduling
from autoglm_operator.render.workload import EDGE_NODE_LABEL, GPU_PRODUCT_LABEL, GPU_RESOURCE, env_entry, pod_spec

KUBEEDGE_API = "apps.kubeedge.io/v1alpha1"
EDGE_OF_LABEL = "autoglm.io/edge-of"
EDGE_GROUP_LABEL = "autoglm.io/edge-placement"  # not autoglm.io/edge-group: that one is a node label in examples
NAMESPACE_LABEL = "autoglm.io/namespace"
NODE_GROUP_LABEL = "apps.kubeedge.io/belonging-to"  # KubeEdge's node label (and pods' nodeSelector): the NodeGroup name
COMPONENT = "edge-inference"
CONTAINER = "engine"
# Edge nodes lose the cloud link; without these the node lifecycle controller evicts their pods.
OFFLINE_TOLERATIONS = [
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
]


# ---------------------------------------------------------------------------------------------
# Names


def edge_name(inst: Instance) -> str:
    """The EdgeApplication, its template Deployment and the edge Service."""
    return f"{inst.name}-edge"


def node_group_name(inst: Instance, group: EdgeGroup) -> str:
    """Cluster-scoped, so the namespace is part of the name. KubeEdge writes the NodeGroup's name
    into a node label and the pods' nodeSelector (NODE_GROUP_LABEL), so it must be a
    label value: at most 63 characters, shortened with a hash suffix when `<ns>-<name>-<group>`
    is longer (a 63-character namespace, a 52-character name and a 20-character group reach 137)."""
    return bounded_name(inst.namespace, inst.name, group.name)


def fallback_name(inst: Instance, group: EdgeGroup) -> str:
    """The group's Deployment without KubeEdge: kept a DNS label like every other name the operator derives."""
    return bounded_name(inst.name, "edge", group.name)


def node_group_selector(namespace: str, name: str) -> str:
    """Every NodeGroup made for the resource `namespace/name`."""
    return f"{MANAGED_BY_LABEL}={MANAGED_BY},{INSTANCE_LABEL}={name},{NAMESPACE_LABEL}={namespace}"


def is_edge(obj: Mapping[str, Any]) -> bool:
    """An object of the edge placement (held back while a new cloud revision rolls out)."""
    labels = obj.get("metadata", {}).get("labels") or {}
    return labels.get("app.kubernetes.io/component") in (COMPONENT, "edge")


def is_cluster_scoped(obj: Mapping[str, Any]) -> bool:
    return obj.get("apiVersion") == KUBEEDGE_API and obj.get("kind") == "NodeGroup"


# ---------------------------------------------------------------------------------------------
# Validation


def check_edge(inst: Instance) -> None:
    """Group args may not set flags the operator sets, exactly like the cloud's runtime.args."""
    for group in inst.spec.edge:
        try:
            check_user_args(dataclasses.replace(inst.spec.runtime, args=group.args))
        except InvalidSpec as exc:
            raise InvalidSpec(f"spec.edge[{group.name}].args: {exc}") from None


# ---------------------------------------------------------------------------------------------
# The template every group starts from


def _template_instance(inst: Instance) -> Instance:
    """The cloud spec without what groups override by adding flags (quantization, context length),
    and without the cloud pods' placement (spec.scheduling): edge groups are placed by nodeLabels."""
    spec = inst.spec
    neutral = dataclasses.replace(
        spec,
        model=dataclasses.replace(spec.model, quantization="none"),
        runtime=dataclasses.replace(spec.runtime, max_model_len=0),
        scheduling=Scheduling(),
    )
    return dataclasses.replace(inst, spec=neutral)


def _pod_labels(inst: Instance, revision: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "autoglm",
        "app.kubernetes.io/instance": inst.name,
        "app.kubernetes.io/component": COMPONENT,
        EDGE_OF_LABEL: inst.name,
        REVISION_LABEL: revision,
    }


def edge_pod_template(inst: Instance, revision: str) -> dict[str, Any]:
    """The cloud pod (workload.pod_spec) reshaped for edge nodes; resources come from each group."""
    spec = pod_spec(_template_instance(inst))
    spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": EDGE_NODE_LABEL, "operator": "Exists"}]}]
    }}}
    spec["tolerations"] = [*spec["tolerations"], *OFFLINE_TOLERATIONS]
    spec["containers"][0]["resources"] = {}
    return {
        "metadata": {
            "labels": _pod_labels(inst, revision),
            "annotations": {
                "sidecar.istio.io/inject": "false",  # no Istio sidecar runs on edge nodes
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(PORT),
                "prometheus.io/path": "/metrics",
            },
        },
        "spec": spec,
    }


def _template_labels(inst: Instance) -> dict[str, str]:
    """No managed-by/instance labels: the Deployments KubeEdge makes from it are not the operator's to prune."""
    return {"app.kubernetes.io/name": "autoglm", "app.kubernetes.io/component": COMPONENT, EDGE_OF_LABEL: inst.name}


def edge_deployment_template(inst: Instance, revision: str) -> dict[str, Any]:
    """Replicas 0: every group sets its own (and an omitted 0 still means 0)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": edge_name(inst), "namespace": inst.namespace, "labels": _template_labels(inst)},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {EDGE_OF_LABEL: inst.name}},
            "revisionHistoryLimit": 2,
            "progressDeadlineSeconds": inst.spec.runtime.startup_timeout_seconds + 300,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "template": edge_pod_template(inst, revision),
        },
    }


def edge_service(inst: Instance, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every edge pod of the resource; clients at a site reach it through KubeEdge's service topology."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": edge_name(inst), "namespace": inst.namespace, "labels": dict(labels or _template_labels(inst))},
        "spec": {
            "type": "ClusterIP",
            "selector": {EDGE_OF_LABEL: inst.name},
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}],
        },
    }


# ---------------------------------------------------------------------------------------------
# Per-group differences as KubeEdge overriders


def split_image(image: str) -> tuple[str, str, str]:
    """(registry, repository, tag); the registry is the first path part when it looks like a host."""
    name, tag = image, ""
    if ":" in image.rsplit("/", 1)[-1]:
        name, tag = image.rsplit(":", 1)
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest, tag
    return "", name, tag


def join_image(registry: str, repository: str, tag: str) -> str:
    return f"{registry + '/' if registry else ''}{repository}{':' + tag if tag else ''}"


def _image_overriders(base: str, wanted: str) -> list[dict[str, Any]]:
    """replace a component both have, add one only `wanted` has, remove one only `base` has."""
    overriders = []
    for component, old, new in zip(("Registry", "Repository", "Tag"), split_image(base), split_image(wanted)):
        if old == new:
            continue
        operator = "remove" if not new else "add" if not old else "replace"
        overriders.append({"component": component, "operator": operator, **({"value": new} if new else {})})
    return overriders


def group_resources(group: EdgeGroup) -> dict[str, Any]:
    limits: dict[str, str] = {}
    if group.resources.gpu_count:
        limits[GPU_RESOURCE] = str(group.resources.gpu_count)
    if group.resources.cpu:
        limits["cpu"] = canonical_quantity(group.resources.cpu)
    if group.resources.memory:
        limits["memory"] = canonical_quantity(group.resources.memory)
    return {"requests": dict(limits), "limits": limits} if limits else {}


def group_extra_args(inst: Instance, group: EdgeGroup) -> list[str]:
    """Flags the group adds after the template's: its quantization and context length, then its own args."""
    spec = inst.spec
    profile = PROFILES[spec.runtime.engine]
    quantization = group.quantization or spec.model.quantization
    max_len = group.max_model_len or spec.runtime.max_model_len
    args: list[str] = []
    if max_len:
        args += [profile.max_len_flag, str(max_len)]
    if quantization != "none":
        args += [profile.quantization_flag, quantization]
    return args + list(group.args)


def group_overriders(inst: Instance, group: EdgeGroup, template: Mapping[str, Any]) -> dict[str, Any]:
    """What KubeEdge changes in `template` (the edge Deployment) for this group."""
    container = template["spec"]["template"]["spec"]["containers"][0]
    overriders: dict[str, Any] = {"replicas": group.replicas}
    if group.image and group.image != container["image"]:
        overriders["imageOverriders"] = _image_overriders(container["image"], group.image)
    if group.env:
        present = {e["name"] for e in container.get("env", [])}
        env: list[dict[str, Any]] = []
        for operator, entries in (
            ("replace", [e for e in group.env if e.name in present]),
            ("add", [e for e in group.env if e.name not in present]),
        ):
            if entries:
                value = [env_entry(e) for e in entries]
                env.append({"containerName": CONTAINER, "operator": operator, "value": value})
        overriders["envOverriders"] = env
    extra = group_extra_args(inst, group)
    if extra:
        overriders["argsOverriders"] = [{"containerName": CONTAINER, "operator": "add", "value": extra}]
    overriders["resourcesOverriders"] = [{"containerName": CONTAINER, "value": group_resources(group)}]
    return overriders


def apply_overriders(deployment: Mapping[str, Any], overriders: Mapping[str, Any]) -> dict[str, Any]:
    """The Deployment KubeEdge derives from the template for one group (used as the fallback's pods)."""
    result = copy.deepcopy(dict(deployment))
    if "replicas" in overriders:
        result["spec"]["replicas"] = overriders["replicas"]
    containers = {c["name"]: c for c in result["spec"]["template"]["spec"]["containers"]}
    for rule in overriders.get("imageOverriders", []):
        for container in containers.values():
            parts = dict(zip(("Registry", "Repository", "Tag"), split_image(container["image"])))
            parts[rule["component"]] = "" if rule["operator"] == "remove" else (
                parts[rule["component"]] + rule["value"] if rule["operator"] == "add" else rule["value"]
            )
            container["image"] = join_image(parts["Registry"], parts["Repository"], parts["Tag"])
    for rule in overriders.get("envOverriders", []):
        container = containers[rule["containerName"]]
        names = {e["name"] for e in rule["value"]}
        kept = [e for e in container.get("env", []) if rule["operator"] == "add" or e["name"] not in names]
        if rule["operator"] == "replace":
            by_name = {e["name"]: e for e in rule["value"]}
            kept = [by_name.get(e["name"], e) for e in container.get("env", [])]
        elif rule["operator"] == "add":
            kept = kept + list(rule["value"])
        container["env"] = kept
    for key, field in (("commandOverriders", "command"), ("argsOverriders", "args")):
        for rule in overriders.get(key, []):
            container = containers[rule["containerName"]]
            if rule["operator"] == "add":
                container[field] = [*container.get(field, []), *rule["value"]]
            else:
                container[field] = [v for v in container.get(field, []) if v not in rule["value"]]
    for rule in overriders.get("resourcesOverriders", []):
        containers[rule["containerName"]]["resources"] = copy.deepcopy(rule["value"])
    return result


# ---------------------------------------------------------------------------------------------
# Rendering


def node_group(inst: Instance, group: EdgeGroup) -> dict[str, Any]:
    """The group's edge nodes; a GPU product narrows it (the template's affinity is shared by all groups)."""
    match = {**group.node_labels, EDGE_NODE_LABEL: ""}
    if group.resources.gpu_product:
        match[GPU_PRODUCT_LABEL] = group.resources.gpu_product
    labels = {**instance_labels(inst), "app.kubernetes.io/component": "edge", NAMESPACE_LABEL: inst.namespace}
    return {
        "apiVersion": KUBEEDGE_API,
        "kind": "NodeGroup",
        "metadata": {"name": node_group_name(inst, group), "labels": labels},
        "spec": {"matchLabels": dict(sorted(match.items()))},
    }


def edge_application(inst: Instance, revision: str) -> dict[str, Any]:
    template = edge_deployment_template(inst, revision)
    return {
        "apiVersion": KUBEEDGE_API,
        "kind": "EdgeApplication",
        "metadata": metadata(inst, edge_name(inst), "edge"),
        "spec": {
            "workloadTemplate": {"manifests": [template, edge_service(inst)]},
            "workloadScope": {"targetNodeGroups": [
                {"name": node_group_name(inst, group), "overriders": group_overriders(inst, group, template)}
                for group in inst.spec.edge
            ]},
        },
    }


def fallback_deployment(inst: Instance, group: EdgeGroup, revision: str) -> dict[str, Any]:
    """Without KubeEdge: the group's KubeEdge Deployment, pinned to its nodes by node affinity."""
    template = edge_deployment_template(inst, revision)
    deployment = apply_overriders(template, group_overriders(inst, group, template))
    extra = {EDGE_GROUP_LABEL: group.name}
    deployment["metadata"] = metadata(inst, fallback_name(inst, group), COMPONENT, extra)
    deployment["spec"]["selector"]["matchLabels"].update(extra)
    pod = deployment["spec"]["template"]
    pod["metadata"]["labels"].update(extra)
    expressions = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchExpressions"]
    expressions += [{"key": k, "operator": "In", "values": [v]} for k, v in sorted(group.node_labels.items())]
    if group.resources.gpu_product:
        expressions.append({"key": GPU_PRODUCT_LABEL, "operator": "In", "values": [group.resources.gpu_product]})
    return deployment


def render_edge(inst: Instance, revision: str, *, kubeedge: bool) -> list[dict[str, Any]]:
    """NodeGroups + one EdgeApplication with KubeEdge; otherwise one Deployment per group and a Service."""
    groups = inst.spec.edge
    if not groups:
        return []
    if kubeedge:
        return [*(node_group(inst, g) for g in groups), edge_application(inst, revision)]
    service = edge_service(inst, metadata(inst, edge_name(inst), COMPONENT)["labels"])
    return [*(fallback_deployment(inst, g, revision) for g in groups), service]
