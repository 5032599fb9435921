"""The converge path against an in-memory stand-in for the API server: what gets written, and when nothing does."""
from __future__ import annotations

import copy
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from autoglm_operator.reconcile.converge import GONE, Coalescer, Reconciler
from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.reconcile.kinds import CHILD_KINDS, HORIZONTAL_POD_AUTOSCALER, SCALED_OBJECT, Kind, capabilities_of
from autoglm_operator.rollout.canary import Check


class FakeCluster:
    """Keeps applied objects as the live ones and records every write."""

    def __init__(self, resource: dict[str, Any]) -> None:
        self.resource = resource
        self.live: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes: list[str] = []
        self.events: list[str] = []
        self.pods: list[dict[str, Any]] = []

    def get_resource(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.resource)

    def list_children(self, namespace: str, name: str, kinds: list[Kind], **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
        wanted = {k.kind for k in kinds}
        return {key: copy.deepcopy(obj) for key, obj in self.live.items() if key[0] in wanted}

    def list_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.pods)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        key = (obj["kind"], obj["metadata"]["name"])
        self.live[key] = {**copy.deepcopy(obj), "status": {}}
        self.writes.append(f"apply {key[0]} {key[1]}")
        return copy.deepcopy(self.live[key])

    def delete(self, kind: Kind, obj: dict[str, Any]) -> None:
        del self.live[(kind.kind, obj["metadata"]["name"])]
        self.writes.append(f"delete {kind.kind} {obj['metadata']['name']}")

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.resource["status"] = _merge_patch(self.resource.get("status", {}), patch)
        self.writes.append("status")


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies `application/merge-patch+json`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge_patch(merged.get(key), value)
    return merged


class FakeDiscovery:
    def __init__(self, kinds: tuple[Kind, ...]) -> None:
        self.kinds = frozenset(kinds)

    def served(self) -> frozenset[Kind]:
        return self.kinds

    def capabilities(self) -> Capabilities:
        return capabilities_of(self.kinds)


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
    assert cluster.events == ["Applied"]  # not Ready yet is no flip: no Event for it

    cluster.writes.clear()
    reconciler.converge("ml", "glm")
    reconciler.converge("ml", "glm")
    assert cluster.writes == []


def test_the_status_log_line_names_the_fields_written(make_cr, caplog):
    reconciler, cluster, _ = _setup(make_cr)
    with caplog.at_level("INFO", logger="autoglm.reconcile"):
        reconciler.converge("ml", "glm")
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("status ")]
    assert line == f"status resource=ml/glm phase={cluster.resource['status']['phase']} " \
                   f"changed={','.join(sorted(cluster.resource['status']))}"


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


