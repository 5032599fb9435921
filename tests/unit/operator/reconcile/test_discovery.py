"""Capability discovery is cached and refreshed after its time to live."""
from __future__ import annotations

import pytest
from kubernetes import client

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.kube_client import REQUEST_TIMEOUT
from autoglm_operator.reconcile.discovery import Discovery, has_mirror_percent
from autoglm_operator.reconcile.kinds import DEPLOYMENT, HTTP_ROUTE, SCALED_OBJECT


def test_cached_until_the_ttl_passes(monkeypatch):
    now = [0.0]
    served = [{"apps/v1": {"deployments"}}]
    asked: list[str] = []

    def resources(self, api_version: str) -> set[str]:
        asked.append(api_version)
        return served[0].get(api_version, set())

    monkeypatch.setattr(Discovery, "_resources", resources)
    discovery = Discovery(client.ApiClient(), ttl_seconds=60, clock=lambda: now[0])
    assert DEPLOYMENT in discovery.served()
    assert discovery.capabilities() == Capabilities()
    calls = len(asked)

    served[0] = {"apps/v1": {"deployments"}, "keda.sh/v1alpha1": {"scaledobjects"}}
    now[0] = 59.0
    assert discovery.capabilities() == Capabilities(), "still cached"
    assert len(asked) == calls
    now[0] = 60.0
    assert SCALED_OBJECT in discovery.served()
    assert discovery.capabilities() == Capabilities(keda=True)


def test_mirror_percent_is_read_from_the_httproute_schema_only_where_httproute_is_served(monkeypatch):
    served = [{"apps/v1": {"deployments"}}]
    schema_reads: list[int] = []
    monkeypatch.setattr(Discovery, "_resources", lambda self, api_version: served[0].get(api_version, set()))
    monkeypatch.setattr(Discovery, "_mirror_percent", lambda self: schema_reads.append(1) or True)
    now = [0.0]
    discovery = Discovery(client.ApiClient(), ttl_seconds=60, clock=lambda: now[0])
    assert discovery.capabilities() == Capabilities() and not schema_reads
    served[0] = {"gateway.networking.k8s.io/v1": {"httproutes"}}
    now[0] = 60.0
    assert discovery.capabilities() == Capabilities(gateway_api=True, mirror_percent=True)
    assert HTTP_ROUTE in discovery.served() and len(schema_reads) == 1, "one reading per refresh"


def test_has_mirror_percent_finds_the_nested_field():
    def route(mirror: dict) -> dict:
        return {"properties": {"spec": {"properties": {"rules": {"items": {"properties": {"filters": {"items": {
            "properties": {"requestMirror": mirror}}}}}}}}}}

    assert has_mirror_percent(route({"properties": {"backendRef": {}, "percent": {"type": "integer"}}}))
    assert not has_mirror_percent(route({"properties": {"backendRef": {}}})), "Gateway API before v1.2/v1.3"


def test_the_real_httproute_schema_has_mirror_percent(upstream_schemas):
    schema = upstream_schemas.get(("gateway.networking.k8s.io/v1", "HTTPRoute"))
    if schema is None:
        pytest.skip("no Gateway API CRDs in the cache: run hack/build-tools.sh crds")
    assert has_mirror_percent(schema)


def test_every_discovery_read_has_a_deadline():
    """A hung API server connection fails the read (and the converge, retried) instead of hanging discovery."""
    timeouts: dict[str, object] = {}

    class Listing:
        resources = [client.V1APIResource(name="httproutes", kind="HTTPRoute", namespaced=True, singular_name="",
                                          verbs=["get"])]

    class Objects:
        def get_api_resources(self, group: str, version: str, _request_timeout: object = None) -> Listing:
            timeouts[f"{group}/{version}"] = _request_timeout
            return Listing()

    class Core:
        def get_api_resources(self, _request_timeout: object = None) -> Listing:
            timeouts["v1"] = _request_timeout
            return Listing()

    class Response:
        status, data = 404, b""

        def read(self) -> None:
            pass

    class Api(client.ApiClient):
        def call_api(self, *args: object, _request_timeout: object = None, **kwargs: object) -> Response:
            timeouts["openapi"] = _request_timeout
            return Response()

    discovery = Discovery(Api(), ttl_seconds=60)
    discovery._objects, discovery._core = Objects(), Core()  # type: ignore[assignment]
    assert discovery.capabilities().gateway_api
    assert "openapi" in timeouts and len(timeouts) > 2
    assert set(timeouts.values()) == {REQUEST_TIMEOUT}
