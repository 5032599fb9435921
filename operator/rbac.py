"""The operator's RBAC, generated from the kinds it manages so a new child kind cannot be forgotten.

apiGroups hold group names only (kopf's sample RBAC puts versions there, which matches nothing).
"""
from __future__ import annotations

from typing import Any

from autoglm_operator.kinds import CHILD_KINDS
from autoglm_operator.spec import GROUP, PLURAL

NAME = "autoglm-operator"
READ = ["get", "list", "watch"]


def cluster_role() -> dict[str, Any]:
    by_group: dict[str, list[str]] = {}
    for kind in CHILD_KINDS:
        by_group.setdefault(kind.group, []).append(kind.plural)
    rules: list[dict[str, Any]] = [
        {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": [*READ, "patch"]},
        {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["get", "patch"]},
        # Owner references with blockOwnerDeletion need the right to set finalizers on the owner.
        {"apiGroups": [GROUP], "resources": [f"{PLURAL}/finalizers"], "verbs": ["update"]},
        *(
            {"apiGroups": [group], "resources": plurals, "verbs": [*READ, "create", "patch", "delete"]}
            for group, plurals in by_group.items()
        ),
        {"apiGroups": [""], "resources": ["pods"], "verbs": READ},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        # kopf notices CRDs and namespaces appearing; peering is optional (--peering).
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": READ},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": READ},
        {"apiGroups": ["kopf.dev"], "resources": ["kopfpeerings", "clusterkopfpeerings"], "verbs": [*READ, "patch"]},
    ]
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": NAME}, "rules": rules}


def manifests(namespace: str) -> list[dict[str, Any]]:
    """ServiceAccount, ClusterRole and ClusterRoleBinding for an operator running in `namespace`."""
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": NAME, "namespace": namespace}}
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": NAME},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
        "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}],
    }
    return [account, cluster_role(), binding]
