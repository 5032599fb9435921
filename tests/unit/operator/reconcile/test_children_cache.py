"""The watch-fed copy of children and pods must never be older than what the operator saw last,
and never bring back an object that was seen deleted (children_cache.py)."""
from __future__ import annotations

from typing import Any

from autoglm_operator.reconcile.children_cache import ChildrenCache
from autoglm_operator.reconcile.diff import FIELD_MANAGER
from autoglm_operator.reconcile.kinds import DEPLOYMENT, SERVICE

LABELS = {"app.kubernetes.io/managed-by": "autoglm-operator", "autoglm.io/instance": "glm"}


def _obj(name: str, rv: int, uid: str = "u1", **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ml", "uid": uid, "resourceVersion": str(rv), "labels": dict(LABELS)},
            **extra}


def _seeded(*listings: tuple[str, list[dict[str, Any]], str]) -> ChildrenCache:
    cache = ChildrenCache(clock=lambda: 0.0)
    cache.replace("ml", "glm", listings)
    return cache


def test_a_late_event_does_not_replace_a_newer_copy() -> None:
    cache = _seeded(("Service", [], "10"))
    cache.stored("Service", _obj("glm", 12, spec={"v": "applied"}))
    cache.observe("Service", _obj("glm", 11, spec={"v": "older"}), deleted=False)
    assert cache.children("ml", "glm", [SERVICE])[("Service", "glm")]["spec"] == {"v": "applied"}
    cache.observe("Service", _obj("glm", 13, spec={"v": "edited"}), deleted=False)
    assert cache.children("ml", "glm", [SERVICE])[("Service", "glm")]["spec"] == {"v": "edited"}


def test_a_deleted_object_stays_deleted_whatever_arrives_later() -> None:
    cache = _seeded(("Service", [_obj("glm", 5)], "5"))
    cache.removed("Service", _obj("glm", 5))
    assert cache.children("ml", "glm", [SERVICE]) == {}
    cache.observe("Service", _obj("glm", 6), deleted=False)  # a late MODIFIED of the deleted object
    cache.replace("ml", "glm", [("Service", [_obj("glm", 6)], "6")])  # a LIST taken before the deletion
    assert cache.children("ml", "glm", [SERVICE]) == {}
    cache.observe("Service", _obj("glm", 9, uid="u2"), deleted=False)  # a new object of the same name
    assert cache.children("ml", "glm", [SERVICE])[("Service", "glm")]["metadata"]["uid"] == "u2"


def test_a_list_is_the_truth_except_for_what_changed_after_it() -> None:
    cache = _seeded(("Service", [], "1"), ("Pod", [], "1"))
    cache.stored("Service", _obj("missed-deletion", 4, uid="a"))
    cache.stored("Pod", _obj("p-new", 30, uid="b"))
    cache.replace("ml", "glm", [("Service", [], "20"), ("Pod", [], "20")])
    assert cache.children("ml", "glm", [SERVICE]) == {}  # gone by the LIST at 20: its deletion was missed
    assert [p["metadata"]["name"] for p in cache.pods("ml", "glm")] == ["p-new"]  # created after the LIST


def test_seeding_expiring_and_forgetting() -> None:
    cache = ChildrenCache()
    assert not cache.seeded("ml", "glm")
    cache.replace("ml", "glm", [("Deployment", [_obj("glm-r1", 3)], "3")])
    assert cache.seeded("ml", "glm")
    cache.expire("ml", "glm")
    assert not cache.seeded("ml", "glm")
    cache.forget("ml", "glm")
    assert cache.children("ml", "glm", [DEPLOYMENT]) == {}


def test_objects_of_others_are_ignored_and_kept_copies_are_slim() -> None:
    cache = _seeded(("Deployment", [], "1"), ("Pod", [], "1"))
    foreign = _obj("x", 2)
    foreign["metadata"]["labels"] = {"app": "x"}
    cache.stored("Deployment", foreign)
    managed = [{"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
               {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {}}]
    deployment = _obj("glm-r1", 3, spec={"replicas": 2})
    deployment["metadata"]["managedFields"] = managed
    cache.stored("Deployment", deployment)
    pod = _obj("p", 4, spec={"containers": [{"name": "engine"}]}, status={"phase": "Running", "conditions": [], "podIP": "x"})
    cache.stored("Pod", pod)
    held = cache.children("ml", "glm", [DEPLOYMENT])
    assert list(held) == [("Deployment", "glm-r1")]
    assert held[("Deployment", "glm-r1")]["metadata"]["managedFields"] == managed[:1]  # what replicas hand-over reads
    assert cache.pods("ml", "glm") == [{"metadata": pod["metadata"], "status": {"phase": "Running", "conditions": []}}]


def test_only_events_that_tell_something_new_ask_for_a_converge() -> None:
    cache = _seeded(("Deployment", [], "1"), ("Pod", [], "1"))
    applied = _obj("glm-r1", 5, spec={"replicas": 1})
    cache.stored("Deployment", applied)
    assert not cache.observe("Deployment", applied, deleted=False)  # the echo of the operator's own apply
    assert cache.observe("Deployment", _obj("glm-r1", 6, status={"readyReplicas": 1}), deleted=False)
    pod = _obj("p", 7, status={"phase": "Pending"})
    assert cache.observe("Pod", pod, deleted=False)
    assert not cache.observe("Pod", {**_obj("p", 8, status={"phase": "Pending", "podIP": "10.0.0.9"})}, deleted=False)
    assert cache.observe("Pod", _obj("p", 9, status={"phase": "Running"}), deleted=False)
    assert cache.observe("Pod", _obj("p", 9), deleted=True)
    assert not cache.observe("Pod", _obj("p", 9), deleted=True)
