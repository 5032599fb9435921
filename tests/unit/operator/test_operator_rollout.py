"""The revision switch: traffic moves only to a Ready revision, unless the old one serves nobody."""
from __future__ import annotations

from autoglm_operator.rollout import revision_ready, revisions_to_keep, serving_revision


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


def test_keep_only_serving_and_desired():
    assert revisions_to_keep("old", "new") == {"old", "new"}
    assert revisions_to_keep("new", "new") == {"new"}
