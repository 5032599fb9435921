"""Istio routing (networking.istio.io/v1): one subset per revision, all traffic to the serving one.

Retries are always explicit: the mesh default retries twice, and each retry of an LLM request
repeats a whole generation on a GPU.
"""
from __future__ import annotations

from typing import Any

from autoglm_operator.engines import PORT
from autoglm_operator.labels import REVISION_LABEL, metadata, service_host
from autoglm_operator.spec import Instance


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


def virtual_service(inst: Instance, revision: str) -> dict[str, Any]:
    traffic = inst.spec.traffic
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
    spec["http"] = [
        {
            "name": "stable",
            "route": [{"destination": {"host": host, "subset": revision, "port": {"number": PORT}}, "weight": 100}],
            "timeout": f"{traffic.timeout_seconds}s",
            "retries": retries,
        }
    ]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": metadata(inst, inst.name, "routing"),
        "spec": spec,
    }
