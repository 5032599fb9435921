"""The endpoint picker the operator runs for an InferencePool counts in Ready (trial finding 3).

Example 09's picker runs as a ServiceAccount the user must create: without it the picker's pod is
never created (FailedCreate) and the gateway has no picker, so the resource must not read
Ready=True Serving. It says EndpointPickerNotReady with the Deployment controller's cause, then
turns Ready once the ServiceAccount exists. Needs the Gateway API and InferencePool CRDs in the
test environment (the operator discovers them)."""
from __future__ import annotations

import pytest
from operator_support import apply, condition, example, wait_for, wait_for_condition

from autoglm_testenv import Env

pytestmark = pytest.mark.e2e


def test_a_picker_without_its_service_account_keeps_the_resource_not_ready_naming_why(
        testenv: Env, namespace: str, operator) -> None:
    cr = example("01-minimal.yaml", namespace)
    cr["spec"]["traffic"] = {"provider": "inference-pool", "parentRefs": [{"name": "inference-gateway"}],
                             "endpointPicker": {"serviceAccountName": "endpoint-picker"}}
    name = cr["metadata"]["name"]
    apply(testenv, cr)

    waiting = wait_for_condition(testenv, namespace, name, "Ready", "False", "EndpointPickerNotReady", timeout=90)

    def cause() -> str | None:
        message = condition(testenv.kubectl_json("get", "agd", name, "-n", namespace), "Ready")["message"]
        return message if "FailedCreate" in message else None

    message = wait_for("the FailedCreate cause in Ready", cause, 90)
    assert 'serviceaccount "endpoint-picker" not found' in message, message
    assert waiting["status"]["phase"] != "Ready"

    apply(testenv, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "endpoint-picker", "namespace": namespace}})
    ready = wait_for_condition(testenv, namespace, name, "Ready", "True", "Serving", timeout=240)
    assert ready["status"]["phase"] == "Ready"
