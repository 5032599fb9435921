"""A new model is a new revision: its Deployment starts beside the old one, traffic moves only once
it is Ready, and then the old revision is retired.

kwok makes pods Ready at once, so a GPU ResourceQuota holds the new revision's pod back (without
touching the shared GPU nodes): while the namespace may use one GPU, the old revision keeps all
traffic; raising the quota lets the new pod start, and the switch follows.
"""
from __future__ import annotations

import json

import pytest
from operator_support import (
    apply, children, condition, example, gpu_quota, wait_for, wait_for_condition, wait_until_quiet,
)

from autoglm_testenv import Env

pytestmark = pytest.mark.e2e

NAME = "glm-chat"


def _route(testenv: Env, namespace: str) -> tuple[str, list[str]]:
    """(subset taking traffic, subsets defined)."""
    found = children(testenv, namespace, NAME)
    vs, dr = found[("VirtualService", NAME)], found[("DestinationRule", NAME)]
    (route,) = vs["spec"]["http"][0]["route"]
    return route["destination"]["subset"], [s["name"] for s in dr["spec"]["subsets"]]


def test_changing_the_model_switches_traffic_once_the_new_revision_is_ready(testenv: Env, namespace: str, operator) -> None:
    gpu_quota(testenv, namespace, 1)
    cr = example("01-minimal.yaml", namespace)
    apply(testenv, cr)
    old = wait_for_condition(testenv, namespace, NAME, "Ready", "True")["status"]["currentRevision"]

    cr["spec"]["model"]["name"] = "zai-org/GLM-4-9B-0414-v2"
    apply(testenv, cr)
    starting = wait_for_condition(testenv, namespace, NAME, "Ready", "False", "RolloutInProgress")
    assert condition(starting, "Progressing")["status"] == "True"
    new = next(name for kind, name in children(testenv, namespace, NAME) if kind == "Deployment" and old not in name)
    new = new.removeprefix(f"{NAME}-")
    wait_for("the quota to hold the new pod back", lambda: any(
        c["type"] == "ReplicaFailure" and "exceeded quota" in c.get("message", "")
        for c in testenv.kubectl_json("get", "deployment", f"{NAME}-{new}", "-n", namespace)["status"].get("conditions", [])
    ), 30)
    assert _route(testenv, namespace) == (old, sorted([old, new])), "traffic moved before the new revision was Ready"
    assert starting["status"]["currentRevision"] == old
    assert {name for kind, name in children(testenv, namespace, NAME) if kind == "Deployment"} == {
        f"{NAME}-{old}", f"{NAME}-{new}"}

    gpu_quota(testenv, namespace, 2)
    # The ReplicaSet controller backs off exponentially after refusals; any change to the
    # ReplicaSet makes it retry now instead of in a minute.
    testenv.kubectl("annotate", "replicaset", "-n", namespace, "-l", f"autoglm.io/revision={new}", "e2e/retry=now")
    ready = wait_for_condition(testenv, namespace, NAME, "Ready", "True", timeout=90)
    assert ready["status"]["currentRevision"] == new
    assert _route(testenv, namespace) == (new, [new])
    wait_for("the old revision retired", lambda: {
        name for kind, name in children(testenv, namespace, NAME) if kind == "Deployment"} == {f"{NAME}-{new}"}, 30)
    found = children(testenv, namespace, NAME)
    assert found[("Service", NAME)]["spec"]["selector"] == {"autoglm.io/instance": NAME}, "Istio picks the subset"

    events = testenv.kubectl_json("get", "events", "-n", namespace, "--field-selector",
                                  f"involvedObject.kind=AutoGLMDeployment,involvedObject.name={NAME}")["items"]
    assert any(e["reason"] == "TrafficSwitched" and new in e["message"] for e in events), json.dumps(
        [(e["reason"], e["message"]) for e in events])
    wait_until_quiet(testenv, operator.user, quiet_seconds=5, timeout=20)  # settled: resyncs write nothing