def test_a_provider_the_cluster_lacks_is_a_condition_naming_what_to_install_then_nothing_repeats(make_cr):
    istio_only = tuple(k for k in CHILD_KINDS if k.kind not in ("HTTPRoute", "InferencePool"))
    reconciler, cluster, _ = _setup(make_cr, istio_only, traffic={"provider": "inference-pool", "parentRefs": [{"name": "gw"}]})
    reconciler.converge("ml", "glm")
    assert cluster.writes == ["status"]
    ready = cluster.resource["status"]["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "InvalidSpec")
    assert "install the Gateway API CRDs" in ready["message"] and "InferencePool CRD" in ready["message"]
    cluster.writes.clear()
    reconciler.converge("ml", "glm")
    assert cluster.writes == [] and cluster.events == ["InvalidSpec"], "no loop: the same condition is not written again"


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


def _ready(cluster: FakeCluster, deployment: str) -> None:
    """The Deployment and its one pod Ready (the pod 30 s after its creation)."""
    live = cluster.live[("Deployment", deployment)]
    live["metadata"]["generation"] = 1
    live["status"] = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1}
    labels = live["spec"]["template"]["metadata"]["labels"]
    cluster.pods = [p for p in cluster.pods if p["metadata"]["labels"] != labels] + [{
        "metadata": {"name": f"{deployment}-pod", "labels": labels, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:30Z"}]},
    }]


def test_a_new_model_switches_once_ready_then_the_old_revision_goes_and_writes_stop(make_cr):
    reconciler, cluster, _ = _setup(make_cr)
    reconciler.converge("ml", "glm")
    (old,) = [name for kind, name in cluster.live if kind == "Deployment"]
    _ready(cluster, old)
    reconciler.converge("ml", "glm")
    assert cluster.resource["status"]["currentRevision"] == old.removeprefix("glm-")

    cluster.resource["spec"]["model"]["name"] = "zai-org/GLM-4-9B-0414-v2"
    cluster.resource["metadata"]["generation"] = 2
    cluster.writes.clear()
    reconciler.converge("ml", "glm")
    (new,) = [name for kind, name in cluster.live if kind == "Deployment" and name != old]
    assert cluster.writes == [f"apply Deployment {new}", "apply DestinationRule glm", "status"]
    assert cluster.resource["status"]["currentRevision"] == old.removeprefix("glm-")

    _ready(cluster, new)
    cluster.writes.clear()
    reconciler.converge("ml", "glm")
    assert cluster.writes == ["apply VirtualService glm", "apply DestinationRule glm", f"delete Deployment {old}", "status"]
    assert cluster.resource["status"]["currentRevision"] == new.removeprefix("glm-")
    assert cluster.resource["status"]["coldStartSeconds"] == {new.removeprefix("glm-"): 30.0}, "the old one is dropped"
    assert "TrafficSwitched" in cluster.events

    cluster.writes.clear()
    reconciler.converge("ml", "glm")
    assert cluster.writes == []


def test_a_deleted_resource_is_left_to_the_garbage_collector(make_cr):
    reconciler, cluster, _ = _setup(make_cr)
    cluster.resource["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert reconciler.request("ml", "glm") == GONE, "what makes the ticks drop it (runtime/handlers.py)"
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


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


class _HealthyCanary:
    def run(self, *_: Any) -> list[Check]:
        return [Check("successRate", "Pass", 1.0, 1.0)]


def test_a_canary_step_is_recorded_before_the_route_follows_it_and_announced_after(make_cr):
    """An operator killed between the VirtualService write and the status write would decide the
    step again from the older status (maybe otherwise: weights backwards); recorded first, it resumes."""
    cr = make_cr(rollout={"steps": [{"weight": 5}, {"weight": 25}], "intervalSeconds": 10,
                          "analysis": {"prometheusAddress": "http://prometheus:9090"}})
    cr["metadata"].update(uid="uid-1", generation=1)
    cluster, clock = FakeCluster(cr), _Clock()
    reconciler = Reconciler(cluster, FakeDiscovery(CHILD_KINDS), lambda _, e: cluster.writes.append(f"event {e.reason}"),  # type: ignore[arg-type]
                            clock=clock, analyzer=_HealthyCanary())  # type: ignore[arg-type]
    reconciler.converge("ml", "glm")
    (old,) = [name for kind, name in cluster.live if kind == "Deployment"]
    _ready(cluster, old)
    reconciler.converge("ml", "glm")
    cluster.resource["spec"]["model"]["name"] = "zai-org/GLM-4-9B-0414-v2"
    cluster.resource["metadata"]["generation"] = 2
    reconciler.converge("ml", "glm")
    (new,) = [name for kind, name in cluster.live if kind == "Deployment" and name != old]
    _ready(cluster, new)
    for weight in (5, 25):
        cluster.writes.clear()
        reconciler.converge("ml", "glm")
        writes = cluster.writes
        assert writes[:3] == ["status", "event CanaryStep", "apply VirtualService glm"], writes
        assert cluster.resource["status"]["canary"]["weight"] == weight
        clock.now += timedelta(seconds=10)


def test_forecast_floor_changes_are_applied_without_events_and_shown_in_status(make_cr):
    """The predictor moves the floor all day: each change is applied, none is an Event (37 in 4 minutes
    were), and status.autoscaling says the minimum in effect and the forecast behind it, if any."""
    reconciler, cluster, _ = _setup(make_cr, autoscaling={"enabled": True, "maxReplicas": 8, "predictive": {"enabled": True}})
    reconciler.converge("ml", "glm")
    assert cluster.resource["status"]["autoscaling"] == {"minReplicas": 1, "forecast": "Missing"}
    assert cluster.events == ["Applied"]
    cluster.events.clear()
    for floor in (3, 5, 2):
        cluster.writes.clear()
        cluster.resource["status"]["forecast"] = {"recommendedMinReplicas": floor, "predicted": floor * 6.0,
                                                  "updatedAt": "2026-01-01T00:00:00Z"}
        reconciler.converge("ml", "glm")
        assert cluster.writes == ["apply ScaledObject glm", "status"]
        assert cluster.live[("ScaledObject", "glm")]["spec"]["minReplicaCount"] == floor
        assert cluster.resource["status"]["autoscaling"] == {"minReplicas": floor, "forecast": "Used", "predicted": floor * 6.0}
    # The forecast goes stale: the floor falls back and the forecast no longer shows as the one in effect.
    cluster.resource["status"]["forecast"]["updatedAt"] = "2025-12-31T23:00:00Z"
    reconciler.converge("ml", "glm")
    assert cluster.live[("ScaledObject", "glm")]["spec"]["minReplicaCount"] == 1
    assert cluster.resource["status"]["autoscaling"] == {"minReplicas": 1, "forecast": "Stale"}
    assert cluster.events == []
    # A change a human made is still announced.
    cluster.resource["spec"]["autoscaling"]["maxReplicas"] = 6
    reconciler.converge("ml", "glm")
    assert cluster.events == ["Applied"]


class _RefusingCluster(FakeCluster):
    """The API server refuses every apply of one kind, with its own message (as a quota, a policy or
    a webhook does), until `refusing` is cleared."""

    def __init__(self, resource: dict[str, Any], refusing: str, status: int = 422) -> None:
        super().__init__(resource)
        self.refusing: str | None = refusing
        self.status = status

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] == self.refusing:
            exc = ApiException(status=self.status, reason="Unprocessable Entity")
            exc.body = '{"kind":"Status","message":"Deployment.apps \\"x\\" is invalid: duplicate entries for key [name=\\"HF_HOME\\"]"}'
            raise exc
        return super().apply(obj)


def test_a_refused_apply_becomes_ready_false_with_the_servers_words_and_one_event(make_cr):
    cr = make_cr()
    cr["metadata"].update(uid="uid-1", generation=1)
    cluster = _RefusingCluster(cr, "Deployment")
    events: list[str] = []
    reconciler = Reconciler(cluster, FakeDiscovery(CHILD_KINDS), lambda resource, e: events.append(f"{e.type} {e.reason}"),  # type: ignore[arg-type]
                            clock=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))

    for _ in range(3):  # a converge per resync: the status is written once, the Event posted once
        reconciler.converge("ml", "glm")
    conditions = {c["type"]: c for c in cluster.resource["status"]["conditions"]}
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("False", "ApplyFailed")
    assert "duplicate entries for key" in conditions["Ready"]["message"]
    assert conditions["Ready"]["message"].startswith("apply of Deployment ")
    assert conditions["Degraded"]["status"] == "True"
    assert cluster.resource["status"]["observedGeneration"] == 1
    assert events == ["Warning ApplyFailed"]
    assert cluster.writes.count("status") == 1
    assert not any(w.startswith("delete") for w in cluster.writes), "nothing is pruned after a refused apply"

    cluster.refusing = None  # the cause fixed (a quota raised, a policy changed): the next resync recovers
    reconciler.converge("ml", "glm")
    assert {c["type"]: c["reason"] for c in cluster.resource["status"]["conditions"]}["Ready"] != "ApplyFailed"


