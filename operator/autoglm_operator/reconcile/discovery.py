"""Which optional APIs (KEDA, Istio, KubeEdge) the cluster serves, asked of API discovery and cached.

Installing KEDA or Istio after the operator started is noticed within `ttl_seconds`; the next
reconcile then renders a ScaledObject instead of an HPA (and prunes the HPA), or adds routing.
Discovery reads need no RBAC and are not audited as writes.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.reconcile.kinds import DISCOVERED_KINDS, Kind, capabilities_of


class Discovery:
    def __init__(self, api: client.ApiClient, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._core = client.CoreV1Api(api)
        self._objects = client.CustomObjectsApi(api)
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._served: frozenset[Kind] | None = None
        self._fetched_at = 0.0

    def served(self) -> frozenset[Kind]:
        """The managed kinds the API server serves now (at most `ttl_seconds` old)."""
        with self._lock:
            if self._served is None or self._clock() - self._fetched_at >= self._ttl:
                self._served = self._fetch()
                self._fetched_at = self._clock()
            return self._served

    def capabilities(self) -> Capabilities:
        return capabilities_of(self.served())

    def _fetch(self) -> frozenset[Kind]:
        by_group_version: dict[str, set[str]] = {}
        for api_version in dict.fromkeys(kind.api_version for kind in DISCOVERED_KINDS):
            by_group_version[api_version] = self._resources(api_version)
        return frozenset(k for k in DISCOVERED_KINDS if k.plural in by_group_version[k.api_version])

    def _resources(self, api_version: str) -> set[str]:
        group, _, version = api_version.rpartition("/")
        try:
            listing = self._objects.get_api_resources(group, version) if group else self._core.get_api_resources()
        except ApiException as exc:
            if exc.status == 404:
                return set()
            raise
        return {resource.name for resource in listing.resources}
