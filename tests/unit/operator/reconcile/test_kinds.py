"""Capabilities from the kinds the cluster serves, and looking kinds up."""
from __future__ import annotations

import pytest

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.reconcile.kinds import (
    CHILD_KINDS,
    DEPLOYMENT,
    EDGE_APPLICATION,
    NODE_GROUP,
    SCALED_OBJECT,
    VIRTUAL_SERVICE,
    capabilities_of,
    HTTP_ROUTE,
    kind_named,
    kind_of,
)


def test_capabilities_need_every_kind_of_the_api():
    assert capabilities_of([DEPLOYMENT]) == Capabilities()
    assert capabilities_of([SCALED_OBJECT]) == Capabilities(keda=True)
    assert capabilities_of([VIRTUAL_SERVICE]) == Capabilities(), "half of Istio is not Istio"
    assert capabilities_of([*CHILD_KINDS, EDGE_APPLICATION, NODE_GROUP]) == Capabilities(
        keda=True, istio=True, kubeedge=True, gateway_api=True, inference_pool=True)
    assert capabilities_of([HTTP_ROUTE]) == Capabilities(gateway_api=True), "InferencePools need an HTTPRoute to reach them"


def test_kind_lookup():
    assert kind_of({"apiVersion": "apps/v1", "kind": "Deployment"}) == DEPLOYMENT
    assert kind_named("ScaledObject") == SCALED_OBJECT
    assert (DEPLOYMENT.group, DEPLOYMENT.version) == ("apps", "v1")
    assert kind_named("Service").group == ""
    with pytest.raises(KeyError):
        kind_of({"apiVersion": "v1", "kind": "Secret"})