def test_a_transient_refusal_is_reported_and_raised_for_kopfs_retry(make_cr):
    cr = make_cr()
    cr["metadata"].update(uid="uid-1", generation=1)
    cluster = _RefusingCluster(cr, "Service", status=500)
    reconciler = Reconciler(cluster, FakeDiscovery(CHILD_KINDS), lambda resource, e: None,  # type: ignore[arg-type]
                            clock=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(ApiException):
        reconciler.converge("ml", "glm")
    assert {c["type"]: c["reason"] for c in cluster.resource["status"]["conditions"]}["Ready"] == "ApplyFailed"


class _FailingCanary:
    def run(self, *_: Any) -> list[Check]:
        return [Check("successRate", "Fail", 0.5, 1.0, "below 0.95")]

    def in_flight(self, *_: Any) -> float | None:
        return None  # no reading: a retiring revision waits for its drain budget


def test_the_status_series_count_each_analysis_and_rollback_once_and_go_with_the_resource(make_cr):
    """reconcile/metrics.py from the converge's writes: a resync counts nothing, the analysis that
    rolls back counts once (recorded by the commit, not again by the status write after it), a
    restarted operator counts nothing again, and a deleted resource leaves no series."""
    from prometheus_client import REGISTRY

    cr = make_cr(rollout={"steps": [{"weight": 5}, {"weight": 25}], "intervalSeconds": 10, "failureLimit": 1,
                          "analysis": {"prometheusAddress": "http://prometheus:9090"}})
    cr["metadata"].update(uid="uid-1", generation=1, namespace="metrics-test")
    cluster, clock = FakeCluster(cr), _Clock()

    def operator() -> Reconciler:
        return Reconciler(cluster, FakeDiscovery(CHILD_KINDS), lambda *_: None, clock=clock,  # type: ignore[arg-type]
                          analyzer=_FailingCanary())  # type: ignore[arg-type]

    resource = {"namespace": "metrics-test", "autoglm_deployment": cr["metadata"]["name"]}

    def value(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, {**resource, **labels})

    reconciler = operator()
    reconciler.converge("metrics-test", "glm")
    (old,) = [name for kind, name in cluster.live if kind == "Deployment"]
    _ready(cluster, old)
    reconciler.converge("metrics-test", "glm")
    assert value("autoglm_deployment_condition", type="Ready", status="True", reason="Serving") == 1
    cluster.resource["spec"]["model"]["name"] = "zai-org/GLM-4-9B-0414-v2"
    cluster.resource["metadata"]["generation"] = 2
    reconciler.converge("metrics-test", "glm")
    (new,) = [name for kind, name in cluster.live if kind == "Deployment" and name != old]
    _ready(cluster, new)
    reconciler.converge("metrics-test", "glm")  # step 1: weight 5
    canary = cluster.resource["status"]["canary"]["revision"]
    assert value("autoglm_canary_weight", autoglm_revision=canary) == 5
    assert value("autoglm_canary_phase", phase="Progressing") == 1
    assert value("autoglm_deployment_condition", type="Ready", status="False", reason="CanaryProgressing") == 1
    reconciler.converge("metrics-test", "glm")  # a resync within the step: no analysis
    assert value("autoglm_canary_analysis_results_total", check="successRate", result="Fail") is None
    clock.now += timedelta(seconds=10)
    reconciler.converge("metrics-test", "glm")  # the analysis fails: rolled back
    assert cluster.resource["status"]["canary"]["phase"] == "RolledBack"
    for again in (reconciler, operator()):  # a resync, then a restarted operator
        assert value("autoglm_canary_analysis_results_total", check="successRate", result="Fail") == 1
        assert value("autoglm_canary_rollbacks_total") == 1
        assert (value("autoglm_canary_phase", phase="RolledBack"), value("autoglm_canary_weight", autoglm_revision=canary)) == (1, 0)
        clock.now += timedelta(seconds=10)
        again.converge("metrics-test", "glm")

    cluster.resource = None  # type: ignore[assignment]  # deleted: the next converge finds it gone
    reconciler.converge("metrics-test", "glm")
    assert [s for family in REGISTRY.collect() for s in family.samples
            if s.labels.get("namespace") == "metrics-test"] == []
