"""The pure converge plan with hand-built inputs: which writes, for which reasons, and the status patch with its Events."""
from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.revision import revision
from autoglm_operator.reconcile.diff import FIELD_MANAGER
from autoglm_operator.reconcile.plan import ChildrenPlan, LiveState, deployments, plan_children, plan_status
from autoglm_operator.render.desired import validate
from autoglm_operator.rollout.plan import Plan
from autoglm_operator.status.conditions import Event

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
ISTIO = Capabilities(keda=True, istio=True)
SITE = {"name": "site-a", "nodeLabels": {"autoglm.io/edge-group": "site-a"}}


def _resource(make_cr, **spec: Any) -> dict[str, Any]:
    cr = make_cr(**spec)
    cr["metadata"].update(uid="uid-1", generation=1)
    return cr


def _plan(cr: dict[str, Any], children: dict[tuple[str, str], dict[str, Any]], serving: str | None = None,
          keep: frozenset[str] | None = None, capabilities: Capabilities = ISTIO) -> tuple[ChildrenPlan, str]:
    inst = validate(cr, capabilities)
    desired = revision(inst.spec)
    serving = serving or desired
    traffic = Plan(serving=serving, keep=keep if keep is not None else frozenset({serving, desired}))
    return plan_children(inst, cr, capabilities, traffic, desired, children, NOW), desired


def _live(writes: ChildrenPlan) -> dict[tuple[str, str], dict[str, Any]]:
    """The children as they are once `writes` are applied (the server echoes the object)."""
    return {a.key: copy.deepcopy(a.obj) for a in writes.applies}


def test_nothing_live_creates_every_object_owned_and_announces_each(make_cr):
    cr = _resource(make_cr)
    writes, desired = _plan(cr, {})
    assert [a.key for a in writes.applies] == [
        ("Deployment", f"glm-{desired}"), ("Service", "glm"), ("PodDisruptionBudget", "glm"), ("VirtualService", "glm"),
        ("DestinationRule", "glm"), ("PeerAuthentication", "glm"), ("AuthorizationPolicy", "glm")]
    assert {a.reason.text for a in writes.applies} == {"created"}
    assert all(a.obj["metadata"]["ownerReferences"][0]["uid"] == "uid-1" for a in writes.applies)
    assert writes.prune == () and writes.rescaled == 0
    assert writes.changes()[0] == f"created Deployment glm-{desired}"


def test_children_that_hold_the_plan_need_no_write(make_cr):
    cr = _resource(make_cr)
    first, _ = _plan(cr, {})
    again, _ = _plan(cr, _live(first))
    assert again.applies == () and again.prune == () and again.changes() == []


def test_revisions_outside_keep_and_kinds_no_longer_rendered_are_pruned(make_cr):
    cr = _resource(make_cr)
    first, desired = _plan(cr, {})
    live = _live(first)
    old = copy.deepcopy(live[("Deployment", f"glm-{desired}")])
    old["metadata"]["name"] = "glm-old"
    live[("Deployment", "glm-old")] = old
    live[("HorizontalPodAutoscaler", "glm")] = {"metadata": {"name": "glm"}}
    live[("Service", "glm-going")] = {"metadata": {"name": "glm-going", "deletionTimestamp": "2026-01-01T00:00:00Z"}}

    writes, _ = _plan(cr, live)
    assert writes.prune == (("Deployment", "glm-old"), ("HorizontalPodAutoscaler", "glm"))
    assert writes.changes() == ["deleted Deployment glm-old", "deleted HorizontalPodAutoscaler glm"]

    kept, _ = _plan(cr, live, keep=frozenset({desired, "old"}))
    assert kept.prune == (("HorizontalPodAutoscaler", "glm"),), "a kept revision's Deployment stays"


