"""The operator's own Prometheus metrics: how often it reconciles and, above all, how often it writes;
and, per AutoGLMDeployment, what its status says (conditions, the canary's phase, weight, mirror and
analysis results, rollbacks, the autoscaler's bounds it applied) so dashboards and alerts read the same truth as `kubectl get agd`.

A steady state should show reconciles rising and writes flat; writes climbing on every resync
mean a child the operator cannot converge (see docs/operator.md).

The per-resource series carry the labels the engines' PodMonitor gives their pods' series
(`namespace`, `autoglm_deployment`, `autoglm_revision`; docs/rollouts.md), so rules join the two
without relabelling. They are computed from the status as the operator records it (`status_series`,
`recorded_counts`: pure), never from Events or watch events: a restarted operator re-reads the
status, publishes the same gauges and counts nothing twice. Scraped through a ServiceMonitor, the
`namespace` label needs `honorLabels` (the chart sets it for the operator) else Prometheus renames
it `exported_namespace`.
"""
from __future__ import annotations

import dataclasses
import threading
from collections import Counter as Tally
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from autoglm_operator.api.status import Phase

RECONCILES = Counter(
    "autoglm_operator_reconciles_total", "Reconciles of AutoGLMDeployments by outcome.", ["result"]
)
# Fine around 1-2 s: `make bench` reads the p99 from these buckets against a 2 s target.
RECONCILE_SECONDS = Histogram(
    "autoglm_operator_reconcile_seconds", "Duration of one reconcile.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 5, 10, 30),
)
WRITES = Counter(
    "autoglm_operator_writes_total", "API writes by verb (apply, delete, status) and kind.", ["verb", "kind"]
)

RESOURCE_LABELS = ("namespace", "autoglm_deployment")
CONDITION_STATUSES = ("True", "False", "Unknown")


@dataclasses.dataclass(frozen=True)
class StatusSeries:
    """The gauges of one resource, from its status. `conditions` maps (type, status, reason) to 1 for
    the condition's current status and 0 for the other two, all three with its current reason (so a
    rule can tell a canary at work, `CanaryProgressing`, from pods that cannot start); `phases` maps every canary phase to 1 or 0
    (empty without a canary); `canary` is (revision, weight %, mirror %) while status.canary names a
    revision (0/0 once the rollout ended, as the status says), else None; `autoscaling` is the
    autoscaler's (minimum, maximum) replicas the operator applies while spec.autoscaling is enabled
    (the minimum: status.autoscaling.minReplicas, the predictive floor while one is in force), else
    None."""

    conditions: dict[tuple[str, str, str], float]
    phases: dict[str, float]
    canary: tuple[str, int, int] | None
    autoscaling: tuple[int, int] | None = None


@dataclasses.dataclass(frozen=True)
class Counts:
    """What one status write newly recorded: analysis results per (check, result), rollbacks."""

    results: Tally[tuple[str, str]]
    rollbacks: int


def status_series(status: Mapping[str, Any], spec: Mapping[str, Any] | None = None) -> StatusSeries:
    """The gauges `status` and `spec` (an AutoGLMDeployment's, as stored: the API server has filled
    the schema's defaults, so an enabled spec.autoscaling names maxReplicas) imply. Tolerant: a
    hand-edited status with a missing or unknown field yields fewer series, never an error."""
    conditions: dict[tuple[str, str, str], float] = {}
    for condition in status.get("conditions") or []:
        kind, current, reason = condition.get("type"), condition.get("status"), condition.get("reason") or ""
        if kind:
            conditions.update({(kind, s, reason): float(s == current) for s in CONDITION_STATUSES})
    canary = status.get("canary") or {}
    phase = canary.get("phase")
    phases = {p.value: float(p.value == phase) for p in Phase} if phase in set(Phase) else {}
    revision = canary.get("revision")
    traffic = (revision, int(canary.get("weight") or 0), int(canary.get("mirror") or 0)) if revision else None
    return StatusSeries(conditions, phases, traffic, _bounds(status, spec or {}))


def _bounds(status: Mapping[str, Any], spec: Mapping[str, Any]) -> tuple[int, int] | None:
    """(status.autoscaling.minReplicas, spec.autoscaling.maxReplicas) while autoscaling is enabled
    and both are integers; the minimum is the one the operator wrote (render/autoscaling.py), not
    spec's, so a floor raised to the maximum shows."""
    wanted = spec.get("autoscaling") or {}
    low, high = (status.get("autoscaling") or {}).get("minReplicas"), wanted.get("maxReplicas")
    if wanted.get("enabled") is not True or not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
        return None
    return low, high


