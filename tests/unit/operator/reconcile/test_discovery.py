"""Capability discovery is cached and refreshed after its time to live."""
from __future__ import annotations

from kubernetes import client

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.reconcile.discovery import Discovery
from autoglm_operator.reconcile.kinds import DEPLOYMENT, SCALED_OBJECT


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
