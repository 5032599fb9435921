"""NodeGroups left by resources deleted while no operator ran are swept, and only those (edge_sync.py)."""
from __future__ import annotations

from typing import Any

from autoglm_operator.reconcile import edge_sync


def _group(name: str, namespace: str, instance: str, **meta: Any) -> dict[str, Any]:
    labels = {"app.kubernetes.io/managed-by": "autoglm-operator", "autoglm.io/instance": instance,
              "autoglm.io/namespace": namespace}
    return {"metadata": {"name": name, "labels": labels, **meta}}


class _Cluster:
    def __init__(self, groups: list[dict[str, Any]]) -> None:
        self.groups = groups
        self.selectors: list[str] = []
        self.deleted: list[str] = []

    def list_node_groups(self, selector: str) -> list[dict[str, Any]]:
        self.selectors.append(selector)
        return self.groups

    def apply_cluster_scoped(self, obj: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("a sweep never applies")

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
    assert cluster.selectors == ["app.kubernetes.io/managed-by=autoglm-operator"]
