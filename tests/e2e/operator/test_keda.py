"""The operator against real KEDA (operator, external metrics API server, admission webhooks) and
the real HPA controller: the predictive floor reaches the HPA and, after the cold start, Ready
pods; a threshold change does not drop replicas (kedacore/keda#4578); KEDA's admission refuses
what it should and the operator reports the refusal; the operator never writes the replicas KEDA's
HPA owns. Load comes from a simulated engine that Prometheus scrapes, read by KEDA's Prometheus
trigger; kwok turns new pods Ready only after the namespace's cold start (testenv cold_start.py)."""
from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest
import autoscaling_support
from autoscaling_support import floor_becomes_ready_pods, hold_requests, replicas_managers, replicas_writes
from operator_support import apply, audit_offset, condition, example, resource, wait_for, wait_for_condition
from pipeline_support import PREDICTIVE

from autoglm_testenv import Env

pytestmark = pytest.mark.e2e

NAME = "glm-chat"
HPA = f"keda-hpa-{NAME}"  # the name KEDA gives the HPA of a ScaledObject
COLD_START = 6.0  # seconds; long enough to see pods asked for but not yet Ready


def keda_cr(namespace: str, prometheus: str, per_replica: float = 4, **predictive: Any) -> dict[str, Any]:
    cr = example("01-minimal.yaml", namespace)
    cr["spec"]["autoscaling"] = {"enabled": True, "engine": "keda", "minReplicas": 1, "maxReplicas": 6,
                                 "target": {"perReplica": per_replica}, "prometheusAddress": prometheus,
                                 "scaleDownStabilizationSeconds": 60,
                                 "predictive": {"enabled": bool(predictive), **predictive}}
    return cr


def hpa(testenv: Env, namespace: str) -> dict[str, Any]:
    return autoscaling_support.hpa(testenv, namespace, HPA)


def deployment(testenv: Env, namespace: str) -> dict[str, Any]:
    return autoscaling_support.current_deployment(testenv, namespace, NAME)


def scaled_object_condition(testenv: Env, namespace: str, kind: str) -> dict[str, Any]:
    """The ScaledObject's condition `kind` as KEDA writes it (Ready, Active, Fallback, Paused: KEDA's
    api/v1alpha1 condition_types.go); {} while the ScaledObject or the condition is missing."""
    found = testenv.kubectl("get", "scaledobject", NAME, "-n", namespace, "-o", "json", check=False)
    if found.returncode != 0:
        return {}
    return condition(json.loads(found.stdout), kind)


def scaled_object_ready(testenv: Env, namespace: str) -> bool:
    """KEDA has taken the ScaledObject on: its Ready condition is True."""
    return scaled_object_condition(testenv, namespace, "Ready").get("status") == "True"


@PREDICTIVE
def test_the_floor_becomes_the_hpa_minimum_then_ready_pods_after_the_cold_start(testenv: Env, kube, namespace: str,
                                                                                 operator) -> None:
    testenv.set_cold_start(namespace, COLD_START)
    apply(testenv, keda_cr(namespace, testenv.prometheus_url, maxFloor=5))
    wait_for_condition(testenv, namespace, NAME, "Ready", "True", timeout=90)
    wait_for("KEDA's HPA at the reactive minimum", lambda: (hpa(testenv, namespace) or {}).get("spec", {})
             .get("minReplicas") == 1, 60)
    wait_for("the ScaledObject Ready in KEDA", lambda: scaled_object_ready(testenv, namespace), 60)
    since = audit_offset(testenv)

    floor_becomes_ready_pods(testenv, kube, namespace, NAME, HPA, 3, 4.0, COLD_START)

    # KEDA's HPA owns the replicas: the operator wrote no Deployment (nor its scale) meanwhile.
    assert replicas_writes(testenv, operator.user, since) == []
    managers = replicas_managers(deployment(testenv, namespace))
    assert "autoglm-operator" not in managers, managers


