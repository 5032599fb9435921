"""The revision switch: traffic moves only to a Ready revision, unless the old one serves nobody."""
from __future__ import annotations

from autoglm_operator.rollout.plan import UNCHANGED, commit_first
from autoglm_operator.rollout.switch import revisions_to_keep, serving_revision
from autoglm_operator.status.readiness import revision_ready, serves_nothing


def _deployment(ready: int, wanted: int | None = 1, generation: int = 1, observed: int = 1) -> dict:
    spec = {} if wanted is None else {"replicas": wanted}
    status = {"observedGeneration": observed, "updatedReplicas": ready, "readyReplicas": ready}
    return {"metadata": {"generation": generation}, "spec": spec, "status": status}


def test_revision_ready():
    assert revision_ready(_deployment(ready=2, wanted=2))
    assert not revision_ready(_deployment(ready=1, wanted=2))
    assert revision_ready(_deployment(ready=1, wanted=None)), "a missing replicas field means 1"
    assert not revision_ready(_deployment(ready=1, generation=2, observed=1)), "the controller has not seen the spec"
    assert revision_ready(_deployment(ready=0, wanted=0))
    assert not revision_ready(None)


def test_a_new_resource_serves_its_own_revision():
    assert serving_revision(None, "new", {}) == "new"
    assert serving_revision("new", "new", {}) == "new"


def test_the_old_revision_keeps_traffic_until_the_new_one_is_ready():
    old = _deployment(ready=2, wanted=2)
    assert serving_revision("old", "new", {"old": old}) == "old"
    assert serving_revision("old", "new", {"old": old, "new": _deployment(ready=0)}) == "old"
    assert serving_revision("old", "new", {"old": old, "new": _deployment(ready=1)}) == "new"


def test_an_old_revision_that_serves_nobody_is_replaced_at_once():
    assert serving_revision("old", "new", {"new": _deployment(ready=0)}) == "new", "old Deployment gone"
    assert serving_revision("old", "new", {"old": _deployment(ready=0), "new": _deployment(ready=0)}) == "new"


def _served_once(ready: int) -> dict:
    """What the Deployment controller leaves on a Deployment whose pods were all available once."""
    deployment = _deployment(ready=ready)
    deployment["status"]["conditions"] = [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                                          {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}]
    return deployment


def test_a_serving_revision_whose_pods_turn_not_ready_for_now_keeps_traffic():
    """The CI flake of test_changing_the_model_switches_traffic_once_the_new_revision_is_ready: a
    node missing heartbeats turned the old pod NotReady while a GPU quota held the new one back, and
    the old Deployment was switched away from and pruned, leaving nothing to serve."""
    held = _deployment(ready=0)
    assert serving_revision("old", "new", {"old": _served_once(ready=0), "new": held}) == "old"
    assert serving_revision("old", "new", {"old": _served_once(ready=0), "new": _deployment(ready=1)}) == "new"


def test_serves_nothing():
    assert serves_nothing(None)
    assert serves_nothing(_deployment(ready=0, wanted=0)), "scaled to zero"
    assert serves_nothing(_deployment(ready=0)), "never Ready (never schedulable, say)"
    assert not serves_nothing(_deployment(ready=1))
    assert not serves_nothing(_served_once(ready=0))


def test_keep_only_serving_and_desired():
    assert revisions_to_keep("old", "new") == {"old", "new"}
    assert revisions_to_keep("new", "new") == {"new"}


# -- a traffic decision is recorded before the children follow it (rollout_plan.commit_first) --------

STEP_1 = {"revision": "new", "stable": "old", "phase": "Progressing", "step": 1, "weight": 5, "mirror": 0,
          "stepStartedAt": "2026-01-01T00:00:00Z"}


def test_a_new_step_is_recorded_first_with_the_fields_it_drops_cleared():
    status = {"currentRevision": "old", "canary": {**STEP_1, "noDataIntervals": 1}}
    step_2 = {**STEP_1, "step": 2, "weight": 25, "stepStartedAt": "2026-01-01T00:00:05Z"}
    assert commit_first(status, "old", step_2) == {"canary": {**step_2, "noDataIntervals": None}}


def test_a_promotion_records_the_new_stable_revision_with_it():
    promoted = {"revision": "new", "stable": "new", "phase": "Promoted", "weight": 0, "mirror": 0}
    patch = commit_first({"currentRevision": "old", "canary": STEP_1}, "new", promoted)
    assert patch is not None and patch["currentRevision"] == "new" and patch["canary"]["phase"] == "Promoted"
    assert patch["canary"]["step"] is None, "a merge patch must clear the finished step"


def test_nothing_is_written_early_when_the_route_stays():
    status = {"currentRevision": "old", "canary": STEP_1}
    analysed = {**STEP_1, "stepStartedAt": "2026-01-01T00:00:05Z", "failedChecks": 1, "analysis": [{"name": "x"}]}
    assert commit_first(status, "old", analysed) is None, "analysis results go with the regular status write"
    assert commit_first(status, "old", UNCHANGED) is None
    assert commit_first({"currentRevision": "old"}, "old", None) is None, "no rollout, none before"
