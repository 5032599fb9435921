"""How each KubeEdge edge group (`spec.edge`) is doing: status.edge, and the Degraded reason it implies.

Pure: observed nodes and edge pods in, status entries out. The rendering (render.edge) labels the
fallback pods with their group; KubeEdge's pods are counted by the node they run on.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from autoglm_operator.api.labels import REVISION_LABEL
from autoglm_operator.api.spec import EdgeGroup, Instance
from autoglm_operator.render.edge import EDGE_GROUP_LABEL
from autoglm_operator.render.workload import EDGE_NODE_LABEL, GPU_PRODUCT_LABEL, GPU_RESOURCE
from autoglm_operator.status.readiness import unschedulable


def _is_edge_node(node: Mapping[str, Any]) -> bool:
    return EDGE_NODE_LABEL in (node["metadata"].get("labels") or {})


def group_nodes(group: EdgeGroup, nodes: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Edge nodes carrying all the group's labels."""
    return [
        n for n in nodes
        if _is_edge_node(n) and group.node_labels.items() <= (n["metadata"].get("labels") or {}).items()
    ]


def _gpu_fits(group: EdgeGroup, node: Mapping[str, Any]) -> bool:
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    labels = node["metadata"].get("labels") or {}
    product = group.resources.gpu_product
    return int(allocatable.get(GPU_RESOURCE, "0") or 0) >= group.resources.gpu_count and (
        not product or labels.get(GPU_PRODUCT_LABEL) == product
    )


def _selector_text(group: EdgeGroup) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(group.node_labels.items()))


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions", [])
    )


def placement_problem(
    group: EdgeGroup, nodes: Sequence[Mapping[str, Any]] | None, pods: Sequence[Mapping[str, Any]]
) -> tuple[str, str] | None:
    """Why the group cannot be placed, from the nodes (None: not readable) and its pods' scheduling."""
    if nodes is not None:
        members = group_nodes(group, nodes)
        if not members:
            return "NoMatchingEdgeNodes", f"no edge node has the labels {_selector_text(group)}"
        if group.resources.gpu_count and not any(_gpu_fits(group, n) for n in members):
            product = f" {group.resources.gpu_product}" if group.resources.gpu_product else ""
            return "NoEdgeGpu", (
                f"no edge node with the labels {_selector_text(group)} has {group.resources.gpu_count}"
                f"{product} {GPU_RESOURCE}"
            )
    return unschedulable(pods)


def pods_of_group(
    group: EdgeGroup, pods: Iterable[Mapping[str, Any]], nodes: Sequence[Mapping[str, Any]] | None
) -> list[Mapping[str, Any]]:
    """Fallback pods carry the group label; KubeEdge's do not, so they count by the node they run on."""
    names = {n["metadata"]["name"] for n in group_nodes(group, nodes or [])}
    found = []
    for pod in pods:
        label = (pod["metadata"].get("labels") or {}).get(EDGE_GROUP_LABEL)
        if label == group.name or (label is None and (pod.get("spec") or {}).get("nodeName") in names):
            found.append(pod)
    return found


def edge_status(
    inst: Instance,
    revision: str | None,
    nodes: Sequence[Mapping[str, Any]] | None,
    pods: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """status.edge: per group its wanted and Ready pods, the revision it runs and why it cannot be placed."""
    statuses = []
    for group in inst.spec.edge:
        mine = pods_of_group(group, pods, nodes)
        problem = placement_problem(group, nodes, mine)
        entry: dict[str, Any] = {
            "name": group.name,
            "desired": group.replicas,
            "ready": sum(1 for p in mine if _pod_ready(p) and not p["metadata"].get("deletionTimestamp")),
        }
        if revision:
            entry["revision"] = revision
        if problem:
            entry["reason"], entry["message"] = problem
        statuses.append(entry)
    return statuses


def edge_problem(statuses: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """The Degraded reason and message when some group cannot be placed (the cloud part is judged apart)."""
    failing = [s for s in statuses if s.get("reason")]
    if not failing:
        return None
    reason = failing[0]["reason"] if len({s["reason"] for s in failing}) == 1 else "EdgePlacementFailed"
    return reason, "; ".join(f"edge group {s['name']}: {s['message']}" for s in failing)


def live_revision(objects: Iterable[Mapping[str, Any]]) -> str | None:
    """The revision live edge objects run (what status.edge reports while they are held back)."""
    for obj in objects:
        spec = obj.get("spec") or {}
        if obj.get("kind") == "EdgeApplication":
            manifests = spec.get("workloadTemplate", {}).get("manifests") or [{}]
            spec = manifests[0].get("spec") or {}
        rev = (spec.get("template", {}).get("metadata", {}).get("labels") or {}).get(REVISION_LABEL)
        if rev:
            return rev
    return None
