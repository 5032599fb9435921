"""The per-resource series from the status (pure), and what the collector publishes and forgets."""
from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from autoglm_operator.reconcile.metrics import StatusMetrics, patched, recorded_counts, status_series

READY = {"type": "Ready", "status": "False", "reason": "CanaryProgressing"}
PROGRESSING = {"type": "Progressing", "status": "True"}


def _canary(**fields: Any) -> dict[str, Any]:
    return {"revision": "r2", "stable": "r1", "phase": "Progressing", "step": 1, "weight": 25, "mirror": 0,
            "stepStartedAt": "2026-01-01T00:00:10Z", **fields}


def _rolled_back(at: str = "2026-01-01T00:01:00Z") -> dict[str, Any]:
    return {"revision": "r2", "result": "RolledBack", "finishedAt": at, "message": "analysis failed 2/2"}


def test_each_condition_has_one_series_per_status_and_one_of_them_is_1():
    series = status_series({"conditions": [READY, PROGRESSING]})
    assert series.conditions == {("Ready", "True", "CanaryProgressing"): 0, ("Ready", "False", "CanaryProgressing"): 1,
                                 ("Ready", "Unknown", "CanaryProgressing"): 0, ("Progressing", "True", ""): 1,
                                 ("Progressing", "False", ""): 0, ("Progressing", "Unknown", ""): 0}
    assert series.phases == {} and series.canary is None


def test_the_canary_phase_weight_and_mirror_come_from_status_canary():
    series = status_series({"canary": _canary(step=0, weight=0, mirror=50)})
    assert series.canary == ("r2", 0, 50)
    assert {p for p, v in series.phases.items() if v} == {"Progressing"}
    assert set(series.phases) == {"Starting", "Progressing", "Paused", "Promoted", "RolledBack", "Aborted"}


def test_an_ended_canary_reads_0_and_no_canary_no_series():
    ended = status_series({"canary": _canary(phase="RolledBack", weight=0, mirror=0, history=[_rolled_back()])})
    assert ended.canary == ("r2", 0, 0) and ended.phases["RolledBack"] == 1
    # spec.rollout removed: only the history is kept (rollout/canary.py without_rollout)
    assert status_series({"canary": {"history": [_rolled_back()]}}) == status_series({})
    # a hand-edited phase the machine does not know: no phase series, never an error
    assert status_series({"canary": _canary(phase="Sideways")}).phases == {}


AUTOSCALING = {"enabled": True, "engine": "hpa", "minReplicas": 1, "maxReplicas": 4}


def test_the_autoscaling_bounds_are_the_floor_applied_and_the_spec_maximum():
    # the predictive floor in force (status), not spec's minReplicas: a floor raised to the maximum shows
    raised = {"autoscaling": {"minReplicas": 4, "forecast": "Used", "predicted": 30.0}}
    assert status_series(raised, {"autoscaling": AUTOSCALING}).autoscaling == (4, 4)
    assert status_series({"autoscaling": {"minReplicas": 0, "forecast": "Disabled"}},
                         {"autoscaling": {**AUTOSCALING, "engine": "keda", "minReplicas": 0}}).autoscaling == (0, 4)


def test_no_autoscaling_bounds_without_autoscaling_enabled_or_a_floor_recorded():
    floor = {"autoscaling": {"minReplicas": 2}}
    assert status_series(floor).autoscaling is None  # no spec given
    assert status_series(floor, {"autoscaling": {**AUTOSCALING, "enabled": False}}).autoscaling is None
    assert status_series({}, {"autoscaling": AUTOSCALING}).autoscaling is None  # not converged yet
    # hand-edited or foreign values: fewer series, never an error
    assert status_series({"autoscaling": {"minReplicas": "2"}}, {"autoscaling": AUTOSCALING}).autoscaling is None
    assert status_series(floor, {"autoscaling": {**AUTOSCALING, "enabled": "yes"}}).autoscaling is None
    assert status_series({"autoscaling": {"minReplicas": True}}, {"autoscaling": AUTOSCALING}).autoscaling is None

def test_an_analysis_is_counted_by_the_write_that_records_it_and_only_when_it_ran():
    before = {"canary": _canary(analysis=[{"name": "successRate", "result": "Pass"}])}
    checks = [{"name": "successRate", "result": "Pass"}, {"name": "ttftP95", "result": "Fail"}]
    after = {"canary": _canary(stepStartedAt="2026-01-01T00:00:20Z", failedChecks=1, analysis=checks)}
    counted = recorded_counts(before, after, analysed=True)
    assert counted.results == {("successRate", "Pass"): 1, ("ttftP95", "Fail"): 1} and counted.rollbacks == 0
    # a resync: no analysis ran, whatever the status holds
    assert not recorded_counts(before, after, analysed=False).results
    # the converge's second write (status.canary already recorded by the first): nothing again
    assert not recorded_counts(after, after, analysed=True).results


