"""Which optional APIs (KEDA, Istio, KubeEdge) the cluster serves, asked of API discovery and cached.

Installing KEDA or Istio after the operator started is noticed within `ttl_seconds`; the next
reconcile then renders a ScaledObject instead of an HPA (and prunes the HPA), or adds routing.
Discovery reads need no RBAC and are not audited as writes. Whether HTTPRoute's RequestMirror filter
has `percent` is read from the served schema (the API server's OpenAPI v3 document of the group,
built from the installed CRD; `/openapi/*` is readable by every authenticated user).

Every discovery read has a deadline (REQUEST_TIMEOUT): the Kubernetes client waits forever by
default, and a converge holds the discovery lock while it reads, so one hung API server
connection would stall every converge behind it.
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.kube_client import REQUEST_TIMEOUT
from autoglm_operator.reconcile.kinds import DISCOVERED_KINDS, HTTP_ROUTE, Kind, capabilities_of


class Discovery:
    def __init__(self, api: client.ApiClient, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._objects = client.CustomObjectsApi(api)
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._served: frozenset[Kind] | None = None
        self._capabilities = Capabilities()
        self._fetched_at = 0.0

    def served(self) -> frozenset[Kind]:
        """The managed kinds the API server serves now (at most `ttl_seconds` old)."""
        return self._refresh()[0]

    def capabilities(self) -> Capabilities:
        """What the served kinds (and the HTTPRoute schema) allow, from the same reading as `served`."""
        return self._refresh()[1]

    def _refresh(self) -> tuple[frozenset[Kind], Capabilities]:
        with self._lock:
            if self._served is None or self._clock() - self._fetched_at >= self._ttl:
                served = self._fetch()
                found = capabilities_of(served)
                if HTTP_ROUTE in served:
                    found = dataclasses.replace(found, mirror_percent=self._mirror_percent())
                self._served, self._capabilities = served, found
                self._fetched_at = self._clock()
            return self._served, self._capabilities

    def _fetch(self) -> frozenset[Kind]:
        by_group_version: dict[str, set[str]] = {}
        for api_version in dict.fromkeys(kind.api_version for kind in DISCOVERED_KINDS):
            by_group_version[api_version] = self._resources(api_version)
        return frozenset(k for k in DISCOVERED_KINDS if k.plural in by_group_version[k.api_version])

    def _resources(self, api_version: str) -> set[str]:
        group, _, version = api_version.rpartition("/")
        try:
            listing = (self._objects.get_api_resources(group, version, _request_timeout=REQUEST_TIMEOUT) if group
                       else self._core.get_api_resources(_request_timeout=REQUEST_TIMEOUT))
        except ApiException as exc:
            if exc.status == 404:
                return set()
            raise
        return {resource.name for resource in listing.resources}

    def _mirror_percent(self) -> bool:
        """Whether the served HTTPRoute schema has RequestMirror `percent`."""
        method, url, headers, body, post = self._api.param_serialize(
            "GET", f"/openapi/v3/apis/{HTTP_ROUTE.api_version}", auth_settings=["BearerToken"],
            header_params={"Accept": "application/json"})
        response = self._api.call_api(method, url, headers, body, post, _request_timeout=REQUEST_TIMEOUT)
        response.read()
        if response.status == 404:
            return False
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        document = json.loads(response.data)
        schemas = (document or {}).get("components", {}).get("schemas", {})
        route = next((v for k, v in schemas.items() if k.endswith(f".{HTTP_ROUTE.version}.{HTTP_ROUTE.kind}")), None)
        return route is not None and has_mirror_percent(route)


def has_mirror_percent(schema: Any) -> bool:
    """True when some `requestMirror` object in an OpenAPI schema (nested dicts and lists) has a `percent` property."""
    if isinstance(schema, dict):
        mirror = schema.get("properties", {}).get("requestMirror") if isinstance(schema.get("properties"), dict) else None
        if isinstance(mirror, dict) and "percent" in (mirror.get("properties") or {}):
            return True
        return any(has_mirror_percent(v) for v in schema.values())
    if isinstance(schema, list):
        return any(has_mirror_percent(v) for v in schema)
    return False
