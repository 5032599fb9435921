"""The operator in HPA mode (`autoscaling.engine: hpa`) against the real HPA controller reading the
real custom metrics API (prometheus-adapter, testenv custom_metrics.py): the predictive floor
becomes the HPA's minReplicas and, after the cold start, Ready pods; load above the target scales
out through `custom.metrics.k8s.io`; the operator never writes the replicas the HPA owns.

Load comes from a simulated engine; the capacity poller (testenv capacity.py) sets its slots from
the Ready pods and publishes its running requests split over them, labelled with the pod, which
Prometheus scrapes and the adapter serves as the HPA's Pods metric."""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import autoscaling_support
from autoscaling_support import floor_becomes_ready_pods, hold_requests, replicas_managers, replicas_writes
from operator_support import apply, audit_offset, example, wait_for, wait_for_condition
from pipeline_support import PREDICTIVE

from autoglm_testenv import Env, config, custom_metrics, procs

pytestmark = [pytest.mark.e2e, PREDICTIVE]  # its resources are predictive

NAME = "glm-chat"  # the operator names the HPA after the AutoGLMDeployment
METRIC = "vllm:num_requests_running"  # the Pods metric the operator's HPA reads for vLLM
COLD_START = 6.0  # seconds; long enough to see pods asked for but not yet Ready
PER_REPLICA = 4
SLOTS_PER_POD = 8


def hpa_cr(namespace: str, prometheus: str) -> dict[str, Any]:
    cr = example("01-minimal.yaml", namespace)
    cr["spec"]["autoscaling"] = {"enabled": True, "engine": "hpa", "minReplicas": 1, "maxReplicas": 6,
                                 "target": {"perReplica": PER_REPLICA}, "prometheusAddress": prometheus,
                                 "scaleDownStabilizationSeconds": 60,
                                 "predictive": {"enabled": True, "maxFloor": 5}}
    return cr


def hpa(testenv: Env, namespace: str) -> dict[str, Any]:
    return autoscaling_support.hpa(testenv, namespace, NAME)


def hpa_condition(found: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in found.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def deployment(testenv: Env, namespace: str) -> dict[str, Any]:
    return autoscaling_support.current_deployment(testenv, namespace, NAME)


def pod_metrics(testenv: Env, namespace: str) -> dict[str, float]:
    """The Pods metric per pod as the HPA controller reads it: from the custom metrics API (v1beta2)."""
    from kubernetes.utils import parse_quantity

    path = f"/apis/{custom_metrics.GROUP}/v1beta2/namespaces/{namespace}/pods/*/{METRIC}"
    found = testenv.kubectl("get", "--raw", path, check=False)
    if found.returncode != 0:
        return {}
    return {i["describedObject"]["name"]: float(parse_quantity(i["value"])) for i in json.loads(found.stdout)["items"]}


@pytest.fixture
def capacity(testenv: Env, tmp_path: Path) -> Iterator[Callable[[str, str], None]]:
    """Factory: run the capacity poller for NAME in `namespace` against `engine` with its per-pod
    series on a port Prometheus scrapes; stopped after the test."""
    started: list[tuple[int, Path]] = []

    def start(namespace: str, engine: str) -> None:
        port = procs.free_port()
        pid = procs.start("capacity", [
            sys.executable, "-m", "autoglm_testenv.capacity", f"--namespace={namespace}", f"--name={NAME}",
            f"--engine={engine}", f"--slots-per-pod={SLOTS_PER_POD}", f"--metrics-port={port}", f"--metric={METRIC}"],
            tmp_path, {"PYTHONPATH": str(config.HACK_DIR), "KUBECONFIG": str(testenv.kubeconfig)})
        procs.wait_until("capacity poller metrics", lambda: procs.http_ok(f"http://127.0.0.1:{port}/metrics"), 30,
                         pid, tmp_path / "capacity.log")
        started.append((pid, testenv.add_scrape_target(f"capacity-{port}", f"127.0.0.1:{port}")))

    yield start
    for pid, target in started:
        target.unlink(missing_ok=True)
        procs.stop(pid)
        print(f"--- capacity log ---\n{procs.log_tail(tmp_path / 'capacity.log', 40)}")


def test_the_floor_then_the_load_scale_the_deployment_through_the_custom_metrics_api(
        testenv: Env, kube, namespace: str, operator, sim_engine, capacity) -> None:
    testenv.set_cold_start(namespace, COLD_START)
    apply(testenv, hpa_cr(namespace, testenv.prometheus_url))
    rev = wait_for_condition(testenv, namespace, NAME, "Ready", "True", timeout=90)["status"]["currentRevision"]
    engine = sim_engine(namespace=namespace, deployment=NAME, revision=rev)
    capacity(namespace, engine.url)
    wait_for("the HPA at the reactive minimum", lambda: hpa(testenv, namespace).get("spec", {}).get("minReplicas") == 1, 60)
    # ScalingActive True: the HPA controller read its Pods metric through the custom metrics API.
    wait_for("the HPA reading its metric", lambda: hpa_condition(hpa(testenv, namespace), "ScalingActive")
             .get("status") == "True", 90)
    since = audit_offset(testenv)

    pods = floor_becomes_ready_pods(testenv, kube, namespace, NAME, NAME, 3, PER_REPLICA, COLD_START)

    # 20 requests in flight: 20/3 per Ready pod against a target of 4 -> ceil(20 / 4) = 5 replicas.
    # The HPA reads the same series and may add a pod (Ready one cold start later) before this poll
    # sees them: the floor's pods carry the load, with any pod the HPA added, and no series is lost.
    hold_requests(engine.url, 20)
    served = wait_for("the load per pod in the custom metrics API",
                      lambda: (lambda m: m if len(m) >= 3 and abs(sum(m.values()) - 20) < 0.01 else None)(
                          pod_metrics(testenv, namespace)), 60)
    assert {p["metadata"]["name"] for p in pods} <= set(served), served
    wait_for("the HPA scaling out to 5 on the load", lambda: deployment(testenv, namespace)["spec"]["replicas"] == 5, 60)
    wait_for("5 Ready pods", lambda: deployment(testenv, namespace).get("status", {}).get("readyReplicas") == 5, 60)
    current = wait_for("the HPA's reading at the target", lambda: next(
        (m for m in hpa(testenv, namespace).get("status", {}).get("currentMetrics", [])
         if m.get("pods", {}).get("current", {}).get("averageValue") == str(PER_REPLICA)), None), 60)
    assert current["pods"]["metric"]["name"] == METRIC, current
    assert hpa(testenv, namespace)["status"]["desiredReplicas"] == 5

    # The HPA owns the replicas: the operator wrote no Deployment (nor its scale) meanwhile.
    assert replicas_writes(testenv, operator.user, since) == []
    managers = replicas_managers(deployment(testenv, namespace))
    assert "autoglm-operator" not in managers, managers
