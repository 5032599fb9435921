"""The status the operator reports, computed from what it observed; and the Events its changes deserve.

Pure functions of (previous status, observation, now). `now` is used only for conditions that
change, so an unchanged world yields an identical status and the operator writes nothing.
Ready/Progressing/Degraded follow the Kubernetes condition conventions, and `observedGeneration`
is an integer, so `kubectl wait --for=condition=Ready`, kstatus and Argo CD can read them.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from autoglm_operator.api.labels import REVISION_LABEL
from autoglm_operator.api.timestamps import format_time, parse_time
from autoglm_operator.status.edge import edge_problem
from autoglm_operator.status.readiness import ready_replicas, unschedulable, wanted_replicas

CONDITION_TYPES = ("Ready", "Progressing", "Degraded")

# Reasons the resource cannot reach its spec without someone changing something.
# ApplyFailed: the API server refused a child (an admission webhook or policy, a quota, RBAC, a
# schema the cluster's CRD version has): retried at every resync, shown until it passes.
# AutoscalerFailed: the only one with Ready True (the pods serve, at a count nothing adjusts; see compute_status).
FAILURE_REASONS = {"InvalidSpec", "ApplyFailed", "Unschedulable", "ProgressDeadlineExceeded", "RolledBack", "Aborted",
                   "AutoscalerFailed"}


@dataclasses.dataclass(frozen=True)
class Observation:
    """What one reconcile saw, after deciding which revision serves."""

    generation: int
    desired: str
    serving: str
    selector: str
    deployments: Mapping[str, Mapping[str, Any]]  # revision -> live Deployment
    pods: Sequence[Mapping[str, Any]]  # live pods of every revision
    edge: Sequence[Mapping[str, Any]] = ()  # status.edge entries (status.edge.edge_status)
    verdict: Verdict | None = None  # a canary's verdict (canary.py) overrides the readiness one
    autoscaling: Mapping[str, Any] | None = None  # status.autoscaling (autoscaling.autoscaling_status)
    autoscaler: tuple[str, str] | None = None  # (reason, message) when the ScaledObject/HPA cannot scale (readiness.autoscaler_problem)
    routing: tuple[str, str] | None = None  # (reason, message) when the serving revision's endpoint picker is not Ready (routing.picker_problem)


@dataclasses.dataclass(frozen=True)
class Verdict:
    ready: bool
    reason: str
    message: str
    progress: str | None = None  # why the resource is still moving towards its spec, if it is


@dataclasses.dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


def compute_status(previous: Mapping[str, Any], obs: Observation, now: datetime) -> dict[str, Any]:
    """The status fields the reconciler owns (others, such as `forecast`, belong to other writers)."""
    verdict = judge(obs)
    serving = obs.deployments.get(obs.serving, {})
    status: dict[str, Any] = {
        "observedGeneration": obs.generation,
        "replicas": int(serving.get("status", {}).get("replicas", 0)),
        "readyReplicas": ready_replicas(serving) if serving else 0,
        "currentRevision": obs.serving,
        "selector": obs.selector,
    }
    status["coldStartSeconds"] = cold_start_seconds(previous.get("coldStartSeconds") or {}, obs.pods, set(obs.deployments))
    status["edge"] = [dict(e) for e in obs.edge] or None  # null clears it once the last group goes
    status["autoscaling"] = dict(obs.autoscaling) if obs.autoscaling else None
    problem = edge_problem(obs.edge) or obs.autoscaler
    if obs.autoscaler and verdict.ready:
        # Serving, but at a count nothing adjusts: Ready stays True (traffic is served, `kubectl wait` holds)
        # and no longer says Serving; Degraded says why.
        verdict = dataclasses.replace(verdict, reason=obs.autoscaler[0], message=f"{verdict.message}; {obs.autoscaler[1]}")
    return {**status, **_conditions(previous, obs.generation, verdict, now, problem)}


def invalid_status(previous: Mapping[str, Any], generation: int, message: str, now: datetime) -> dict[str, Any]:
    """Only the generation and conditions: what runs from the last valid spec is left as it is."""
    return failed_status(previous, generation, "InvalidSpec", message, now)


def failed_status(previous: Mapping[str, Any], generation: int, reason: str, message: str, now: datetime) -> dict[str, Any]:
    """The generation and Ready=False/Degraded=True with `reason` (one of FAILURE_REASONS) and
    `message`; the other fields keep what the last complete converge reported."""
    verdict = Verdict(ready=False, reason=reason, message=message)
    return {"observedGeneration": generation, **_conditions(previous, generation, verdict, now)}


def judge(obs: Observation) -> Verdict:
    """Ready means the spec's revision serves traffic with at least one Ready pod, and so does every
    edge group that wants pods (`_with_edge`), and the serving revision's endpoint picker, if the
    operator runs one, is Ready (`routing`)."""
    verdict = obs.verdict if obs.verdict is not None else _with_edge(_judge_cloud(obs), obs.edge)
    if obs.routing and verdict.ready:
        # The gateway reaches the pods only through the picker: not Ready while it is not (a canary too).
        return Verdict(False, obs.routing[0], f"{obs.routing[1]}; {verdict.message}", verdict.progress)
    return verdict


def _judge_cloud(obs: Observation) -> Verdict:
    revisions = {obs.desired, obs.serving}
    pods = [p for p in obs.pods if p["metadata"].get("labels", {}).get(REVISION_LABEL) in revisions]
    problem = unschedulable(pods) or _deadline_exceeded(obs.deployments.get(obs.desired))
    if problem:
        return Verdict(False, *problem)
    new = obs.deployments.get(obs.desired)
    if obs.serving != obs.desired:
        ready = ready_replicas(new) if new else 0
        wanted = wanted_replicas(new) if new else 0
        message = f"revision {obs.desired} starting ({ready}/{wanted} pods Ready); revision {obs.serving} serves traffic"
        return Verdict(False, "RolloutInProgress", message, "RolloutInProgress")
    if new is None:
        return Verdict(False, "PodsNotReady", f"revision {obs.desired}: no Deployment yet", "PodsStarting")
    ready, wanted = ready_replicas(new), wanted_replicas(new)
    counts = f"revision {obs.desired}: {ready}/{wanted} pods Ready"
    if ready == 0 and wanted > 0:
        return Verdict(False, "PodsNotReady", counts, "PodsStarting")
    return Verdict(True, "Serving", counts, "PodsStarting" if ready < wanted else None)


def _with_edge(cloud: Verdict, edge: Sequence[Mapping[str, Any]]) -> Verdict:
    """The cloud's verdict, made un-Ready (`EdgeNotReady`) while an edge group that wants pods has no
    Ready pod: the model is not served everywhere the spec says. Edge pods on a site that lost its
    cloud link count as not Ready (the node controller marks them so), which is all the cloud knows.
    Progressing stays True while a group without a placement problem is still short of pods."""
    if not cloud.ready:
        return cloud
    waiting = [g for g in edge if int(g.get("desired") or 0) > 0 and not int(g.get("ready") or 0)]
    starting = any(int(g.get("ready") or 0) < int(g.get("desired") or 0) and not g.get("reason") for g in edge)
    progress = cloud.progress or ("EdgePodsStarting" if starting else None)
    if not waiting:
        return dataclasses.replace(cloud, progress=progress)
    groups = "; ".join(f"edge group {g['name']}: {int(g.get('ready') or 0)}/{int(g['desired'])} pods Ready"
                       + (f" ({g['reason']})" if g.get("reason") else "") for g in waiting)
    return Verdict(False, "EdgeNotReady", f"{groups}; {cloud.message}", progress)


def _deadline_exceeded(deployment: Mapping[str, Any] | None) -> tuple[str, str] | None:
    for cond in (deployment or {}).get("status", {}).get("conditions", []):
        if cond["type"] == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return "ProgressDeadlineExceeded", f"Deployment {deployment['metadata']['name']}: {cond.get('message', '')}"
    return None


def _conditions(
    previous: Mapping[str, Any], generation: int, verdict: Verdict, now: datetime, edge: tuple[str, str] | None = None
) -> dict[str, Any]:
    """`edge`: an edge group that cannot be placed, or an autoscaler that cannot scale, makes the
    resource Degraded (and not Progressing, unless something else still is); Ready counts the edge
    groups' Ready pods in `judge`."""
    failed = verdict.reason in FAILURE_REASONS
    wanted = {
        "Ready": ("True" if verdict.ready else "False", verdict.reason, verdict.message),
        "Progressing": (
            ("True", verdict.progress, verdict.message) if verdict.progress
            else ("False", verdict.reason, verdict.message) if failed
            else ("False", "Complete", verdict.message)
        ),
        "Degraded": ("True" if failed else "False", verdict.reason if failed else "AsExpected", verdict.message if failed else ""),
    }
    if edge and not failed:
        wanted["Degraded"] = ("True", *edge)
        if not verdict.progress:
            wanted["Progressing"] = ("False", *edge)
    old = {c["type"]: c for c in previous.get("conditions") or []}
    conditions = []
    for kind in CONDITION_TYPES:
        status, reason, message = wanted[kind]
        before = old.get(kind, {})
        changed_at = before.get("lastTransitionTime") if before.get("status") == status else None
        conditions.append({
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": changed_at or format_time(now),
            "observedGeneration": generation,
        })
    degraded = wanted["Degraded"][0] == "True"
    phase = "Degraded" if degraded else "Ready" if verdict.ready else "Paused" if verdict.reason == "RolloutPaused" else "Progressing"
    return {"phase": phase, "conditions": conditions}


