"""Children are the operator's: deleted ones come back, edited fields it owns are reverted, a
restarted operator adopts what exists without recreating it, and deleting the resource removes
every child through the garbage collector."""
from __future__ import annotations

import json

import pytest
from operator_support import apply, audit_offset, children, describe, example, wait_for, wait_for_condition, writes_by

from autoglm_testenv import Env

pytestmark = pytest.mark.e2e

NAME = "glm-chat"


def _ready_example(testenv: Env, namespace: str) -> dict[tuple[str, str], dict]:
    apply(testenv, example("01-minimal.yaml", namespace))
    wait_for_condition(testenv, namespace, NAME, "Ready", "True")
    return children(testenv, namespace, NAME)


def test_a_deleted_child_is_restored(testenv: Env, namespace: str, operator) -> None:
    before = _ready_example(testenv, namespace)
    deployment = next(name for kind, name in before if kind == "Deployment")
    testenv.kubectl("delete", f"service/{NAME}", f"deployment/{deployment}", "-n", namespace)

    def restored() -> bool:
        now = children(testenv, namespace, NAME)
        return set(now) == set(before) and all(
            now[key]["metadata"]["uid"] != before[key]["metadata"]["uid"]
            for key in (("Service", NAME), ("Deployment", deployment))
        )

    wait_for("the Service and Deployment recreated", restored, 30)
    wait_for_condition(testenv, namespace, NAME, "Ready", "True")


def test_edits_to_owned_fields_are_reverted(testenv: Env, namespace: str, operator) -> None:
    before = _ready_example(testenv, namespace)
    deployment = next(name for kind, name in before if kind == "Deployment")
    image = before[("Deployment", deployment)]["spec"]["template"]["spec"]["containers"][0]["image"]
    # A watched child (reverted on its change event) and an unwatched one (reverted by the resync).
    testenv.kubectl("set", "image", f"deployment/{deployment}", "engine=example.com/other:1", "-n", namespace)
    testenv.kubectl("patch", "virtualservice", NAME, "-n", namespace, "--type=json",
                    "-p", json.dumps([{"op": "replace", "path": "/spec/http/0/timeout", "value": "1s"}]))

    def reverted() -> bool:
        now = children(testenv, namespace, NAME)
        return (now[("Deployment", deployment)]["spec"]["template"]["spec"]["containers"][0]["image"] == image
                and now[("VirtualService", NAME)]["spec"]["http"][0]["timeout"] == "600s")

    wait_for("the image and the route timeout reverted", reverted, 30)


def test_a_restarted_operator_adopts_children_without_recreating_them(testenv: Env, namespace: str, operator) -> None:
    before = _ready_example(testenv, namespace)
    operator.stop()
    since = audit_offset(testenv)
    operator.start()
    wait_for("a resync after the restart", lambda: operator.metric("autoglm_operator_reconciles_total") >= 2, 30)

    after = children(testenv, namespace, NAME)
    assert {k: o["metadata"]["uid"] for k, o in after.items()} == {k: o["metadata"]["uid"] for k, o in before.items()}
    assert {k: o["metadata"]["resourceVersion"] for k, o in after.items()} == {
        k: o["metadata"]["resourceVersion"] for k, o in before.items()}
    assert describe(writes_by(testenv, operator.user, since)) == []


def test_deleting_the_resource_removes_every_child(testenv: Env, namespace: str, operator) -> None:
    assert _ready_example(testenv, namespace)
    testenv.kubectl("delete", "autoglmdeployment", NAME, "-n", namespace, "--timeout=30s")
    wait_for("every child garbage-collected", lambda: children(testenv, namespace, NAME) == {}, 60)
    pods = testenv.kubectl_json("get", "pods", "-n", namespace, "-l", f"autoglm.io/instance={NAME}")["items"]
    assert all(p["metadata"].get("deletionTimestamp") for p in pods)
