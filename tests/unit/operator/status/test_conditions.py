"""Status and conditions computed from observations, and the Events their transitions deserve."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from autoglm_operator.status.conditions import (
    Event,
    Observation,
    cold_start_seconds,
    compute_status,
    invalid_status,
    judge,
    status_patch,
    transition_events,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _deployment(name: str, ready: int, wanted: int = 1, deadline: bool = False) -> dict:
    conditions = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                   "message": "ReplicaSet has timed out progressing."}] if deadline else []
    return {"metadata": {"name": name, "generation": 1}, "spec": {"replicas": wanted},
            "status": {"observedGeneration": 1, "replicas": wanted, "updatedReplicas": ready, "readyReplicas": ready,
                       "conditions": conditions}}


def _pod(name: str, rev: str, created: str = "2026-01-01T00:00:00Z", ready_at: str | None = None,
         unschedulable: str | None = None) -> dict:
    conditions = []
    if ready_at:
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": ready_at})
    if unschedulable:
        conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": unschedulable})
    return {"metadata": {"name": name, "labels": {"autoglm.io/revision": rev}, "creationTimestamp": created},
            "status": {"conditions": conditions}}


def _obs(desired: str = "r1", serving: str = "r1", deployments: dict | None = None, pods: list | None = None) -> Observation:
    return Observation(generation=3, desired=desired, serving=serving, selector=f"autoglm.io/instance=glm,autoglm.io/revision={serving}",
                       deployments=deployments or {}, pods=pods or [])


def _conditions(status: dict) -> dict:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_serving_with_every_pod_ready():
    pods = [_pod("p1", "r1", ready_at="2026-01-01T00:01:30Z")]
    status = compute_status({}, _obs(deployments={"r1": _deployment("glm-r1", ready=1)}, pods=pods), T0)
    assert _conditions(status) == {"Ready": ("True", "Serving"), "Progressing": ("False", "Complete"),
                                   "Degraded": ("False", "AsExpected")}
    assert status["observedGeneration"] == 3
    assert (status["replicas"], status["readyReplicas"], status["currentRevision"]) == (1, 1, "r1")
    assert status["selector"] == "autoglm.io/instance=glm,autoglm.io/revision=r1"
    assert status["coldStartSeconds"] == {"r1": 90.0}
    assert status["phase"] == "Ready"
    assert all(c["observedGeneration"] == 3 and c["lastTransitionTime"] == "2026-01-01T00:00:00Z" for c in status["conditions"])


def test_an_autoscaler_that_cannot_scale_makes_a_serving_resource_degraded():
    """Pods serve at a count nothing adjusts: Ready stays True (kubectl wait) but no longer says Serving."""
    obs = _obs(deployments={"r1": _deployment("glm-r1", ready=1)})
    broken = ("AutoscalerFailed", "ScaledObject glm not Ready (ScaledObjectCheckFailed): no such host")
    status = compute_status({}, Observation(**{**obs.__dict__, "autoscaler": broken}), T0)
    assert _conditions(status) == {"Ready": ("True", "AutoscalerFailed"), "Progressing": ("False", "AutoscalerFailed"),
                                   "Degraded": ("True", "AutoscalerFailed")}
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["message"] == "revision r1: 1/1 pods Ready; " + broken[1]
    assert status["phase"] == "Degraded"
    serving = compute_status({}, obs, T0)
    assert transition_events(serving, status) == [Event("Warning", "AutoscalerFailed", ready["message"])]
    starting = compute_status({}, Observation(**{**_obs().__dict__, "autoscaler": broken}), T0)
    assert _conditions(starting)["Ready"] == ("False", "PodsNotReady"), "not serving yet: that comes first"


def test_pods_starting_and_scaling_up():
    assert judge(_obs(deployments={"r1": _deployment("glm-r1", ready=0)})).reason == "PodsNotReady"
    scaling = judge(_obs(deployments={"r1": _deployment("glm-r1", ready=1, wanted=3)}))
    assert (scaling.ready, scaling.progress) == (True, "PodsStarting")
    assert judge(_obs()).reason == "PodsNotReady", "no Deployment yet"
    assert judge(_obs(deployments={"r1": _deployment("glm-r1", ready=0, wanted=0)})).ready, "scaled to zero on purpose"


def test_rollout_in_progress_while_the_old_revision_serves():
    obs = _obs(desired="r2", serving="r1", deployments={"r1": _deployment("glm-r1", 2, 2), "r2": _deployment("glm-r2", 0)})
    status = compute_status({}, obs, T0)
    assert _conditions(status)["Ready"] == ("False", "RolloutInProgress")
    assert _conditions(status)["Progressing"] == ("True", "RolloutInProgress")
    assert status["currentRevision"] == "r1"
    assert "revision r2 starting (0/1 pods Ready); revision r1 serves traffic" in status["conditions"][0]["message"]


def test_unschedulable_pod_names_the_scheduler_message():
    message = "0/5 nodes are available: 2 Insufficient nvidia.com/gpu."
    obs = _obs(deployments={"r1": _deployment("glm-r1", 0)}, pods=[_pod("p1", "r1", unschedulable=message)])
    status = compute_status({}, obs, T0)
    assert _conditions(status) == {"Ready": ("False", "Unschedulable"), "Progressing": ("False", "Unschedulable"),
                                   "Degraded": ("True", "Unschedulable")}
    assert status["conditions"][0]["message"] == f"pod p1 cannot be scheduled: {message}"
    assert status["phase"] == "Degraded"
    retired = _obs(deployments={"r1": _deployment("glm-r1", 1)}, pods=[_pod("p0", "r0", unschedulable=message)])
    assert judge(retired).ready, "pods of other revisions do not count"


def test_progress_deadline_exceeded_is_degraded():
    verdict = judge(_obs(deployments={"r1": _deployment("glm-r1", 0, deadline=True)}))
    assert (verdict.ready, verdict.reason) == (False, "ProgressDeadlineExceeded")
    assert "timed out" in verdict.message


def test_invalid_spec_touches_only_generation_and_conditions():
    status = invalid_status({"currentRevision": "r1"}, 4, "spec.runtime.args: --port is set by the operator", T0)
    assert set(status) == {"observedGeneration", "phase", "conditions"}
    assert _conditions(status)["Ready"] == ("False", "InvalidSpec")
    assert _conditions(status)["Degraded"] == ("True", "InvalidSpec")
    assert status["conditions"][0]["message"] == "spec.runtime.args: --port is set by the operator"


def test_transition_time_moves_only_when_status_flips():
    obs = _obs(deployments={"r1": _deployment("glm-r1", ready=1)})
    first = compute_status({}, obs, T0)
    later = T0 + timedelta(minutes=5)
    assert compute_status(first, obs, later) == first, "an unchanged world gives an identical status"
    scaled = compute_status(first, _obs(deployments={"r1": _deployment("glm-r1", ready=1, wanted=2)}), later)
    ready = scaled["conditions"][0]
    assert (ready["status"], ready["lastTransitionTime"]) == ("True", "2026-01-01T00:00:00Z"), "message changed, status did not"
    assert scaled["conditions"][1]["lastTransitionTime"] == "2026-01-01T00:05:00Z", "Progressing flipped to True"


def test_cold_start_is_the_slowest_ready_pod_and_survives_until_retired():
    pods = [
        _pod("a", "r1", ready_at="2026-01-01T00:02:00Z"),
        _pod("b", "r1", created="2026-01-01T00:00:30Z", ready_at="2026-01-01T00:05:00Z"),
        _pod("c", "r2"),
    ]
    assert cold_start_seconds({"r2": 42.0, "r0": 7.0}, pods, {"r1", "r2"}) == {"r1": 270.0, "r2": 42.0}
    assert cold_start_seconds({}, [_pod("c", "r2")], {"r2"}) == {}
    assert compute_status({}, _obs(), T0)["coldStartSeconds"] == {}


def test_status_patch_holds_only_what_differs():
    live = {"observedGeneration": 1, "forecast": {"predicted": 3.0}, "coldStartSeconds": {"r1": 1}}
    assert status_patch(live, {"observedGeneration": 1, "coldStartSeconds": {"r1": 1.0}}) is None
    assert status_patch(live, {"observedGeneration": 2, "coldStartSeconds": {"r1": 1}}) == {"observedGeneration": 2}


def test_status_patch_removes_map_keys_that_are_gone():
    """A merge patch would otherwise keep a retired revision's cold start forever (and patch forever)."""
    live = {"coldStartSeconds": {"r1": 5, "r2": 7}}
    assert status_patch(live, {"coldStartSeconds": {"r2": 7}}) == {"coldStartSeconds": {"r1": None, "r2": 7}}
    assert status_patch({}, {"coldStartSeconds": {}}) is None, "a missing map is an empty one"


def test_events_for_traffic_moves_and_ready_flips():
    before = compute_status({}, _obs(deployments={"r1": _deployment("glm-r1", 1)}), T0)
    unschedulable = _obs(desired="r2", serving="r2", deployments={"r2": _deployment("glm-r2", 0)},
                         pods=[_pod("p", "r2", unschedulable="0/5 nodes are available")])
    after = compute_status(before, unschedulable, T0)
    assert transition_events(before, after) == [
        Event("Normal", "TrafficSwitched", "revision r2 now serves traffic (was r1)"),
        Event("Warning", "Unschedulable", "pod p cannot be scheduled: 0/5 nodes are available"),
    ]
    assert transition_events(after, after) == []
    assert transition_events({}, before) == [Event("Normal", "Serving", "revision r1: 1/1 pods Ready")]


def test_a_new_resource_that_is_not_ready_yet_posts_no_ready_event() -> None:
    starting = compute_status({}, _obs(deployments={"r1": _deployment("glm-r1", 0)}, pods=[]), T0)
    assert next(c for c in starting["conditions"] if c["type"] == "Ready")["status"] == "False"
    assert transition_events({}, starting) == []