def patched(status: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """`status` after a JSON merge patch (RFC 7386, what `Cluster.patch_status` sends): null removes
    a key, a map merges key by key, anything else replaces. The status the API server now holds,
    without reading it back."""
    out = dict(status)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            old = out.get(key)
            out[key] = patched(old if isinstance(old, Mapping) else {}, value)
        else:
            out[key] = value
    return out


def _rollbacks(status: Mapping[str, Any]) -> set[tuple[Any, Any]]:
    history = (status.get("canary") or {}).get("history") or []
    return {(r.get("revision"), r.get("finishedAt")) for r in history if r.get("result") == Phase.ROLLED_BACK.value}


def recorded_counts(before: Mapping[str, Any], after: Mapping[str, Any], analysed: bool) -> Counts:
    """What the status write from `before` to `after` recorded that counters count:
    - the analysis results of status.canary.analysis, when an analysis ran in this converge
      (`analysed`) and this write records it (status.canary changed: the machine always moves the
      step timer after an analysis); a converge without analysis, or a write after the one that
      recorded it, counts nothing;
    - rollbacks: RolledBack records of status.canary.history that `before` does not have (a record
      is its revision and finishedAt), so a restart, a resync or a later write counts none again.
    """
    results: Tally[tuple[str, str]] = Tally()
    canary = after.get("canary") or {}
    if analysed and canary != (before.get("canary") or {}):
        results.update((c.get("name", "?"), c.get("result", "?")) for c in canary.get("analysis") or [])
    return Counts(results, len(_rollbacks(after) - _rollbacks(before)))


class StatusMetrics(Collector):
    """The per-resource series, held as the last status each resource recorded and published at
    scrape time (a custom collector): forgetting a resource drops all its series at once, so a
    deleted resource leaves none behind. A standby replica of a kopf peering (`stand_by`) publishes
    none: it no longer converges, so its last values would go stale beside the active replica's
    (both are scraped; rules would see two truths)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._standing_by = False
        self._series: dict[tuple[str, str], StatusSeries] = {}
        self._results: dict[tuple[str, str], Tally[tuple[str, str]]] = {}
        self._rollbacks: dict[tuple[str, str], int] = {}

    def record(self, namespace: str, name: str, before: Mapping[str, Any], after: Mapping[str, Any],
               analysed: bool = False, spec: Mapping[str, Any] | None = None) -> None:
        """A converge left the status at `after` (from `before`: the status this write started from)
        for the resource's `spec` as it read it."""
        key = (namespace, name)
        counts = recorded_counts(before, after, analysed)
        series = status_series(after, spec)
        with self._lock:
            if self._standing_by:
                return  # a converge that began before this replica stood by
            self._series[key] = series
            self._results.setdefault(key, Tally()).update(counts.results)
            self._rollbacks[key] = self._rollbacks.get(key, 0) + counts.rollbacks

    def forget(self, namespace: str, name: str) -> None:
        """The resource is gone: none of its series is published any more."""
        key = (namespace, name)
        with self._lock:
            for held in (self._series, self._results, self._rollbacks):
                held.pop(key, None)

    def stand_by(self, standing_by: bool) -> None:
        """This replica stops (True) or resumes (False) being the active one (runtime/peering.py).
        Standing by drops every resource's series and records none until it resumes; the
        converges after a takeover publish them again (the counters restart from zero: a reset,
        which `increase()` and `rate()` handle)."""
        with self._lock:
            self._standing_by = standing_by
            if standing_by:
                for held in (self._series, self._results, self._rollbacks):
                    held.clear()

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        condition = GaugeMetricFamily("autoglm_deployment_condition",
                                      "1 for the current status of each status.conditions type, 0 for the others;"
                                      " reason: the condition's current reason.",
                                      labels=[*RESOURCE_LABELS, "type", "status", "reason"])
        phase = GaugeMetricFamily("autoglm_canary_phase", "1 for the current status.canary.phase, 0 for the others.",
                                  labels=[*RESOURCE_LABELS, "phase"])
        weight = GaugeMetricFamily("autoglm_canary_weight", "Percent of live traffic sent to the canary revision.",
                                   labels=[*RESOURCE_LABELS, "autoglm_revision"])
        mirror = GaugeMetricFamily("autoglm_canary_mirror_percent", "Percent of traffic mirrored to the canary revision.",
                                   labels=[*RESOURCE_LABELS, "autoglm_revision"])
        results = CounterMetricFamily("autoglm_canary_analysis_results",
                                      "Canary analysis checks by result, once per analysis run.",
                                      labels=[*RESOURCE_LABELS, "check", "result"])
        rollbacks = CounterMetricFamily("autoglm_canary_rollbacks",
                                        "Canaries rolled back by the analysis or the startup budget (not aborts).",
                                        labels=list(RESOURCE_LABELS))
        low = GaugeMetricFamily("autoglm_autoscaling_min_replicas",
                                "The autoscaler's minimum replicas the operator applies (status.autoscaling.minReplicas:"
                                " the predictive floor while one is in force); only with autoscaling enabled.",
                                labels=list(RESOURCE_LABELS))
        high = GaugeMetricFamily("autoglm_autoscaling_max_replicas",
                                 "The autoscaler's maximum replicas the operator applies (spec.autoscaling.maxReplicas);"
                                 " only with autoscaling enabled.", labels=list(RESOURCE_LABELS))
        with self._lock:
            for (namespace, name), s in self._series.items():
                for (kind, status, reason), value in s.conditions.items():
                    condition.add_metric([namespace, name, kind, status, reason], value)
                for p, value in s.phases.items():
                    phase.add_metric([namespace, name, p], value)
                if s.canary is not None:
                    weight.add_metric([namespace, name, s.canary[0]], s.canary[1])
                    mirror.add_metric([namespace, name, s.canary[0]], s.canary[2])
                rollbacks.add_metric([namespace, name], self._rollbacks.get((namespace, name), 0))
                if s.autoscaling is not None:
                    low.add_metric([namespace, name], s.autoscaling[0])
                    high.add_metric([namespace, name], s.autoscaling[1])
            for (namespace, name), tally in self._results.items():
                for (check, result), n in sorted(tally.items()):
                    results.add_metric([namespace, name, check, result], n)
        yield from (condition, phase, weight, mirror, results, rollbacks, low, high)


STATUS = StatusMetrics()
REGISTRY.register(STATUS)
