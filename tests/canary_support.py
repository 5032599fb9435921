"""Helpers for the canary e2e tests: a CR with a short rollout, the live route, and a traffic loop that
splits requests between the simulated engines exactly as the live VirtualService or HTTPRoute says
(there is no Envoy or gateway in the test environment, so the loop plays it: weights, and mirror
copies), and a watch that sees every version of the route the API server stores."""
from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from kubernetes import client, watch

from autoglm_operator.api.revision import revision
from autoglm_operator.api.spec import parse_instance

NAME = "glm-chat"
PROVIDERS = ("istio", "gateway-api", "inference-pool")
# Where each provider's route lives: (group, version, plural).
ROUTE_API = {"istio": ("networking.istio.io", "v1", "virtualservices")}
ROUTE_API["gateway-api"] = ROUTE_API["inference-pool"] = ("gateway.networking.k8s.io", "v1", "httproutes")


def canary_cr(namespace: str, prometheus: str, model: str = "zai-org/GLM-4-9B-0414",
              runtime: dict[str, Any] | None = None, provider: str = "istio", **rollout: Any) -> dict[str, Any]:
    body = {
        "steps": [{"mirror": 50}, {"weight": 5}, {"weight": 25}, {"weight": 50}],
        "intervalSeconds": 5, "startupBudgetSeconds": 60, "failureLimit": 2, "drainDelaySeconds": 5,
        "analysis": {"prometheusAddress": prometheus, "successRateMin": 0.95, "ttftP95MaxSeconds": 1.0},
        **rollout,
    }
    spec: dict[str, Any] = {"model": {"name": model}, "rollout": body}
    if runtime:
        spec["runtime"] = runtime
    if provider != "istio":
        spec["traffic"] = {"provider": provider, "parentRefs": [{"name": "inference-gateway"}]}
    return {"apiVersion": "autoglm.io/v1alpha1", "kind": "AutoGLMDeployment",
            "metadata": {"name": NAME, "namespace": namespace}, "spec": spec}


def prometheus_series(prometheus: str, selector: str) -> list[dict[str, str]]:
    """The label sets of the series Prometheus holds for `selector` (its /api/v1/series)."""
    resp = requests.get(f"{prometheus}/api/v1/series", params={"match[]": selector}, timeout=10)
    resp.raise_for_status()
    return resp.json()["data"]


def revision_of(cr: dict[str, Any]) -> str:
    return revision(parse_instance(cr).spec)


def route_of(obj: dict[str, Any]) -> tuple[dict[str, int], int]:
    """({revision: weight} of the weighted route, mirror percent or 0) of a VirtualService or HTTPRoute;
    asserts the weights sum to 100 and the mirror has an explicit percentage."""
    if obj["kind"] == "VirtualService":
        weighted = obj["spec"]["http"][-1]
        assert "mirrors" not in weighted
        weights = {r["destination"]["subset"]: r["weight"] for r in weighted["route"]}
        mirror = int(weighted.get("mirrorPercentage", {}).get("value", 0)) if "mirror" in weighted else 0
        assert ("mirror" in weighted) == ("mirrorPercentage" in weighted), "an explicit percentage with every mirror"
    else:  # HTTPRoute: backends are <NAME>-<revision> (a Service or an InferencePool)
        weighted = next(r for r in obj["spec"]["rules"] if r.get("name") == "stable")
        weights = {b["name"].removeprefix(f"{NAME}-"): b["weight"] for b in weighted["backendRefs"]}
        mirrors = [f["requestMirror"] for f in weighted.get("filters", []) if f["type"] == "RequestMirror"]
        assert len(mirrors) <= 1 and all("percent" in m for m in mirrors), "an explicit percentage with every mirror"
        mirror = mirrors[0]["percent"] if mirrors else 0
    assert sum(weights.values()) == 100, weights
    return weights, mirror


def live_route(kube: Any, namespace: str, provider: str = "istio") -> tuple[dict[str, int], int]:
    """({revision: weight} of the weighted route, mirror percent or 0) as the API server has it now."""
    group, version, plural = ROUTE_API[provider]
    return route_of(client.CustomObjectsApi(kube).get_namespaced_custom_object(group, version, namespace, plural, NAME))


class RouteVersions:
    """Every version of the route the API server stores while it runs (a watch misses none between
    its start and stop unless etcd compacts them away), each judged by route_of."""

    def __init__(self, kube: Any, namespace: str, provider: str) -> None:
        self.kube, self.namespace, self.provider = kube, namespace, provider
        self.versions: dict[str, tuple[dict[str, int], int] | str] = {}  # resourceVersion -> route, or the error
        self._watch = watch.Watch()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RouteVersions:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stopping.set()
        self._watch.stop()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            self._stream()
        except Exception as exc:  # noqa: BLE001 - a broken watch is a finding unless it was being stopped
            if not self._stopping.is_set():
                self.versions["watch"] = f"the watch broke: {type(exc).__name__}: {exc}"

    def _stream(self) -> None:
        group, version, plural = ROUTE_API[self.provider]
        api = client.CustomObjectsApi(self.kube)
        for event in self._watch.stream(api.list_namespaced_custom_object, group, version, self.namespace, plural,
                                        field_selector=f"metadata.name={NAME}", timeout_seconds=600):
            obj = event["object"]
            if event["type"] in ("ADDED", "MODIFIED"):
                try:
                    self.versions[obj["metadata"]["resourceVersion"]] = route_of(obj)
                except (AssertionError, KeyError, StopIteration) as exc:
                    self.versions[obj["metadata"]["resourceVersion"]] = f"{type(exc).__name__}: {exc}"

    def broken(self) -> list[str]:
        """Versions whose weights did not sum to 100 (or that had no weighted route)."""
        return [f"{rv}: {found}" for rv, found in self.versions.items() if isinstance(found, str)]


class Traffic:
    """~`rate` requests/s spread over the engines by the live route; mirror copies go to the canary too."""

    def __init__(self, kube: Any, namespace: str, engines: dict[str, str], rate: float = 25.0, provider: str = "istio") -> None:
        self.kube, self.namespace, self.engines, self.rate, self.provider = kube, namespace, engines, rate, provider
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
                self.route = live_route(self.kube, self.namespace, self.provider)
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
