"""Istio routing (networking.istio.io/v1): one subset per live revision, weights from the rollout.

Retries are always explicit: the mesh default retries twice, and each retry of an LLM request
repeats a whole generation on a GPU. During a canary the one weighted route sends `100 - weight`
percent to the stable subset and `weight` to the canary (always summing to 100); mirror steps copy
`mirror` percent to the canary with the single-destination `mirror` + `mirrorPercentage` fields
(never together with the newer `mirrors` list, which Istio rejects; without a percentage Istio
would mirror everything). Tester routes (a header match, a sticky cookie) come first, because
Istio takes the first matching http route.
"""
from __future__ import annotations

from typing import Any

from autoglm_operator.api.engines import PORT
from autoglm_operator.api.istio_rules import check_hosts
from autoglm_operator.api.labels import REVISION_LABEL, metadata, service_host
from autoglm_operator.api.spec import Instance
from autoglm_operator.render.routing import Route


def check_traffic(inst: Instance) -> None:
    """traffic.hosts as Istio's validation judges the VirtualService rendered here: its first host is
    the model's Service, and it is always bound to the mesh (api.istio_rules). The syntax of each
    host, gateway and retry condition is already checked by the schema; this adds what depends on
    the resource's name and namespace (a host overlapping the Service host)."""
    check_hosts(inst.spec.traffic.hosts, service_host(inst))


def destination_rule(inst: Instance, revisions: list[str]) -> dict[str, Any]:
    """One subset per live revision: a VirtualService may only name a subset that already exists."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": metadata(inst, inst.name, "routing"),
        "spec": {
            "host": service_host(inst),
            # Generations vary from milliseconds to minutes; round robin piles work on busy pods.
            "trafficPolicy": {"loadBalancer": {"simple": "LEAST_REQUEST"}},
            "subsets": [{"name": rev, "labels": {REVISION_LABEL: rev}} for rev in revisions],
        },
    }


def virtual_service(inst: Instance, revision: str, route: Route | None = None) -> dict[str, Any]:
    """All traffic to `revision`, or split as `route` says (its stable revision is `revision`)."""
    traffic = inst.spec.traffic
    route = route or Route(stable=revision)
    retries: dict[str, Any] = {"attempts": traffic.retries.attempts}
    if traffic.retries.attempts:
        retries["retryOn"] = traffic.retries.retry_on
        if traffic.retries.per_try_timeout_seconds:
            retries["perTryTimeout"] = f"{traffic.retries.per_try_timeout_seconds}s"
    host = service_host(inst)
    spec: dict[str, Any] = {"hosts": [host, *traffic.hosts]}
    if traffic.gateways:
        # Listing gateways replaces the implicit "mesh"; keep in-cluster callers routed too.
        spec["gateways"] = [*traffic.gateways, "mesh"]
    common = {"timeout": f"{traffic.timeout_seconds}s", "retries": retries}

    def to(subset: str) -> dict[str, Any]:
        return {"host": host, "subset": subset, "port": {"number": PORT}}

    http: list[dict[str, Any]] = []
    rollout = inst.spec.rollout
    canary = route.canary
    if canary and route.testers and rollout is not None:
        if rollout.header is not None:
            http.append({"name": "canary-header", "match": [{"headers": {rollout.header.name: {"exact": rollout.header.value}}}],
                         "route": [{"destination": to(canary), "weight": 100}], **common})
        if rollout.sticky_cookie:
            cookie = f"{rollout.sticky_cookie}={canary}"
            http.append({"name": "canary-cookie", "match": [{"headers": {"cookie": {"regex": f"^(.*?;\\s*)?{cookie}(;.*)?$"}}}],
                         "route": [{"destination": to(canary), "weight": 100}], **common})
    weighted: dict[str, Any] = {"name": "stable", "route": [{"destination": to(route.stable), "weight": 100 - route.weight}]}
    if canary:
        entry: dict[str, Any] = {"destination": to(canary), "weight": route.weight}
        if rollout is not None and rollout.sticky_cookie and route.testers and route.weight:
            ttl = rollout.interval_seconds * len(rollout.steps)
            entry["headers"] = {"response": {"add": {"Set-Cookie": f"{rollout.sticky_cookie}={canary}; Max-Age={ttl}; Path=/"}}}
        weighted["route"].append(entry)
    if canary and route.mirror:
        weighted["mirror"] = to(canary)
        weighted["mirrorPercentage"] = {"value": float(route.mirror)}
    http.append({**weighted, **common})
    spec["http"] = http
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": metadata(inst, inst.name, "routing"),
        "spec": spec,
    }
