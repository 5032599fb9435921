"""One converge's traffic plan: the glue between the reconciler and the canary state machine.

Without `spec.rollout` the plan is today's switch (rollout.serving_revision). With it, the canary
machine (canary.py) decides from status.canary, the live Deployments, the control annotation and,
only when a step's interval is over, a Prometheus analysis (analysis.py).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from autoglm_operator.analysis import PrometheusAnalyzer, prometheus_address
from autoglm_operator.canary import ACTION_ANNOTATION, Observed, Route, analysis_due, decide, without_rollout
from autoglm_operator.conditions import Event, Verdict
from autoglm_operator.rollout import ready_replicas, revision_ready, revisions_to_keep, serving_revision
from autoglm_operator.spec import Instance

UNCHANGED = object()


@dataclasses.dataclass(frozen=True)
class Plan:
    serving: str  # the stable revision (status.currentRevision)
    keep: frozenset[str]  # revisions whose Deployments must exist
    route: Route | None = None  # None: everything to `serving`
    canary: Any = UNCHANGED  # next status.canary (a dict or None), or UNCHANGED
    verdict: Verdict | None = None
    events: tuple[Event, ...] = ()


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
    if analysis_due(rollout, previous, desired, now):
        stable_rev = (previous or {}).get("stable") or current or desired
        analysis = analyzer.run(prometheus_address(inst), inst, rollout.analysis, desired, stable_rev,
                                rollout.interval_seconds)
    decision = decide(rollout, previous, Observed(
        now=now,
        desired=desired,
        stable=current,
        stable_serving=stable is not None and ready_replicas(stable) > 0,
        canary_ready=revision_ready(deployments.get(desired)),
        action=(resource["metadata"].get("annotations") or {}).get(ACTION_ANNOTATION),
        analysis=analysis,
    ))
    return Plan(
        serving=decision.stable,
        keep=decision.keep,
        route=decision.route,
        canary=UNCHANGED if decision.canary == previous else decision.canary,
        verdict=decision.verdict,
        events=decision.events,
    )
