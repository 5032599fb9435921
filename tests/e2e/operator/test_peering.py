"""Several operator replicas with `--peering`: the highest priority works, the others wait, and one
takes over when it goes (kopf peering through a KopfPeering object)."""
from __future__ import annotations

import pytest
from operator_support import apply, children, example, wait_for, wait_for_condition

from autoglm_testenv import Env, config

pytestmark = pytest.mark.e2e


def test_only_the_highest_priority_replica_reconciles(testenv: Env, namespace: str, operator) -> None:
    testenv.kubectl("apply", "--server-side", "-f", str(config.REPO_DIR / "crds" / "kopf-peering.yaml"))
    apply(testenv, {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "autoglm", "namespace": namespace}})
    operator.stop()  # the standalone one
    high = operator.sibling("operator-high", "--peering=autoglm", "--priority=200")
    low = operator.sibling("operator-low", "--peering=autoglm", "--priority=100")
    high.start()
    low.start()

    apply(testenv, example("01-minimal.yaml", namespace))
    wait_for_condition(testenv, namespace, "glm-chat", "Ready", "True")
    wait_for("two resyncs by the active replica", lambda: high.metric("autoglm_operator_reconciles_total") >= 3, 30)
    assert low.metric("autoglm_operator_reconciles_total") == 0

    high.stop()
    testenv.kubectl("delete", "service/glm-chat", "-n", namespace)
    wait_for("the remaining replica restoring the Service", lambda: ("Service", "glm-chat") in children(
        testenv, namespace, "glm-chat"), 30)
    assert low.metric("autoglm_operator_reconciles_total") > 0
