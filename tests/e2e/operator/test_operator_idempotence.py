"""Reconciling an unchanged resource writes nothing: counted in the API server's audit log for the
operator's own ServiceAccount over several resyncs (every 2 s here)."""
from __future__ import annotations

import time

import pytest
from operator_support import apply, describe, example, wait_for_condition, wait_until_quiet, writes_by

from autoglm_testenv import Env

pytestmark = pytest.mark.e2e


def test_resyncs_of_an_unchanged_resource_write_nothing(testenv: Env, namespace: str, operator, model_cache: str) -> None:
    apply(testenv, example("01-minimal.yaml", namespace))
    apply(testenv, example("02-keda-autoscaled.yaml", namespace))  # adds a ScaledObject and a PVC mount
    for name in ("glm-chat", "glm-autoscaled"):
        wait_for_condition(testenv, namespace, name, "Ready", "True")

    since = wait_until_quiet(testenv, operator.user, quiet_seconds=3)
    reconciles = operator.metric("autoglm_operator_reconciles_total")
    time.sleep(8)  # four resyncs of each resource

    assert describe(writes_by(testenv, operator.user, since)) == []
    resyncs = operator.metric("autoglm_operator_reconciles_total") - reconciles
    assert resyncs >= 4, f"only {resyncs} reconciles in 8 s: the resync timer did not run"
