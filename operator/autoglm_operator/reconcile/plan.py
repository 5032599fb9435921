"""One converge's writes, decided without I/O; `converge.py` reads, executes the plans, and reads again.

`rollout/plan.py` decides the traffic: which revision serves, the canary's route, which revisions'
Deployments to keep, the status patch to commit first. From that `Plan`, the spec and the observed
children, this module decides the rest in two pure steps, so each can be tested with hand-built inputs:

- `plan_children`: the objects to apply (with their `diff.ApplyReason` and a replica count to hand
  over first), the children to prune, the desired NodeGroups;
- `plan_status`: the status patch and the Events to post after it. It is a second step because the
  status is computed from the children as the writes left them (an apply returns the server's copy,
  so a Deployment created by this converge is in it) and from pods read after the writes.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.labels import REVISION_LABEL, deployment_name, selector_string
from autoglm_operator.api.spec import Instance
from autoglm_operator.reconcile import edge_sync
from autoglm_operator.reconcile.apply import owned
from autoglm_operator.reconcile.diff import (
    ApplyReason,
    ObjectKey,
    apply_reason,
    fingerprinted,
    object_key,
    prunable,
    replicas_to_hand_over,
)
from autoglm_operator.reconcile.kinds import DEPLOYMENT, HORIZONTAL_POD_AUTOSCALER, SCALED_OBJECT
from autoglm_operator.render.autoscaling import autoscaling_status
from autoglm_operator.render.desired import render
from autoglm_operator.render.edge import is_edge
from autoglm_operator.render.gateway import picker_name
from autoglm_operator.rollout.plan import UNCHANGED, Plan
from autoglm_operator.status.conditions import Event, Observation, compute_status, status_patch, transition_events
from autoglm_operator.status.edge import edge_status, live_revision
from autoglm_operator.status.readiness import autoscaler_problem
from autoglm_operator.status.routing import picker_problem

Children = Mapping[ObjectKey, Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class Apply:
    """One child to apply, and why; `handover` is the live replica count to hand to another field
    manager before the apply stops setting it (`diff.replicas_to_hand_over`), else None."""

    obj: dict[str, Any]  # owned and fingerprinted
    reason: ApplyReason
    handover: int | None = None

    @property
    def key(self) -> ObjectKey:
        return object_key(self.obj)


@dataclasses.dataclass(frozen=True)
class ChildrenPlan:
    """The child writes of one converge, executed in this order: applies, prunes, NodeGroups."""

    applies: tuple[Apply, ...]
    prune: tuple[ObjectKey, ...]  # namespaced children no longer desired
    node_groups: tuple[dict[str, Any], ...]  # the desired cluster-scoped NodeGroups (edge_sync.sync_node_groups)
    kubeedge: bool  # NodeGroups are synced only where KubeEdge is served
    held: bool  # a new revision does not serve yet: edge objects stay as they are (edge_sync.py)

    def changes(self) -> list[str]:
        """The applies and prunes that earn the `Applied` Event, in write order; routine rescales do not (diff.py)."""
        applied = [f"{a.reason} {a.key[0]} {a.key[1]}" for a in self.applies if not a.reason.routine]
        return applied + [f"deleted {kind} {name}" for kind, name in self.prune]

    @property
    def rescaled(self) -> int:
        """Routine applies: they change the cluster but are only logged."""
        return sum(1 for a in self.applies if a.reason.routine)


def plan_children(
    inst: Instance,
    resource: Mapping[str, Any],
    capabilities: Capabilities,
    traffic: Plan,
    desired: str,
    children: Children,
    judged_at: datetime,
) -> ChildrenPlan:
    """The writes that bring `children` (the live ones, by key) to the render of `inst` under `traffic`.

    `judged_at` is when status.forecast (the predictor's) is judged fresh or stale for the floor;
    `plan_status` must get the same instant, so the render and status.autoscaling agree.
    """
    status = resource.get("status") or {}
    rendered = render(inst, capabilities, traffic.serving, forecast=status.get("forecast"), now=judged_at,
                      route=traffic.route)
    if desired not in traffic.keep:  # a rolled-back canary, retired after its drain delay
        desired_deployment = (DEPLOYMENT.kind, deployment_name(inst, desired))
        rendered = [o for o in rendered if (o["kind"], o["metadata"]["name"]) != desired_deployment]
    held = traffic.serving != desired  # edge groups move to a new revision once it serves (docs/edge.md)
    objects, node_groups = edge_sync.split([fingerprinted(owned(obj, resource)) for obj in rendered], held)
    applies = []
    for obj in objects:
        live = children.get(object_key(obj))
        reason = apply_reason(obj, live)
        if reason:
            applies.append(Apply(obj, reason, replicas_to_hand_over(obj, live)))
    keep = {object_key(obj) for obj in objects}
    keep |= {(DEPLOYMENT.kind, deployment_name(inst, rev)) for rev in traffic.keep}
    keep |= edge_sync.held_keys(children, held)
    return ChildrenPlan(tuple(applies), tuple(prunable(children, keep)), tuple(node_groups), capabilities.kubeedge, held)


@dataclasses.dataclass(frozen=True)
class LiveState:
    """What the status is computed from, read after the child writes."""

    children: Children  # as the writes left them: applied ones as the server returned them, pruned ones gone
    pods: Sequence[Mapping[str, Any]]  # the resource's pods, every revision
    nodes: Sequence[Mapping[str, Any]] = ()  # read only with spec.edge
    edge_pods: Sequence[Mapping[str, Any]] = ()  # read only with spec.edge


@dataclasses.dataclass(frozen=True)
class StatusPlan:
    """The status write and the Events that follow it (posted after it: a converge that dies before
    the write decides, and announces, again)."""

    patch: dict[str, Any] | None  # merge patch; None when the status already says it all
    phase: str | None  # for the log line
    events: tuple[Event, ...] = ()


def status_change(recorded: Mapping[str, Any], before: Mapping[str, Any], status: Mapping[str, Any],
                  then: Iterable[Event] = ()) -> StatusPlan:
    """Patch `recorded` (the status as written so far) to `status`; Events for the transitions since
    `before` (the status the converge started from), only when something changes, then `then`."""
    patch = status_patch(recorded, status)
    transitions = transition_events(before, status) if patch is not None else []
    return StatusPlan(patch, status.get("phase"), (*transitions, *then))


def plan_status(
    inst: Instance,
    resource: Mapping[str, Any],
    desired: str,
    traffic: Plan,
    held: bool,
    observed: LiveState,
    judged_at: datetime,
    now: datetime,
) -> StatusPlan:
    """status from `observed`, as a patch over what `resource` (the converge's start) plus an early
    `traffic.commit` recorded; the rollout's Events follow the patch unless the commit announced them."""
    previous = resource.get("status") or {}
    edge: list[dict[str, Any]] = []
    if inst.spec.edge:
        edge_rev = live_revision(o for o in observed.children.values() if is_edge(o)) if held else desired
        edge = edge_status(inst, edge_rev, observed.nodes, observed.edge_pods)
    status = compute_status(previous, Observation(
        generation=resource["metadata"]["generation"],
        desired=desired,
        serving=traffic.serving,
        selector=selector_string(inst, traffic.serving),
        deployments=deployments(observed.children),
        pods=observed.pods,
        edge=edge,
        verdict=traffic.verdict,
        autoscaling=autoscaling_status(inst, previous.get("forecast"), judged_at),
        autoscaler=autoscaler_problem(o for (kind, _), o in observed.children.items()
                                      if kind in (SCALED_OBJECT.kind, HORIZONTAL_POD_AUTOSCALER.kind)),
        routing=_picker_problem(inst, traffic.serving, observed.children),
    ), now)
    if traffic.canary is not UNCHANGED:
        status["canary"] = traffic.canary
    if traffic.commit is None:
        return status_change(previous, previous, status, traffic.events)
    recorded = {**previous, "currentRevision": traffic.serving, "canary": traffic.canary}
    return status_change(recorded, previous, status)


def _picker_problem(inst: Instance, serving: str, children: Children) -> tuple[str, str] | None:
    """The serving revision's rendered endpoint picker, if the operator runs one (inference-pool without
    endpointPicker.service), read for readiness."""
    traffic = inst.spec.traffic
    if traffic.provider != "inference-pool" or (traffic.endpoint_picker and traffic.endpoint_picker.service):
        return None
    name = picker_name(inst, serving)
    return picker_problem(name, children.get((DEPLOYMENT.kind, name)))


def deployments(children: Children) -> dict[str, Mapping[str, Any]]:
    """Revision -> live Deployment."""
    found = {}
    for (kind, _), obj in children.items():
        rev = obj["metadata"].get("labels", {}).get(REVISION_LABEL)
        if kind == DEPLOYMENT.kind and rev:
            found[rev] = obj
    return found
