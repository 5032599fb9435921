"""A pod no node can take: the resource says why (the scheduler's own words), the operator does not
spin, and it recovers as soon as the spec fits."""
from __future__ import annotations

import time

import pytest
from operator_support import apply, children, condition, example, resource, wait_for_condition

from autoglm_testenv import Env, procs

pytestmark = pytest.mark.e2e


def test_more_gpus_than_any_node_has(testenv: Env, namespace: str, operator) -> None:
    cr = example("01-minimal.yaml", namespace)
    cr["spec"]["resources"] = {"gpu": {"count": 16}}  # the GPU nodes have 8 each
    apply(testenv, cr)

    stuck = wait_for_condition(testenv, namespace, "glm-chat", "Ready", "False", "Unschedulable")
    message = condition(stuck, "Ready")["message"]
    assert "Insufficient nvidia.com/gpu" in message, message
    assert condition(stuck, "Degraded")["status"] == "True"
    assert condition(stuck, "Progressing")["status"] == "False"

    errors = operator.metric("autoglm_operator_reconciles_total", result="error")
    time.sleep(5)  # a couple of resyncs: the reason holds, and the operator neither fails nor retries in a loop
    assert procs.alive(operator.pid)
    assert condition(resource(testenv, namespace, "glm-chat"), "Ready")["reason"] == "Unschedulable"
    assert operator.metric("autoglm_operator_reconciles_total", result="error") - errors <= 1  # one API hiccup at most

    cr["spec"]["resources"] = {"gpu": {"count": 1}}
    apply(testenv, cr)
    ready = wait_for_condition(testenv, namespace, "glm-chat", "Ready", "True")
    deployments = [name for kind, name in children(testenv, namespace, "glm-chat") if kind == "Deployment"]
    assert deployments == [f"glm-chat-{ready['status']['currentRevision']}"], "the unschedulable revision is retired"
