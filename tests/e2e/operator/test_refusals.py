"""A child the API server refuses (issue 15, fault 3b): the resource says so, with the server's words.

Validation cannot know every rule of a cluster (quotas, admission policies and webhooks, RBAC): a
refused apply must become Ready=False/Degraded=True `ApplyFailed` with the server's message and one
Warning Event, instead of a silent retry every few seconds. A ResourceQuota allowing no Deployment
stands for all of them here: the server refuses the apply with 403 "exceeded quota"."""
from __future__ import annotations

import pytest
from operator_support import apply, audit_offset, condition, example, wait_for, wait_for_condition, writes_by

from autoglm_testenv import Env

pytestmark = pytest.mark.e2e


def test_a_refused_child_is_reported_in_ready_and_one_event_then_recovers(testenv: Env, namespace: str, operator) -> None:
    apply(testenv, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-deployments", "namespace": namespace},
                    "spec": {"hard": {"count/deployments.apps": "0"}}})
    wait_for("the quota counted", lambda: testenv.kubectl_json("get", "resourcequota", "no-deployments", "-n", namespace)
             .get("status", {}).get("hard"), 30)
    cr = example("01-minimal.yaml", namespace)
    name = cr["metadata"]["name"]
    since = audit_offset(testenv)
    apply(testenv, cr)

    refused = wait_for_condition(testenv, namespace, name, "Ready", "False", "ApplyFailed", timeout=60)
    message = condition(refused, "Ready")["message"]
    assert message.startswith("apply of Deployment ") and "exceeded quota: no-deployments" in message, message
    assert condition(refused, "Degraded")["status"] == "True"

    def refused_applies() -> int:
        return sum(1 for w in writes_by(testenv, operator.user, since)
                   if w["objectRef"].get("resource") == "deployments" and w["responseStatus"]["code"] == 403)

    wait_for("three refused applies (resyncs retry them)", lambda: refused_applies() >= 3, 60)
    events = testenv.kubectl_json("get", "events", "-n", namespace, "--field-selector",
                                  f"involvedObject.name={name},reason=ApplyFailed")["items"]
    assert [e.get("count", 1) for e in events] == [1], "one Event for the refusal, not one per retry"

    testenv.kubectl("delete", "resourcequota", "no-deployments", "-n", namespace)
    testenv.kubectl("wait", "--for=condition=Ready", f"autoglmdeployment/{name}", "-n", namespace, "--timeout=90s")
