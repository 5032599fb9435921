"""The rendered endpoint picker counts in readiness: a serving model whose picker has no pod is not Ready."""
from __future__ import annotations

from autoglm_operator.status.conditions import Observation, Verdict, judge
from autoglm_operator.status.routing import picker_problem

NO_SERVICE_ACCOUNT = ('pods "glm-pool-r1-epp-5d8f-" is forbidden: error looking up service account ml/endpoint-picker: '
                      'serviceaccount "endpoint-picker" not found')


def _deployment(name: str, ready: int, failure: str | None = None) -> dict:
    conditions = [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": failure}] if failure else []
    return {"metadata": {"name": name, "generation": 1}, "spec": {"replicas": 1},
            "status": {"observedGeneration": 1, "updatedReplicas": ready, "readyReplicas": ready, "conditions": conditions}}


def test_a_picker_that_cannot_create_its_pod_names_the_cause():
    assert picker_problem("glm-pool-r1-epp", _deployment("glm-pool-r1-epp", 0, NO_SERVICE_ACCOUNT)) == (
        "EndpointPickerNotReady",
        f"endpoint picker Deployment glm-pool-r1-epp: 0/1 pods Ready (FailedCreate: {NO_SERVICE_ACCOUNT})")


def test_a_missing_picker_is_not_ready_and_a_ready_one_is_no_problem():
    assert picker_problem("p", None) == ("EndpointPickerNotReady", "endpoint picker Deployment p does not exist yet")
    assert picker_problem("p", _deployment("p", 1)) is None


def _obs(routing: tuple[str, str] | None, verdict: Verdict | None = None) -> Observation:
    return Observation(generation=1, desired="r1", serving="r1", selector="", deployments={"r1": _deployment("glm-pool-r1", 2)},
                       pods=[], verdict=verdict, routing=routing)


def test_serving_pods_without_their_picker_are_not_ready():
    problem = picker_problem("glm-pool-r1-epp", _deployment("glm-pool-r1-epp", 0, NO_SERVICE_ACCOUNT))
    verdict = judge(_obs(problem))
    assert (verdict.ready, verdict.reason) == (False, "EndpointPickerNotReady")
    assert 'serviceaccount "endpoint-picker" not found' in verdict.message and "revision r1: 2/1 pods Ready" in verdict.message
    assert judge(_obs(None)).ready


def test_a_canary_verdict_is_not_ready_either_while_the_picker_is_not():
    verdict = judge(_obs(("EndpointPickerNotReady", "endpoint picker Deployment p does not exist yet"),
                         Verdict(True, "CanaryProgressing", "step 1 of 3")))
    assert (verdict.ready, verdict.reason) == (False, "EndpointPickerNotReady")
