"""Autoscaling switched on and off: the replica count survives the hand-over between the operator
and the autoscaler, and the autoscaler object comes and goes with the setting."""
from __future__ import annotations

import pytest
from operator_support import apply, children, example, wait_for, wait_for_condition, wait_until_quiet

from autoglm_testenv import Env

pytestmark = pytest.mark.e2e

NAME = "glm-chat"


def test_switching_autoscaling_on_keeps_the_running_replicas(testenv: Env, namespace: str, operator) -> None:
    """Without the hand-over, server-side apply would drop `replicas` and the Deployment fall to 1."""
    cr = example("01-minimal.yaml", namespace)
    cr["spec"]["replicas"] = 3
    apply(testenv, cr)
    rev = wait_for_condition(testenv, namespace, NAME, "Ready", "True")["status"]["currentRevision"]

    cr["spec"]["autoscaling"] = {"enabled": True, "minReplicas": 1, "maxReplicas": 8}
    apply(testenv, cr)
    wait_for("the ScaledObject", lambda: ("ScaledObject", NAME) in children(testenv, namespace, NAME), 30)
    wait_until_quiet(testenv, operator.user, quiet_seconds=3)
    deployment = testenv.kubectl_json("get", "deployment", f"{NAME}-{rev}", "-n", namespace, "--show-managed-fields")
    assert deployment["spec"]["replicas"] == 3, "KEDA is not running here, so nothing else changed it"
    managers = {e["manager"] for e in deployment["metadata"]["managedFields"] if "f:replicas" in e["fieldsV1"].get("f:spec", {})}
    assert "autoglm-operator" not in managers

    cr["spec"]["autoscaling"] = {"enabled": False}
    cr["spec"]["replicas"] = 2
    apply(testenv, cr)
    wait_for("the Deployment back at spec.replicas", lambda: testenv.kubectl_json(
        "get", "deployment", f"{NAME}-{rev}", "-n", namespace)["spec"]["replicas"] == 2, 30)
    assert ("ScaledObject", NAME) not in children(testenv, namespace, NAME)
