"""Every kind of object the operator creates, and which optional APIs each capability needs.

Pruning lists each of these kinds by label, so a kind the operator stops rendering (an HPA after a
switch to KEDA, a RequestAuthentication after the JWT is removed) is still found and deleted.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from autoglm_operator.api.capabilities import Capabilities


@dataclasses.dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str

    @property
    def group(self) -> str:
        """"" for the core API (`v1`)."""
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
SERVICE = Kind("v1", "Service", "services")
POD_DISRUPTION_BUDGET = Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets")
HORIZONTAL_POD_AUTOSCALER = Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
SCALED_OBJECT = Kind("keda.sh/v1alpha1", "ScaledObject", "scaledobjects")
DESTINATION_RULE = Kind("networking.istio.io/v1", "DestinationRule", "destinationrules")
VIRTUAL_SERVICE = Kind("networking.istio.io/v1", "VirtualService", "virtualservices")
PEER_AUTHENTICATION = Kind("security.istio.io/v1", "PeerAuthentication", "peerauthentications")
AUTHORIZATION_POLICY = Kind("security.istio.io/v1", "AuthorizationPolicy", "authorizationpolicies")
REQUEST_AUTHENTICATION = Kind("security.istio.io/v1", "RequestAuthentication", "requestauthentications")
EDGE_APPLICATION = Kind("apps.kubeedge.io/v1alpha1", "EdgeApplication", "edgeapplications")
NODE_GROUP = Kind("apps.kubeedge.io/v1alpha1", "NodeGroup", "nodegroups")
HTTP_ROUTE = Kind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes")
INFERENCE_POOL = Kind("inference.networking.k8s.io/v1", "InferencePool", "inferencepools")

CHILD_KINDS: tuple[Kind, ...] = (
    DEPLOYMENT,
    SERVICE,
    POD_DISRUPTION_BUDGET,
    HORIZONTAL_POD_AUTOSCALER,
    SCALED_OBJECT,
    DESTINATION_RULE,
    VIRTUAL_SERVICE,
    PEER_AUTHENTICATION,
    AUTHORIZATION_POLICY,
    REQUEST_AUTHENTICATION,
    HTTP_ROUTE,
    INFERENCE_POOL,
    EDGE_APPLICATION,  # namespaced; the cluster-scoped NodeGroups are pruned by edge_sync.py
)

NEEDED_BY_CAPABILITY: dict[str, tuple[Kind, ...]] = {
    "keda": (SCALED_OBJECT,),
    "istio": (DESTINATION_RULE, VIRTUAL_SERVICE, PEER_AUTHENTICATION, AUTHORIZATION_POLICY, REQUEST_AUTHENTICATION),
    "kubeedge": (EDGE_APPLICATION, NODE_GROUP),
    "gateway_api": (HTTP_ROUTE,),
    "inference_pool": (HTTP_ROUTE, INFERENCE_POOL),
}

DISCOVERED_KINDS: tuple[Kind, ...] = tuple(dict.fromkeys([*CHILD_KINDS, *NEEDED_BY_CAPABILITY["kubeedge"]]))


def capabilities_of(served: Iterable[Kind]) -> Capabilities:
    """A capability counts only when all its kinds are served: half of Istio would fail to apply."""
    available = set(served)  # mirror_percent is read from the HTTPRoute schema (reconcile/discovery.py)
    return Capabilities(**{name: set(kinds) <= available for name, kinds in NEEDED_BY_CAPABILITY.items()})


def kind_of(obj: dict[str, Any]) -> Kind:
    for kind in DISCOVERED_KINDS:
        if (kind.api_version, kind.kind) == (obj["apiVersion"], obj["kind"]):
            return kind
    raise KeyError(f"the operator does not manage {obj['apiVersion']} {obj['kind']}")


def kind_named(name: str) -> Kind:
    """Kind names are unique among the managed kinds (list items of built-in kinds carry no apiVersion)."""
    return next(kind for kind in DISCOVERED_KINDS if kind.kind == name)
