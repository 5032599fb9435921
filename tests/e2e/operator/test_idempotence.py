"""Reconciling an unchanged resource writes nothing: counted in the API server's audit log for the
operator's own ServiceAccount over several resyncs (every 2 s here)."""
from __future__ import annotations

import time

import pytest
from operator_support import (
    apply,
    describe,
    example,
    node_readiness_changed_since,
    wait_for_condition,
    wait_until_quiet,
    writes_by,
)

from autoglm_testenv import Env

pytestmark = pytest.mark.e2e


def test_resyncs_of_an_unchanged_resource_write_nothing(testenv: Env, namespace: str, operator, model_cache: str) -> None:
    hpa = example("01-minimal.yaml", namespace)
    hpa["metadata"]["name"] = "glm-hpa"
    hpa["spec"]["autoscaling"] = {"enabled": True, "engine": "hpa", "maxReplicas": 3}
    crs = [example(f, namespace) for f in ("01-minimal.yaml", "02-keda-autoscaled.yaml", "04-secured-jwt.yaml")]
    for cr in [*crs, hpa]:  # between them every kind the operator makes, each defaulted by the server
        apply(testenv, cr)
    for cr in [*crs, hpa]:
        wait_for_condition(testenv, namespace, cr["metadata"]["name"], "Ready", "True")

    for _ in range(3):  # a window in which the cluster itself changed proves nothing: take another
        since = wait_until_quiet(testenv, operator.user, quiet_seconds=3)
        started, reconciles = time.time(), operator.metric("autoglm_operator_reconciles_total")
        time.sleep(8)  # four resyncs of each resource
        writes = describe(writes_by(testenv, operator.user, since))
        if not node_readiness_changed_since(testenv, started):
            break
    assert writes == []
    resyncs = operator.metric("autoglm_operator_reconciles_total") - reconciles
    assert resyncs >= 8, f"only {resyncs} reconciles of 4 resources in 8 s: the resync timer did not run"
