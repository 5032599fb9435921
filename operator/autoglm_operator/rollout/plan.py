"""One converge's traffic plan: the glue between the reconciler and the canary state machine.

Without `spec.rollout` the plan is today's switch (rollout.serving_revision). With it, the canary
machine (canary.py) decides from status.canary, the live Deployments, the control annotation and,
only when a step's interval is over, a Prometheus analysis (analysis.py).

A decision that moves traffic is recorded (`Plan.commit`, written to the status) before the
children follow it: an operator killed between the two then resumes from the decision instead of
making it again from the older status, where a fresh analysis could decide otherwise and move the
weights backwards (docs/operations.md, "Failure behaviour").
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from autoglm_operator.api.spec import Instance
from autoglm_operator.rollout.analysis import PrometheusAnalyzer, prometheus_address
from autoglm_operator.render.routing import Route
from autoglm_operator.rollout.canary import ACTION_ANNOTATION, Observed, analysis_due, decide, drain_checks, without_rollout
from autoglm_operator.rollout.switch import revisions_to_keep, serving_revision
from autoglm_operator.status.conditions import Event, Verdict, status_patch
from autoglm_operator.status.readiness import revision_ready, serves_nothing

UNCHANGED = object()
# The status.canary fields the route and the kept Deployments are rendered from.
ROUTING_FIELDS = ("revision", "stable", "phase", "step", "weight", "mirror")


@dataclasses.dataclass(frozen=True)
class Plan:
    serving: str  # the stable revision (status.currentRevision)
    keep: frozenset[str]  # revisions whose Deployments must exist
    route: Route | None = None  # None: everything to `serving`
    canary: Any = UNCHANGED  # next status.canary (a dict or None), or UNCHANGED
    verdict: Verdict | None = None
    events: tuple[Event, ...] = ()
    commit: dict[str, Any] | None = None  # status patch to write before any child changes
    analysed: bool = False  # Prometheus was queried for the canary analysis in this plan


def commit_first(status: Mapping[str, Any], serving: str, canary: Any) -> dict[str, Any] | None:
    """The status patch recording a traffic decision, when `canary` (a Plan's) moves traffic or
    the stable revision away from what `status` says; None when nothing routing-related changed."""
    if canary is UNCHANGED:
        return None
    before, after = status.get("canary") or {}, canary or {}
    if status.get("currentRevision") == serving and all(before.get(k) == after.get(k) for k in ROUTING_FIELDS):
        return None
    return status_patch(status, {"currentRevision": serving, "canary": canary})


def plan(
    inst: Instance,
    resource: Mapping[str, Any],
    desired: str,
    deployments: Mapping[str, Mapping[str, Any]],
    now: datetime,
    analyzer: PrometheusAnalyzer,
) -> Plan:
    status = resource.get("status") or {}
    previous = status.get("canary")
    current = status.get("currentRevision")
    rollout = inst.spec.rollout
    if rollout is None:
        serving = serving_revision(current, desired, deployments)
        canary = without_rollout(previous) if previous else UNCHANGED
        if canary is not UNCHANGED and canary == previous:
            canary = UNCHANGED
        return Plan(serving, frozenset(revisions_to_keep(serving, desired)), canary=canary)

    stable = deployments.get(current) if current else None
    analysis = None
    analysed = analysis_due(rollout, previous, desired, now)
    if analysed:
        stable_rev = (previous or {}).get("stable") or current or desired
        analysis = analyzer.run(prometheus_address(inst), inst, rollout.analysis, desired, stable_rev,
                                rollout.interval_seconds)
    in_flight = {revision: analyzer.in_flight(prometheus_address(inst), inst, revision)
                 for revision in drain_checks(previous, now)}
    decision = decide(rollout, previous, Observed(
        now=now,
        name=inst.name,
        namespace=inst.namespace,
        desired=desired,
        stable=current,
        stable_serving=not serves_nothing(stable),
        canary_ready=revision_ready(deployments.get(desired)),
        action=(resource["metadata"].get("annotations") or {}).get(ACTION_ANNOTATION),
        analysis=analysis,
        in_flight=in_flight,
    ))
    canary = UNCHANGED if decision.canary == previous else decision.canary
    return Plan(
        serving=decision.stable,
        keep=decision.keep,
        route=decision.route,
        canary=canary,
        verdict=decision.verdict,
        events=decision.events,
        commit=commit_first(status, decision.stable, canary),
        analysed=analysed,
    )