def test_a_threshold_change_does_not_drop_replicas_to_the_minimum(testenv: Env, kube, namespace: str, operator,
                                                                  sim_engine) -> None:
    """kedacore/keda#4578: replicas fell to minReplicaCount while KEDA replaced the HPA's metric on a
    trigger change. The Deployment's spec.replicas is read ten times a second across the change."""
    import kubernetes

    cr = keda_cr(namespace, testenv.prometheus_url, per_replica=4)
    apply(testenv, cr)
    rev = wait_for_condition(testenv, namespace, NAME, "Ready", "True", timeout=90)["status"]["currentRevision"]
    engine = sim_engine(namespace=namespace, deployment=NAME, revision=rev)
    hold_requests(engine.url, 12)  # 12 in flight / 4 per replica = 3 replicas
    wait_for("the HPA at 3 replicas from the load", lambda: deployment(testenv, namespace)["spec"]["replicas"] == 3, 60)

    seen: list[int] = []
    errors: list[Exception] = []
    stop = threading.Event()

    def watch() -> None:
        """spec.replicas ten times a second: the HPA controller changes it at most once a second
        (its sync period here), so a drop to the minimum would be read several times."""
        apps = kubernetes.client.AppsV1Api(testenv.api_client())  # its own connections, not the session's
        while not stop.is_set():
            try:
                seen.append(apps.read_namespaced_deployment_scale(f"{NAME}-{rev}", namespace,
                                                                  _request_timeout=5).spec.replicas)
            except Exception as exc:  # noqa: BLE001 - any failure to read fails the test below
                errors.append(exc)
            stop.wait(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    wait_for("the first reading", lambda: seen or errors, 10)
    cr["spec"]["autoscaling"]["target"]["perReplica"] = 3  # 12 / 3 = 4 replicas
    apply(testenv, cr)
    wait_for("the new threshold in the HPA's target", lambda: (hpa(testenv, namespace) or {}).get("spec", {}).get(
        "metrics", [{}])[0].get("external", {}).get("target", {}).get("averageValue") == "3", 30)
    wait_for("the HPA at 4 replicas", lambda: deployment(testenv, namespace)["spec"]["replicas"] == 4, 60)
    wait_for("the HPA's own status at 4", lambda: hpa(testenv, namespace)["status"].get("desiredReplicas") == 4, 30)
    stop.set()
    watcher.join(timeout=10)
    assert not errors and seen and min(seen) >= 3, f"spec.replicas seen across the change: {seen}; errors: {errors}"


def test_keda_admission_refuses_and_the_operator_reports_it(testenv: Env, namespace: str, operator) -> None:
    cr = example("01-minimal.yaml", namespace)
    apply(testenv, cr)
    rev = wait_for_condition(testenv, namespace, NAME, "Ready", "True", timeout=90)["status"]["currentRevision"]
    target = f"{NAME}-{rev}"

    def scaled_object(name: str, workload: str, **spec: Any) -> str:
        return json.dumps({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                           "metadata": {"name": name, "namespace": namespace},
                           "spec": {"scaleTargetRef": {"name": workload}, **spec, "triggers": [
                               {"type": "prometheus", "metadata": {"serverAddress": testenv.prometheus_url,
                                                                   "query": "vector(1)", "threshold": "1"}}]}})

    # min > max: refused at admission (by the CEL rule of KEDA's CRD, before its webhook is asked).
    refused = testenv.kubectl("apply", "-f", "-", input=scaled_object("inverted", "elsewhere", minReplicaCount=5,
                                                                       maxReplicaCount=2), check=False)
    assert refused.returncode != 0 and "minReplicaCount must be less than or equal to maxReplicaCount" in refused.stderr

    # A second ScaledObject on one Deployment: KEDA's webhook refuses it.
    # KEDA's webhook names the first ScaledObject, or the HPA KEDA made for it once its cache has that HPA.
    testenv.kubectl("apply", "-f", "-", input=scaled_object("by-hand", target))
    refusal = f"the workload '{target}' of type 'apps/v1.Deployment' is already managed by the"
    refused = testenv.kubectl("apply", "-f", "-", input=scaled_object("second", target), check=False)
    assert refused.returncode != 0, "KEDA's webhook let a second ScaledObject on one Deployment through"
    assert re.search(f'admission webhook "vscaledobject.kb.io" denied the request: {re.escape(refusal)} '
                     "(ScaledObject 'by-hand'|hpa 'keda-hpa-by-hand')", refused.stderr), refused.stderr

    # The operator's own ScaledObject for the same Deployment: refused, and said so in a condition.
    cr["spec"]["autoscaling"] = {"enabled": True, "engine": "keda", "minReplicas": 1, "maxReplicas": 4,
                                 "prometheusAddress": testenv.prometheus_url}
    apply(testenv, cr)

    def reported() -> dict[str, Any] | None:
        conditions = testenv.kubectl_json("get", "agd", NAME, "-n", namespace).get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["status"] == "False"
                     and refusal in c.get("message", "")), None)

    found = wait_for("a condition with KEDA's refusal", reported, 60)
    assert (found["type"], found["reason"]) == ("Ready", "ApplyFailed"), found


