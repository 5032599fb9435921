"""The benchmark's floor: the same children the operator makes, created with the kubernetes client
directly, one create per object, no reads, no status, no retries.

The objects come from the operator's own pure renderer (`desired_objects`), so the floor does
exactly the work the operator must at the least; whatever the operator spends beyond it (reads,
kopf bookkeeping, status, Events) shows as the ours/floor ratio in bench.py.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.reconcile.kinds import kind_of
from autoglm_operator.render.desired import desired_objects


def children_of(crs: list[dict[str, Any]], capabilities: Capabilities) -> list[dict[str, Any]]:
    """Every child of every resource, as the operator renders them for a cluster with `capabilities`."""
    return [obj for cr in crs for obj in desired_objects(cr, capabilities)]


def collection_path(obj: Mapping[str, Any]) -> str:
    """The REST collection an object is created in (POST target)."""
    kind = kind_of(dict(obj))
    prefix = f"/apis/{kind.group}/{kind.version}" if kind.group else f"/api/{kind.version}"
    return f"{prefix}/namespaces/{obj['metadata']['namespace']}/{kind.plural}"


def create_all(api: Any, objects: list[dict[str, Any]], workers: int) -> float:
    """POST every object with `workers` threads; the seconds it took. Any API error is raised."""
    def create(obj: dict[str, Any]) -> None:
        method, url, headers, body, post = api.param_serialize(
            "POST", collection_path(obj), body=obj, auth_settings=["BearerToken"],
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
        )
        response = api.call_api(method, url, headers, body, post)
        response.read()
        if response.status >= 300:
            raise RuntimeError(f"creating {obj['kind']} {obj['metadata']['name']}: HTTP {response.status} {response.data!r}")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(create, objects):
            pass
    return time.monotonic() - started
