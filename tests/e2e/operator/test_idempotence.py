"""Reconciling an unchanged resource writes nothing: counted in the API server's audit log for the
operator's own ServiceAccount over several resyncs (every 2 s here)."""
from __future__ import annotations

import time

import pytest
from operator_support import (
    apply,
    children,
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

    writes, resyncs = _steady_state(testenv, operator)
    assert writes == []
    assert resyncs >= 8, f"only {resyncs} reconciles of 4 resources in 8 s: the resync timer did not run"


def _steady_state(testenv: Env, operator, seconds: float = 8) -> tuple[list[str], float]:
    """The operator's writes during `seconds` of resyncs (every 2 s) once it was quiet, and how many
    reconciles ran meanwhile. A window in which the cluster itself changed (a node's heartbeat
    lapsed, so every pod turned NotReady) proves nothing: another is taken."""
    for _ in range(3):
        since = wait_until_quiet(testenv, operator.user, quiet_seconds=3)
        started, reconciles = time.time(), operator.metric("autoglm_operator_reconciles_total")
        time.sleep(seconds)
        writes = describe(writes_by(testenv, operator.user, since))
        if not node_readiness_changed_since(testenv, started):
            break
    return writes, operator.metric("autoglm_operator_reconciles_total") - reconciles


def test_values_the_api_server_normalises_are_not_drift(testenv: Env, namespace: str, operator) -> None:
    """Issue 15, fault 4: an empty env value (stored without `value`) and re-spelt quantities
    (stored canonical) were re-applied with an Event at every resync."""
    cr = example("01-minimal.yaml", namespace)
    cr["spec"]["runtime"] = {"env": [{"name": "HTTPS_PROXY", "value": ""}, {"name": "NO_PROXY", "value": "localhost"}]}
    cr["spec"]["resources"] = {**cr["spec"].get("resources", {}), "cpu": "1000m", "memory": "65536Mi"}
    apply(testenv, cr)
    wait_for_condition(testenv, namespace, cr["metadata"]["name"], "Ready", "True")
    deployment = next(obj for (kind, _), obj in children(testenv, namespace, cr["metadata"]["name"]).items()
                      if kind == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "HTTPS_PROXY"} in container["env"], "the server stores an empty value as no value"
    assert container["resources"]["limits"]["cpu"] == "1", "and 1000m as 1"

    writes, resyncs = _steady_state(testenv, operator)
    assert writes == []
    assert resyncs >= 3