def test_a_rollback_is_counted_once_from_the_history_also_after_a_restart():
    progressing = {"canary": _canary(history=[{"revision": "r0", "result": "Promoted", "finishedAt": "x"}])}
    rolled = {"canary": _canary(phase="RolledBack", weight=0, history=[_rolled_back(), *progressing["canary"]["history"]])}
    assert recorded_counts(progressing, rolled, analysed=True).rollbacks == 1
    # a restarted operator starts from the recorded status: the record is there, nothing new
    assert recorded_counts(rolled, rolled, analysed=False).rollbacks == 0
    # `rollout retry`, then rolled back again: a second record, a second rollback
    again = {"canary": _canary(phase="RolledBack", history=[_rolled_back("2026-01-01T00:05:00Z"),
                                                            *rolled["canary"]["history"]])}
    assert recorded_counts(rolled, again, analysed=True).rollbacks == 1
    aborted = {"canary": _canary(phase="Aborted", history=[{**_rolled_back(), "result": "Aborted"}])}
    assert recorded_counts(progressing, aborted, analysed=False).rollbacks == 0


def test_patched_applies_a_json_merge_patch():
    status = {"phase": "Ready", "canary": {"weight": 5, "mirror": 50, "history": [1]}, "coldStartSeconds": {"a": 1}}
    patch = {"phase": None, "canary": {"weight": 25, "mirror": None}, "coldStartSeconds": {"a": None, "b": 2},
             "conditions": [READY]}
    assert patched(status, patch) == {"canary": {"weight": 25, "history": [1]}, "coldStartSeconds": {"b": 2},
                                      "conditions": [READY]}
    assert status["canary"]["weight"] == 5, "the input is not changed"


def test_the_collector_publishes_the_recorded_status_and_forgets_a_deleted_resource():
    metrics, registry = StatusMetrics(), CollectorRegistry()
    registry.register(metrics)
    before = {"conditions": [READY], "canary": _canary()}
    after = {"conditions": [READY], "canary": _canary(phase="RolledBack", weight=0, history=[_rolled_back()],
                                                      analysis=[{"name": "successRate", "result": "Fail"}])}
    metrics.record("ml", "glm", before, after, analysed=True)
    metrics.record("ml", "other", {}, {"conditions": [PROGRESSING], "autoscaling": {"minReplicas": 3}},
                   spec={"autoscaling": AUTOSCALING})
    resource = {"namespace": "ml", "autoglm_deployment": "glm"}
    value = registry.get_sample_value
    assert value("autoglm_deployment_condition",
                 {**resource, "type": "Ready", "status": "False", "reason": "CanaryProgressing"}) == 1
    assert value("autoglm_canary_phase", {**resource, "phase": "RolledBack"}) == 1
    assert value("autoglm_canary_weight", {**resource, "autoglm_revision": "r2"}) == 0
    assert value("autoglm_canary_mirror_percent", {**resource, "autoglm_revision": "r2"}) == 0
    assert value("autoglm_canary_analysis_results_total", {**resource, "check": "successRate", "result": "Fail"}) == 1
    assert value("autoglm_canary_rollbacks_total", resource) == 1
    metrics.record("ml", "glm", after, after, analysed=False)  # the next resync
    assert value("autoglm_canary_rollbacks_total", resource) == 1
    assert value("autoglm_canary_analysis_results_total", {**resource, "check": "successRate", "result": "Fail"}) == 1
    # a new canary revision replaces the old one's traffic series
    metrics.record("ml", "glm", after, {"canary": _canary(revision="r3", weight=5)})
    assert value("autoglm_canary_weight", {**resource, "autoglm_revision": "r2"}) is None
    assert value("autoglm_canary_weight", {**resource, "autoglm_revision": "r3"}) == 5

    other = {"namespace": "ml", "autoglm_deployment": "other"}
    assert value("autoglm_autoscaling_min_replicas", other) == 3
    assert value("autoglm_autoscaling_max_replicas", other) == 4
    assert value("autoglm_autoscaling_min_replicas", resource) is None  # no autoscaling: no series
    # autoscaling disabled later: its bounds go
    metrics.record("ml", "other", {}, {"conditions": [PROGRESSING]}, spec={"autoscaling": AUTOSCALING})
    assert value("autoglm_autoscaling_max_replicas", other) is None
    metrics.record("ml", "other", {}, {"autoscaling": {"minReplicas": 3}}, spec={"autoscaling": AUTOSCALING})

    metrics.forget("ml", "glm")
    published = {s.labels.get("autoglm_deployment") for family in registry.collect() for s in family.samples}
    assert published == {"other"}


def test_a_standby_replica_publishes_no_per_resource_series_until_it_works_again():
    """Two replicas of a peering are both scraped; only the active one's values are current."""
    metrics, registry = StatusMetrics(), CollectorRegistry()
    registry.register(metrics)

    def published() -> set[str | None]:
        return {s.labels.get("autoglm_deployment") for family in registry.collect() for s in family.samples}

    metrics.record("ml", "glm", {}, {"conditions": [READY]})
    assert published() == {"glm"}
    metrics.stand_by(True)
    assert published() == set()
    metrics.record("ml", "glm", {}, {"conditions": [READY]})  # a converge that began before
    assert published() == set()
    metrics.stand_by(False)
    metrics.record("ml", "other", {}, {"conditions": [PROGRESSING]})
    assert published() == {"other"}, "the active replica's converges publish again"
