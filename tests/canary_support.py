"""Helpers for the canary e2e tests: a CR with a short rollout, the live route, and a traffic loop that
splits requests between the simulated engines exactly as the live VirtualService says (there is no
Envoy in the test environment, so the loop plays the sidecar: weights, and mirror copies)."""
from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from kubernetes import client

from autoglm_operator.api.revision import revision
from autoglm_operator.api.spec import parse_instance

NAME = "glm-chat"


def canary_cr(namespace: str, prometheus: str, model: str = "zai-org/GLM-4-9B-0414",
              runtime: dict[str, Any] | None = None, **rollout: Any) -> dict[str, Any]:
    body = {
        "steps": [{"mirror": 50}, {"weight": 5}, {"weight": 25}, {"weight": 50}],
        "intervalSeconds": 5, "startupBudgetSeconds": 60, "failureLimit": 2, "drainDelaySeconds": 5,
        "analysis": {"prometheusAddress": prometheus, "successRateMin": 0.95, "ttftP95MaxSeconds": 1.0},
        **rollout,
    }
    spec: dict[str, Any] = {"model": {"name": model}, "rollout": body}
    if runtime:
        spec["runtime"] = runtime
    return {"apiVersion": "autoglm.io/v1alpha1", "kind": "AutoGLMDeployment",
            "metadata": {"name": NAME, "namespace": namespace}, "spec": spec}


def prometheus_series(prometheus: str, selector: str) -> list[dict[str, str]]:
    """The label sets of the series Prometheus holds for `selector` (its /api/v1/series)."""
    resp = requests.get(f"{prometheus}/api/v1/series", params={"match[]": selector}, timeout=10)
    resp.raise_for_status()
    return resp.json()["data"]


def revision_of(cr: dict[str, Any]) -> str:
    return revision(parse_instance(cr).spec)


def live_route(kube: Any, namespace: str) -> tuple[dict[str, int], int]:
    """({subset: weight} of the weighted route, mirror percent or 0)."""
    vs = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "networking.istio.io", "v1", namespace, "virtualservices", NAME)
    weighted = vs["spec"]["http"][-1]
    assert "mirrors" not in weighted
    weights = {r["destination"]["subset"]: r["weight"] for r in weighted["route"]}
    assert sum(weights.values()) == 100, weights
    mirror = int(weighted.get("mirrorPercentage", {}).get("value", 0)) if "mirror" in weighted else 0
    assert ("mirror" in weighted) == ("mirrorPercentage" in weighted), "an explicit percentage with every mirror"
    return weights, mirror


class Traffic:
    """~`rate` requests/s spread over the engines by the live VirtualService; mirror copies go to the canary too."""

    def __init__(self, kube: Any, namespace: str, engines: dict[str, str], rate: float = 25.0) -> None:
        self.kube, self.namespace, self.engines, self.rate = kube, namespace, engines, rate
        self.route: tuple[dict[str, int], int] = ({}, 0)
        self.sent: dict[str, int] = {}
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=48)
        self._threads = [threading.Thread(target=self._watch, daemon=True), threading.Thread(target=self._send, daemon=True)]

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.route = live_route(self.kube, self.namespace)
            except Exception:  # noqa: BLE001 - not created yet, or mid-update
                pass
            self._stop.wait(0.3)

    def _post(self, rev: str) -> None:
        url = self.engines.get(rev)
        if url is None:
            return
        self.sent[rev] = self.sent.get(rev, 0) + 1
        try:
            requests.post(f"{url}/v1/completions", json={"prompt": "hello " * 20, "max_tokens": 4}, timeout=15)
        except requests.RequestException:
            pass

    def _send(self) -> None:
        while not self._stop.is_set():
            weights, mirror = self.route
            if weights:
                pick = random.choices(list(weights), weights=list(weights.values()))[0] if sum(weights.values()) else None
                if pick:
                    self._pool.submit(self._post, pick)
                canary = next((rev for rev in weights if rev != max(weights, key=weights.get)), None)
                if mirror and canary and random.random() * 100 < mirror:
                    self._pool.submit(self._post, canary)
            time.sleep(1 / self.rate)