def cold_start_seconds(
    previous: Mapping[str, float], pods: Sequence[Mapping[str, Any]], revisions: set[str]
) -> dict[str, float]:
    """Pod creation to Ready, per revision: the slowest Ready pod, since a forecast lead time must cover it.

    A revision without a Ready pod keeps its last measurement; retired revisions are dropped.
    """
    measured: dict[str, float] = {}
    for pod in pods:
        rev = pod["metadata"].get("labels", {}).get(REVISION_LABEL)
        ready_at = next(
            (c.get("lastTransitionTime") for c in pod.get("status", {}).get("conditions", [])
             if c["type"] == "Ready" and c["status"] == "True"),
            None,
        )
        if rev not in revisions or not ready_at:
            continue
        seconds = (parse_time(ready_at) - parse_time(pod["metadata"]["creationTimestamp"])).total_seconds()
        measured[rev] = max(measured.get(rev, 0.0), seconds)
    return {rev: measured.get(rev, previous.get(rev)) for rev in sorted(revisions) if rev in measured or rev in previous}


def status_patch(live: Mapping[str, Any], computed: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch that makes the computed fields of `live` equal `computed`; None if they are.

    Fields the reconciler does not compute (`forecast`, `canary`) are left out. A merge patch
    merges maps key by key, so keys a computed map no longer has (a retired revision's cold
    start) are set to null, and a missing map counts as empty.
    """
    patch: dict[str, Any] = {}
    for key, value in computed.items():
        old = live.get(key, {} if isinstance(value, dict) else None)
        if old == value:
            continue
        if isinstance(value, dict) and isinstance(old, dict):
            patch[key] = {**{gone: None for gone in old if gone not in value}, **value}
        else:
            patch[key] = value
    return patch or None


def transition_events(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Event]:
    """Events for what a human watching `kubectl describe` wants to know: traffic moves and Ready flips."""
    events = []
    old_rev, new_rev = before.get("currentRevision"), after.get("currentRevision")
    if old_rev and new_rev and old_rev != new_rev:
        events.append(Event("Normal", "TrafficSwitched", f"revision {new_rev} now serves traffic (was {old_rev})"))
    old_ready = _condition(before, "Ready")
    new_ready = _condition(after, "Ready")
    if new_ready and (old_ready.get("status"), old_ready.get("reason")) != (new_ready["status"], new_ready["reason"]):
        kind = "Warning" if new_ready["reason"] in FAILURE_REASONS else "Normal"
        # A new resource's first "not Ready yet" is no flip (its Applied Event says it started): one write less per resource.
        if old_ready or new_ready["status"] == "True" or kind == "Warning":
            events.append(Event(kind, new_ready["reason"], new_ready["message"]))
    return events


def _condition(status: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})
