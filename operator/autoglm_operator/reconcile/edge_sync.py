"""The reconciler's edge steps: what to hold back during a rollout, and the cluster-scoped NodeGroups.

Namespaced edge objects (EdgeApplication, fallback Deployments, edge Service) go through the normal
apply and prune path with owner references. NodeGroups are cluster-scoped and cannot have a
namespaced owner, so they are found by labels (managed-by, instance, namespace), pruned here when
their group goes, deleted by `delete_node_groups` when the resource is gone, and swept by
`sweep_node_groups` (a resource deleted while no operator ran: no finalizer waits for one).

Each NodeGroup is also owned by the resource's Namespace (`namespace_owned`): a cluster-scoped
dependent may have a cluster-scoped owner (kubernetes.io, "Owners and dependents"), so the garbage
collector deletes the NodeGroups once the namespace is gone, without the operator. That matters with
the chart's `watchNamespaces`: `kubectl delete ns` removes the operator's RoleBinding along with the
resources, and the operator may never see their DELETED events (issue 15). `blockOwnerDeletion` stays
unset: setting it needs `delete` on namespaces, and nothing should hold a namespace's deletion.
NodeGroups are never applied for a namespace that is gone or terminating; its groups are deleted.

Edge groups follow rollouts: while a new cloud revision starts (serving != desired), live edge
objects are neither changed nor pruned; they move once the new revision serves traffic.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from autoglm_operator.api.labels import INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from autoglm_operator.reconcile.diff import ObjectKey, apply_reason, fingerprinted
from autoglm_operator.render.edge import NAMESPACE_LABEL, is_cluster_scoped, is_edge, node_group_selector

log = logging.getLogger("autoglm.edge")


class NodeGroupCluster(Protocol):
    def get_namespace(self, namespace: str) -> dict[str, Any] | None: ...
    def list_node_groups(self, selector: str) -> list[dict[str, Any]]: ...
    def apply_cluster_scoped(self, obj: dict[str, Any]) -> dict[str, Any]: ...
    def delete_node_group(self, obj: Mapping[str, Any]) -> None: ...


def split(objects: Sequence[dict[str, Any]], held: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(namespaced objects to apply, cluster-scoped NodeGroups) from the fingerprinted, owned render.

    NodeGroups lose the owner reference (a cluster-scoped object cannot have a namespaced owner)
    and are fingerprinted again without it. Edge objects are dropped while `held`.
    """
    namespaced, cluster = [], []
    for obj in objects:
        if held and is_edge(obj):
            continue
        if is_cluster_scoped(obj):
            meta = {k: v for k, v in obj["metadata"].items() if k != "ownerReferences"}
            cluster.append(fingerprinted({**obj, "metadata": meta}))
        else:
            namespaced.append(obj)
    return namespaced, cluster


def held_keys(children: Mapping[ObjectKey, Mapping[str, Any]], held: bool) -> set[ObjectKey]:
    """Live edge children kept from pruning while the rollout holds them."""
    return {key for key, obj in children.items() if held and is_edge(obj)} if held else set()


def namespace_owned(obj: Mapping[str, Any], namespace: Mapping[str, Any]) -> dict[str, Any]:
    """`obj` (a NodeGroup) owned by the Namespace object `namespace`, fingerprinted again.

    The reference has no `controller` or `blockOwnerDeletion`: the namespace does not manage the
    NodeGroup, and blocking needs `delete` rights on namespaces (meta/v1 OwnerReference)."""
    owner = {"apiVersion": "v1", "kind": "Namespace", "name": namespace["metadata"]["name"],
             "uid": namespace["metadata"]["uid"]}
    return fingerprinted({**obj, "metadata": {**obj["metadata"], "ownerReferences": [owner]}})


def sync_node_groups(
    cluster: NodeGroupCluster, namespace: str, name: str, desired: Sequence[dict[str, Any]], served: bool, held: bool
) -> list[str]:
    """Apply the desired NodeGroups (owned by the namespace), delete this resource's others; the
    changes made, as Event text. A namespace gone or terminating gets none: its groups are deleted."""
    if not served or held:
        return []
    owner = cluster.get_namespace(namespace)  # None: gone
    live_namespace = owner is not None and not owner["metadata"].get("deletionTimestamp")
    desired = [namespace_owned(obj, owner) for obj in desired] if owner is not None and live_namespace else []
    live = {obj["metadata"]["name"]: obj for obj in cluster.list_node_groups(node_group_selector(namespace, name))}
    changes = []
    for obj in desired:
        reason = apply_reason(obj, live.get(obj["metadata"]["name"]))
        if reason:
            cluster.apply_cluster_scoped(obj)
            changes.append(f"{reason} NodeGroup {obj['metadata']['name']}")
    wanted = {obj["metadata"]["name"] for obj in desired}
    for group_name, obj in sorted(live.items()):
        if group_name not in wanted and not obj["metadata"].get("deletionTimestamp"):
            cluster.delete_node_group(obj)
            changes.append(f"deleted NodeGroup {group_name}")
    return changes


def delete_node_groups(cluster: NodeGroupCluster, namespace: str, name: str) -> int:
    """Every NodeGroup of the resource (its delete handler); how many were deleted."""
    groups = cluster.list_node_groups(node_group_selector(namespace, name))
    for obj in groups:
        cluster.delete_node_group(obj)
    if groups:
        log.info("deleted NodeGroups of %s/%s: %s", namespace, name, ", ".join(g["metadata"]["name"] for g in groups))
    return len(groups)


def sweep_node_groups(cluster: NodeGroupCluster, gone: Callable[[str, str], bool]) -> list[str]:
    """Delete the operator's NodeGroups whose resource is `gone(namespace, name)`; their names.

    `gone` must say False when it cannot tell (a namespace this operator may not read belongs to
    another operator), so only orphans are deleted."""
    deleted = []
    for obj in cluster.list_node_groups(f"{MANAGED_BY_LABEL}={MANAGED_BY}"):
        labels = obj["metadata"].get("labels") or {}
        namespace, name = labels.get(NAMESPACE_LABEL), labels.get(INSTANCE_LABEL)
        if namespace and name and not obj["metadata"].get("deletionTimestamp") and gone(namespace, name):
            cluster.delete_node_group(obj)
            deleted.append(obj["metadata"]["name"])
    if deleted:
        log.info("deleted NodeGroups of deleted resources: %s", ", ".join(deleted))
    return deleted
