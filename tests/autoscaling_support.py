"""Helpers shared by the autoscaling e2e tests (KEDA mode in test_keda.py, HPA mode in test_hpa.py):
the predictor's floor, load held on a simulated engine, the cold start each pod waited, and who
writes a Deployment's replicas."""
from __future__ import annotations

import json
import threading
import time
from typing import Any

import requests
from operator_support import wait_for, writes_by

from autoglm_operator.api.timestamps import from_epoch, parse_time
from autoglm_testenv import Env


def write_floor(kube: Any, namespace: str, name: str, floor: int, per_replica: float) -> None:
    """status.forecast as the predictor writes it (its own actuation.write), predicting `floor`
    replicas' worth of load."""
    import kubernetes

    from autoglm_predictor.pipeline import actuation

    actuation.write(kubernetes.client.CustomObjectsApi(kube), namespace, name, actuation.ForecastStatus(
        horizon_seconds=360, predicted=floor * per_replica, floor=floor, updated_at=from_epoch(time.time()), error=None))


def hold_requests(url: str, count: int) -> None:
    """Keep `count` requests in flight on the engine at `url` (each decodes for minutes); they end
    with the engine."""
    def one() -> None:
        try:
            requests.post(f"{url}/v1/completions", json={"prompt": "hi", "max_tokens": 32768}, timeout=600)
        except requests.RequestException:
            pass  # the engine was stopped at the end of the test

    for _ in range(count):
        threading.Thread(target=one, daemon=True).start()


def ready_delays(pods: list[dict[str, Any]]) -> list[float]:
    """Seconds from each pod's creation to its Ready condition, sorted (pods as `kubectl get -o json`)."""
    return sorted(parse_time(next(c for c in p["status"]["conditions"] if c["type"] == "Ready")["lastTransitionTime"])
                  .timestamp() - parse_time(p["metadata"]["creationTimestamp"]).timestamp() for p in pods)


def replicas_writes(testenv: Env, user: str, since: int) -> list[str]:
    """`user`'s writes to Deployments (the object or its scale) since the audit offset `since`."""
    return [f"{w['verb']} {w['objectRef'].get('name')}/{w['objectRef'].get('subresource', '')}"
            for w in writes_by(testenv, user, since) if w["objectRef"].get("resource") == "deployments"]


def replicas_managers(deployment: dict[str, Any]) -> set[str]:
    """The field managers that own the Deployment's spec.replicas."""
    return {e["manager"] for e in deployment["metadata"].get("managedFields", [])
            if "f:replicas" in e.get("fieldsV1", {}).get("f:spec", {})}


def hpa(testenv: Env, namespace: str, name: str) -> dict[str, Any]:
    """The HorizontalPodAutoscaler `name`, or {} while there is none."""
    found = testenv.kubectl("get", "hpa", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(found.stdout) if found.returncode == 0 else {}


def current_deployment(testenv: Env, namespace: str, name: str) -> dict[str, Any]:
    """The Deployment of the AutoGLMDeployment `name`'s current revision."""
    rev = testenv.kubectl_json("get", "agd", name, "-n", namespace)["status"]["currentRevision"]
    return testenv.kubectl_json("get", "deployment", f"{name}-{rev}", "-n", namespace)


def floor_becomes_ready_pods(testenv: Env, kube: Any, namespace: str, name: str, hpa_name: str, floor: int,
                             per_replica: float, cold_start: float) -> list[dict[str, Any]]:
    """Write `floor` as the predictor does, then check that it becomes the HPA `hpa_name`'s
    minReplicas, that the HPA controller scales the Deployment to it while the new pods are not yet
    Ready, and that `floor` pods turn Ready, each at least `cold_start` seconds (less 1 s of
    timestamp rounding) after its creation; returns the pods."""
    write_floor(kube, namespace, name, floor, per_replica)
    wait_for("the floor as the HPA's minReplicas", lambda: hpa(testenv, namespace, hpa_name)["spec"]["minReplicas"] == floor, 30)
    scaled = wait_for("the HPA scaling the Deployment to the floor", lambda: (
        lambda d: d if d["spec"]["replicas"] == floor else None)(current_deployment(testenv, namespace, name)), 30)
    assert scaled.get("status", {}).get("readyReplicas", 0) < floor, "new pods serve only after their cold start"
    wait_for(f"{floor} Ready pods", lambda: current_deployment(testenv, namespace, name).get("status", {})
             .get("readyReplicas") == floor, 60)
    pods = testenv.kubectl_json("get", "pods", "-n", namespace, "-l", f"autoglm.io/instance={name}")["items"]
    waited = ready_delays(pods)
    assert len(waited) == floor and waited[0] >= cold_start - 1, f"seconds from creation to Ready: {waited}"
    return pods
