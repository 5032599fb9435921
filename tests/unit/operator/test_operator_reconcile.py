"""The converge path against an in-memory stand-in for the API server: what gets written, and when nothing does."""
from __future__ import annotations

import copy
import threading
from datetime import datetime, timezone
from typing import Any

from autoglm_operator.kinds import CHILD_KINDS, HORIZONTAL_POD_AUTOSCALER, SCALED_OBJECT, Kind
from autoglm_operator.reconcile import Coalescer, Reconciler


class FakeCluster:
    """Keeps applied objects as the live ones and records every write."""

    def __init__(self, resource: dict[str, Any]) -> None:
        self.resource = resource
        self.live: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes: list[str] = []
        self.events: list[str] = []

    def get_resource(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.resource)

    def list_children(self, namespace: str, name: str, kinds: list[Kind]) -> dict[tuple[str, str], dict[str, Any]]:
        wanted = {k.kind for k in kinds}
        return {key: copy.deepcopy(obj) for key, obj in self.live.items() if key[0] in wanted}

    def list_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return []

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        key = (obj["kind"], obj["metadata"]["name"])
        self.live[key] = {**copy.deepcopy(obj), "status": {}}
        self.writes.append(f"apply {key[0]} {key[1]}")
        return copy.deepcopy(self.live[key])

    def delete(self, kind: Kind, obj: dict[str, Any]) -> None:
        del self.live[(kind.kind, obj["metadata"]["name"])]
        self.writes.append(f"delete {kind.kind} {obj['metadata']['name']}")

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.resource["status"] = {**self.resource.get("status", {}), **copy.deepcopy(status)}
        self.writes.append("status")


class FakeDiscovery:
    def __init__(self, kinds: tuple[Kind, ...]) -> None:
        self.kinds = frozenset(kinds)

    def served(self) -> frozenset[Kind]:
        return self.kinds


def _setup(make_cr, kinds: tuple[Kind, ...] = CHILD_KINDS, **spec: Any) -> tuple[Reconciler, FakeCluster, FakeDiscovery]:
    cr = make_cr(**spec)
    cr["metadata"].update(uid="uid-1", generation=1)
    cluster, discovery = FakeCluster(cr), FakeDiscovery(kinds)
    events: list[str] = cluster.events
    reconciler = Reconciler(cluster, discovery, lambda resource, e: events.append(e.reason),  # type: ignore[arg-type]
                            clock=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))
    return reconciler, cluster, discovery


def test_first_converge_creates_everything_then_nothing_is_written(make_cr):
    reconciler, cluster, _ = _setup(make_cr)
    reconciler.converge("ml", "glm")
    assert [w.split()[1] for w in cluster.writes if w.startswith("apply")] == [
        "Deployment", "Service", "PodDisruptionBudget", "VirtualService", "DestinationRule", "PeerAuthentication",
        "AuthorizationPolicy"]
    assert cluster.writes[-1] == "status"
    for obj in cluster.live.values():
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert cluster.events == ["Applied", "PodsNotReady"]

    cluster.writes.clear()
    reconciler.converge("ml", "glm")
    reconciler.converge("ml", "glm")
    assert cluster.writes == []


def test_a_child_changed_by_someone_else_is_applied_again(make_cr):
    reconciler, cluster, _ = _setup(make_cr)
    reconciler.converge("ml", "glm")
    cluster.writes.clear()
    cluster.live[("Service", "glm")]["spec"]["ports"][0]["port"] = 9999
    del cluster.live[("PodDisruptionBudget", "glm")]
    reconciler.converge("ml", "glm")
    assert cluster.writes == ["apply Service glm", "apply PodDisruptionBudget glm"]


def test_an_invalid_spec_writes_only_its_status(make_cr):
    reconciler, cluster, _ = _setup(make_cr, runtime={"args": ["--port=1"]})
    reconciler.converge("ml", "glm")
    assert cluster.writes == ["status"]
    assert cluster.resource["status"]["conditions"][0]["reason"] == "InvalidSpec"
    assert cluster.events == ["InvalidSpec"]


def test_kinds_no_longer_rendered_are_pruned(make_cr):
    """KEDA installed after the fact: the HPA gives way to a ScaledObject."""
    without_keda = tuple(k for k in CHILD_KINDS if k != SCALED_OBJECT)
    reconciler, cluster, discovery = _setup(make_cr, without_keda, autoscaling={"enabled": True})
    reconciler.converge("ml", "glm")
    assert ("HorizontalPodAutoscaler", "glm") in cluster.live
    cluster.writes.clear()
    discovery.kinds = frozenset(CHILD_KINDS)
    reconciler.converge("ml", "glm")
    assert cluster.writes == ["apply ScaledObject glm", f"delete {HORIZONTAL_POD_AUTOSCALER.kind} glm"]


def test_a_deleted_resource_is_left_to_the_garbage_collector(make_cr):
    reconciler, cluster, _ = _setup(make_cr)
    cluster.resource["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    reconciler.converge("ml", "glm")
    assert cluster.writes == []


def test_coalescer_runs_once_more_for_requests_made_meanwhile():
    coalescer = Coalescer()
    started, release = threading.Event(), threading.Event()
    runs: list[int] = []

    def slow() -> None:
        runs.append(1)
        if len(runs) == 1:
            started.set()
            release.wait(5)

    worker = threading.Thread(target=coalescer.run, args=("k", slow))
    worker.start()
    started.wait(5)
    assert coalescer.run("k", slow) is False
    assert coalescer.run("k", slow) is False
    release.set()
    worker.join(5)
    assert len(runs) == 2, "two requests during the run cause one more run, not two"
    assert coalescer.run("k", slow) is True
    assert len(runs) == 3
