"""Istio DestinationRule (a subset per live revision) and VirtualService (all traffic to the serving one)."""
from __future__ import annotations

from autoglm_operator.istio import destination_rule, virtual_service

HOST = "glm.ml.svc.cluster.local"


def test_destination_rule(make_instance):
    dr = destination_rule(make_instance(), ["r1", "r2"])
    assert dr["apiVersion"] == "networking.istio.io/v1"
    assert dr["spec"]["host"] == HOST
    assert dr["spec"]["subsets"] == [
        {"name": "r1", "labels": {"autoglm.io/revision": "r1"}},
        {"name": "r2", "labels": {"autoglm.io/revision": "r2"}},
    ]


def test_virtual_service_routes_everything_to_the_revision(make_instance):
    vs = virtual_service(make_instance(), "r1")
    assert vs["spec"]["hosts"] == [HOST]
    assert "gateways" not in vs["spec"]
    (route,) = vs["spec"]["http"]
    assert route["route"] == [{"destination": {"host": HOST, "subset": "r1", "port": {"number": 8000}}, "weight": 100}]
    assert route["timeout"] == "600s"
    assert route["retries"] == {"attempts": 0}, "mesh default retries must be switched off explicitly"


def test_gateways_keep_mesh_and_retries_are_safe(make_instance):
    inst = make_instance(
        traffic={"hosts": ["glm.example.com"], "gateways": ["istio-system/public"], "timeoutSeconds": 900,
                 "retries": {"attempts": 2, "perTryTimeoutSeconds": 300}}
    )
    vs = virtual_service(inst, "r1")
    assert vs["spec"]["hosts"] == [HOST, "glm.example.com"]
    assert vs["spec"]["gateways"] == ["istio-system/public", "mesh"]
    route = vs["spec"]["http"][0]
    assert route["timeout"] == "900s"
    assert route["retries"] == {"attempts": 2, "retryOn": "connect-failure,refused-stream,reset-before-request", "perTryTimeout": "300s"}