def test_a_scaler_keda_cannot_run_makes_the_resource_degraded(testenv: Env, namespace: str, operator) -> None:
    """Example 02 locally: its ScaledObject's Prometheus does not exist. KEDA says so on the
    ScaledObject only; the operator reads its child and says so too, while the pods keep serving.

    What KEDA 2.20.1 says is Fallback=True, not Ready=False: the operator renders a `fallback`, so
    after `failureThreshold` failed reads (one per HPA sync) KEDA's metrics server hands the HPA the
    fallback value (the HPA turns ScalingActive=True again) and marks the ScaledObject Fallback=True
    until a read succeeds (pkg/fallback/fallback.go GetMetricsWithFallback). Its Ready stays True:
    the scale loop sets Ready=False "TriggerError" only for a failing trigger without a fallback, and
    "HPAMetricsUnavailable" only for an HPA that cannot scale, which the fallback prevents
    (pkg/scaling/executor/scale_scaledobjects.go RequestScale, checkHPAHealth). Seen over 2 min with
    the spec below: Fallback=True from ~6 s on, steady; Ready=True throughout."""
    apply(testenv, keda_cr(namespace, "http://prometheus.autoglm.invalid:9090"))  # .invalid never resolves (RFC 6761)

    # The HPA's own FailedGetExternalMetric may make the resource Degraded first, for the few seconds
    # before KEDA falls back; KEDA's Fallback=True then stays, and so does the Degraded it makes.
    fallback = f"ScaledObject {NAME} uses its fallback replicas (FallbackExists)"

    def degraded_by_the_fallback() -> dict[str, Any] | None:
        cr = resource(testenv, namespace, NAME)
        degraded = condition(cr, "Degraded")
        reported = (degraded.get("status"), degraded.get("reason")) == ("True", "AutoscalerFailed")
        return cr if reported and fallback in degraded.get("message", "") else None

    found = wait_for("KEDA's fallback in the Degraded condition", degraded_by_the_fallback, 90)
    ready = condition(found, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "AutoscalerFailed"), ready
    assert fallback in ready["message"], ready
    assert found["status"]["phase"] == "Degraded"
    assert scaled_object_condition(testenv, namespace, "Fallback")["status"] == "True"

    # Pointed at a Prometheus that answers, KEDA reads the metric again, ends its fallback, and the
    # resource serves plainly again.
    apply(testenv, keda_cr(namespace, testenv.prometheus_url))
    wait_for_condition(testenv, namespace, NAME, "Ready", "True", "Serving", timeout=60)
