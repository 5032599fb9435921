"""The operator's own resync ticks follow kopf peering: a replica that a higher-priority one
outranks stops resyncing, as kopf's timers did (runtime/peering.py). The case kopf's own pause
does not cover: the lower replica ran first and already knows every resource."""
from __future__ import annotations

import pytest
from operator_support import apply, example, wait_for, wait_for_condition

from autoglm_testenv import Env, config

pytestmark = pytest.mark.e2e

RECONCILES = "autoglm_operator_reconciles_total"


def ready(replica) -> float:
    """The replica's per-resource series that says glm-chat is Ready (1), absent: 0."""
    return replica.metric("autoglm_deployment_condition", autoglm_deployment="glm-chat", type="Ready", status="True")


def test_a_replica_outranked_later_stops_its_ticks(testenv: Env, namespace: str, operator) -> None:
    testenv.kubectl("apply", "--server-side", "-f", str(config.REPO_DIR / "crds" / "kopf-peering.yaml"))
    apply(testenv, {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "autoglm", "namespace": namespace}})
    operator.stop()  # the standalone one
    low = operator.sibling("operator-low", "--peering=autoglm", "--priority=100")
    low.start()
    apply(testenv, example("01-minimal.yaml", namespace))
    wait_for_condition(testenv, namespace, "glm-chat", "Ready", "True")
    wait_for("the low replica resyncing", lambda: low.metric(RECONCILES) >= 3, 30)
    assert ready(low) == 1

    high = operator.sibling("operator-high", "--peering=autoglm", "--priority=200")
    high.start()
    wait_for("the high replica resyncing", lambda: high.metric(RECONCILES) >= 2, 60)

    def high_did(more: int) -> None:
        start = high.metric(RECONCILES)
        wait_for(f"{more} more reconciles by the high replica", lambda: high.metric(RECONCILES) >= start + more, 60)

    high_did(4)  # 8 s of 2 s resyncs: past the low replica's peering check (5 s)
    paused_at = low.metric(RECONCILES)
    high_did(4)
    assert low.metric(RECONCILES) == paused_at, "the outranked replica kept resyncing"
    # Only the working replica publishes per-resource series (reconcile/metrics.py stand_by).
    assert ready(high) == 1
    assert ready(low) == 0, "the outranked replica still publishes its last status"
