"""NodeGroups never outlive their resource or its namespace (edge_sync.py): owned by the Namespace,
none applied for a namespace gone or terminating, orphans of a stopped operator swept, and only those."""
from __future__ import annotations

from typing import Any

import pytest

from autoglm_operator.reconcile import edge_sync
from autoglm_operator.reconcile.diff import apply_reason, fingerprinted

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml", "uid": "ns-uid"}}


def _group(name: str, namespace: str, instance: str, **meta: Any) -> dict[str, Any]:
    labels = {"app.kubernetes.io/managed-by": "autoglm-operator", "autoglm.io/instance": instance,
              "autoglm.io/namespace": namespace}
    return {"metadata": {"name": name, "labels": labels, **meta}}


class _Cluster:
    def __init__(self, groups: list[dict[str, Any]], namespace: dict[str, Any] | None = None) -> None:
        self.groups = groups
        self.namespace = namespace
        self.selectors: list[str] = []
        self.deleted: list[str] = []
        self.applied: list[dict[str, Any]] = []

    def get_namespace(self, namespace: str) -> dict[str, Any] | None:
        return self.namespace

    def list_node_groups(self, selector: str) -> list[dict[str, Any]]:
        self.selectors.append(selector)
        return self.groups

    def apply_cluster_scoped(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.applied.append(obj)
        return obj

    def delete_node_group(self, obj: dict[str, Any]) -> None:
        self.deleted.append(obj["metadata"]["name"])


def test_only_groups_whose_resource_is_gone_are_deleted() -> None:
    cluster = _Cluster([
        _group("ml-gone-site-a", "ml", "gone"),
        _group("ml-live-site-a", "ml", "live"),
        _group("other-x-site-a", "other", "x"),  # a namespace this operator cannot read: not judged gone
        _group("ml-going-site-a", "ml", "going", deletionTimestamp="2026-01-01T00:00:00Z"),
    ])
    existing = {("ml", "live"), ("other", "x")}
    deleted = edge_sync.sweep_node_groups(cluster, lambda ns, name: (ns, name) not in existing and ns == "ml")
    assert deleted == ["ml-gone-site-a"] == cluster.deleted
    assert cluster.applied == []
    assert cluster.selectors == ["app.kubernetes.io/managed-by=autoglm-operator"]


def _desired(name: str) -> dict[str, Any]:
    group = _group(name, "ml", "glm")
    return fingerprinted({"apiVersion": "apps.kubeedge.io/v1alpha1", "kind": "NodeGroup", **group, "spec": {}})


def test_a_node_group_is_owned_by_its_namespace_so_the_garbage_collector_takes_it_with_the_namespace() -> None:
    owned = edge_sync.namespace_owned(_desired("ml-glm-site-a"), NAMESPACE)
    assert owned["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Namespace", "name": "ml", "uid": "ns-uid"}]
    assert apply_reason(owned, _desired("ml-glm-site-a")) is not None, "a NodeGroup of an older operator gets the owner"
    assert apply_reason(owned, owned) is None, "and is not applied again once it has it"


def test_node_groups_are_applied_owned_while_the_namespace_lives() -> None:
    cluster = _Cluster([], NAMESPACE)
    changes = edge_sync.sync_node_groups(cluster, "ml", "glm", [_desired("ml-glm-site-a")], served=True, held=False)
    assert changes == ["created NodeGroup ml-glm-site-a"]
    assert [obj["metadata"]["ownerReferences"][0]["uid"] for obj in cluster.applied] == ["ns-uid"]


@pytest.mark.parametrize("namespace", [None, {"metadata": {**NAMESPACE["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}],
                         ids=["gone", "terminating"])
def test_no_node_group_is_applied_for_a_namespace_being_deleted_and_its_groups_go(namespace: dict[str, Any] | None) -> None:
    """A converge that read the resource before its namespace's deletion began never re-creates them."""
    cluster = _Cluster([_group("ml-glm-site-a", "ml", "glm", uid="1")], namespace)
    changes = edge_sync.sync_node_groups(cluster, "ml", "glm", [_desired("ml-glm-site-a")], served=True, held=False)
    assert (cluster.applied, cluster.deleted, changes) == ([], ["ml-glm-site-a"], ["deleted NodeGroup ml-glm-site-a"])
