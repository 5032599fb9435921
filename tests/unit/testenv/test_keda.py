"""KEDA in the local environment: its registration with the API server points at 127.0.0.1, its
pods get their cold start from their namespace, and the engine's capacity follows Ready pods."""
from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace

import pytest

from autoglm_testenv import capacity, cold_start, keda

PORTS = {name: 20000 + i for i, name in enumerate(keda.PORT_NAMES)}
WEBHOOKS = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "keda-admission"},
            "webhooks": [{"name": "vscaledobject.kb.io", "failurePolicy": "Ignore",
                          "clientConfig": {"service": {"name": "keda-admission-webhooks", "namespace": "keda",
                                                       "path": "/validate-keda-sh-v1alpha1-scaledobject"}}}]}


def test_the_webhooks_are_called_on_127_0_0_1_with_the_environment_ca() -> None:
    objects = {o["kind"]: o for o in keda.registration(WEBHOOKS, b"CA", PORTS)}
    hook = objects["ValidatingWebhookConfiguration"]["webhooks"][0]
    assert hook["clientConfig"] == {"url": f"https://127.0.0.1:{PORTS['keda_webhooks']}/validate-keda-sh-v1alpha1-scaledobject",
                                    "caBundle": base64.b64encode(b"CA").decode()}
    assert hook["failurePolicy"] == "Ignore", "KEDA's own settings are kept"
    assert "service" in WEBHOOKS["webhooks"][0]["clientConfig"], "the input is not changed"


def test_the_external_metrics_reach_the_adapter_through_an_external_name_service() -> None:
    objects = {o["kind"]: o for o in keda.registration(WEBHOOKS, b"CA", PORTS)}
    service, api = objects["Service"], objects["APIService"]
    assert service["spec"] == {"type": "ExternalName", "externalName": "localhost"}
    assert api["metadata"]["name"] == "v1beta1.external.metrics.k8s.io"
    assert api["spec"]["service"] == {"name": service["metadata"]["name"], "namespace": "keda", "port": PORTS["keda_adapter"]}


def test_every_keda_process_listens_on_loopback_or_a_port_of_its_own() -> None:
    bins = SimpleNamespace(keda_bin=Path("/keda/bin"))
    argvs = keda.argvs(bins, Path("/certs"), PORTS, Path("/kubeconfig"))  # type: ignore[arg-type]
    assert set(argvs) == set(keda.PROCESSES)
    for argv in argvs.values():
        for arg in argv:
            if "address=" in arg and "service-address" not in arg:
                assert arg.split("=", 1)[1].startswith("127.0.0.1"), arg
    assert f"--metrics-service-address=127.0.0.1:{PORTS['keda_grpc']}" in argvs["keda-adapter"]


DELETING = {"key": ".metadata.deletionTimestamp", "operator": "Exists"}
STAGES = [{"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name},
           "spec": {"resourceRef": {"kind": "Pod"}, "selector": {"matchExpressions": [DELETING]}, "next": {}}}
          for name in ("pod-complete", "pod-ready", "pod-delete")]


def test_only_the_pod_ready_stage_waits_for_the_pods_delay_annotation() -> None:
    complete, ready, _, _ = cold_start.pod_stages(STAGES)
    assert complete == STAGES[0]
    assert ready["spec"]["delay"] == {"durationMilliseconds": 0, "durationFrom": {
        "expressionFrom": '.metadata.annotations["pod-ready.stage.kwok.x-k8s.io/delay"]'}}
    assert "delay" not in STAGES[1]["spec"], "the input is not changed"


def test_opted_in_pods_are_deleted_at_their_deletion_timestamp_the_others_at_once() -> None:
    *_, graceful, instant = cold_start.pod_stages(STAGES)
    opted_in = '.metadata.annotations["testenv.autoglm.io/termination"]'
    assert graceful["metadata"]["name"] == cold_start.GRACEFUL_DELETE_STAGE
    assert graceful["spec"]["selector"]["matchExpressions"] == [DELETING, {"key": opted_in, "operator": "Exists"}]
    assert graceful["spec"]["delay"]["durationFrom"] == {"expressionFrom": ".metadata.deletionTimestamp"}
    assert instant["metadata"]["name"] == "pod-delete" and "delay" not in instant["spec"]
    assert instant["spec"]["selector"]["matchExpressions"] == [DELETING, {"key": opted_in, "operator": "DoesNotExist"}]


def test_stages_without_pod_ready_or_pod_delete_are_refused() -> None:
    for missing in (1, 2):
        with pytest.raises(ValueError, match="pod-ready and pod-delete"):
            cold_start.pod_stages(STAGES[:missing] + STAGES[missing + 1:])


@pytest.mark.parametrize(("seconds", "value"), [(20, "20s"), (2.5, "2.5s"), (0, None)])
def test_a_namespace_asks_for_a_go_duration_or_none(seconds: float, value: str | None) -> None:
    assert cold_start.namespace_patch(seconds) == {"metadata": {"annotations": {cold_start.NAMESPACE_ANNOTATION: value}}}


def test_a_negative_cold_start_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        cold_start.namespace_patch(-1)


def test_the_policy_copies_the_namespace_annotation_onto_new_pods() -> None:
    policy, binding = cold_start.policy()
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert policy["spec"]["matchConstraints"]["resourceRules"][0]["operations"] == ["CREATE"]
    expression = policy["spec"]["mutations"][0]["applyConfiguration"]["expression"]
    assert cold_start.KWOK_DELAY_ANNOTATION in expression and cold_start.NAMESPACE_ANNOTATION in expression
    assert cold_start.TERMINATION_ANNOTATION in policy["spec"]["mutations"][1]["applyConfiguration"]["expression"]


def _deployment(ready: int | None) -> SimpleNamespace:
    return SimpleNamespace(status=SimpleNamespace(ready_replicas=ready))


def test_capacity_is_ready_pods_times_slots_and_never_zero() -> None:
    assert capacity.ready_pods([_deployment(2), _deployment(None), _deployment(1)]) == 3
    assert capacity.slots(3, 8) == 24
    assert capacity.slots(0, 8) == 1