def test_a_replica_change_alone_is_routine_and_not_announced(make_cr):
    first, desired = _plan(_resource(make_cr, replicas=1), {})
    writes, _ = _plan(_resource(make_cr, replicas=3), _live(first))
    (step,) = writes.applies
    assert step.key == ("Deployment", f"glm-{desired}")
    assert step.reason.routine and step.reason.text == "rescaled spec.replicas 1 -> 3"
    assert writes.rescaled == 1 and writes.changes() == []


def test_replicas_are_handed_over_before_autoscaling_takes_them(make_cr):
    first, desired = _plan(_resource(make_cr, replicas=2), {})
    live = _live(first)
    deployment = live[("Deployment", f"glm-{desired}")]
    deployment["metadata"]["managedFields"] = [
        {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]

    writes, _ = _plan(_resource(make_cr, replicas=2, autoscaling={"enabled": True}), live)
    by_key = {a.key: a for a in writes.applies}
    assert by_key[("Deployment", f"glm-{desired}")].handover == 2
    assert by_key[("ScaledObject", "glm")].handover is None


def test_edge_objects_wait_while_a_new_revision_does_not_serve(make_cr):
    kubeedge = Capabilities(kubeedge=True)
    cr = _resource(make_cr, edge=[SITE])
    first, desired = _plan(cr, {}, capabilities=kubeedge)
    assert first.node_groups and first.kubeedge and not first.held
    edge_app = next(a.key for a in first.applies if a.key[0] == "EdgeApplication")

    cr["spec"]["model"]["name"] = "zai-org/GLM-4-9B-0414-v2"
    writes, new = _plan(cr, _live(first), serving=desired, capabilities=kubeedge)
    assert new != desired and writes.held
    assert edge_app not in {a.key for a in writes.applies}
    assert edge_app not in writes.prune


def _status_inputs(make_cr, status: dict[str, Any]) -> tuple[Any, dict[str, Any], str, LiveState]:
    cr = _resource(make_cr)
    cr["status"] = status
    first, desired = _plan(cr, {})
    return validate(cr, ISTIO), cr, desired, LiveState(_live(first), pods=[])


def test_the_status_patch_is_followed_by_transitions_then_the_rollout_events(make_cr):
    inst, cr, desired, live = _status_inputs(make_cr, {})
    step = Event("Normal", "CanaryStep", "5%")
    change = plan_status(inst, cr, desired, Plan(serving=desired, keep=frozenset({desired}), events=(step,)),
                         False, live, NOW, NOW)
    assert change.patch is not None
    assert change.patch["currentRevision"] == desired and change.patch["observedGeneration"] == 1
    assert change.phase == change.patch["phase"]
    assert change.events == (step,), "a new resource's first not-Ready is no flip; the rollout's Event follows"

    cr["status"] = {**change.patch}
    again = plan_status(inst, cr, desired, Plan(serving=desired, keep=frozenset({desired}), events=(step,)),
                        False, live, NOW, NOW)
    assert again.patch is None and again.events == (step,), "no patch, yet the rollout's Events are posted"


def test_a_committed_traffic_decision_is_neither_patched_nor_announced_again(make_cr):
    inst, cr, desired, live = _status_inputs(make_cr, {"currentRevision": "old"})
    commit = {"currentRevision": desired}
    traffic = Plan(serving=desired, keep=frozenset({desired}), canary=None,
                   events=(Event("Normal", "CanaryStep", "x"),), commit=commit)
    change = plan_status(inst, cr, desired, traffic, False, live, NOW, NOW)
    assert change.patch is not None and "currentRevision" not in change.patch
    assert [e.reason for e in change.events] == ["TrafficSwitched"], "the switch since the converge's start, once"


def test_deployments_by_revision_label():
    children = {
        ("Deployment", "glm-a"): {"metadata": {"name": "glm-a", "labels": {"autoglm.io/revision": "a"}}},
        ("Deployment", "glm-edge"): {"metadata": {"name": "glm-edge", "labels": {}}},
        ("Service", "glm"): {"metadata": {"name": "glm", "labels": {"autoglm.io/revision": "a"}}},
    }
    assert deployments(children) == {"a": children[("Deployment", "glm-a")]}
