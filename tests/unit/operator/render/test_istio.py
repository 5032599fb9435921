"""Istio DestinationRule (a subset per live revision) and VirtualService (all traffic to the serving one)."""
from __future__ import annotations

from autoglm_operator.render.istio import destination_rule, virtual_service

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


# --- canary routes ---------------------------------------------------------------------------

from autoglm_operator.render.routing import Route  # noqa: E402
from schema_support import structural_errors  # noqa: E402

ROLLOUT = {"steps": [{"mirror": 20}, {"weight": 5}], "intervalSeconds": 60}


def _weights(vs):
    return {r["destination"]["subset"]: r["weight"] for r in vs["spec"]["http"][-1]["route"]}


def test_weighted_canary_weights_sum_to_100(make_instance):
    vs = virtual_service(make_instance(rollout=ROLLOUT), "old", Route("old", "new", weight=25))
    assert _weights(vs) == {"old": 75, "new": 25}
    assert sum(_weights(vs).values()) == 100
    route = vs["spec"]["http"][-1]
    assert "mirror" not in route and "mirrors" not in route and "mirrorPercentage" not in route
    assert route["timeout"] == "600s" and route["retries"] == {"attempts": 0}


def test_mirror_step_shadows_an_explicit_percentage_at_weight_0(make_instance):
    vs = virtual_service(make_instance(rollout=ROLLOUT), "old", Route("old", "new", mirror=20))
    route = vs["spec"]["http"][-1]
    assert _weights(vs) == {"old": 100, "new": 0}
    assert route["mirror"] == {"host": HOST, "subset": "new", "port": {"number": 8000}}
    assert route["mirrorPercentage"] == {"value": 20.0}
    assert "mirrors" not in route, "Istio rejects mirror together with mirrors"


def test_rolled_back_canary_keeps_a_zero_weight_until_retired(make_instance):
    vs = virtual_service(make_instance(rollout=ROLLOUT), "old", Route("old", "new"))
    assert _weights(vs) == {"old": 100, "new": 0} and "mirror" not in vs["spec"]["http"][-1]


def test_header_and_cookie_routes_come_first(make_instance):
    inst = make_instance(rollout={**ROLLOUT, "header": {"name": "x-canary", "value": "always"}, "stickyCookie": "glm-canary"})
    vs = virtual_service(inst, "old", Route("old", "new", weight=5, testers=True))
    names = [r["name"] for r in vs["spec"]["http"]]
    assert names == ["canary-header", "canary-cookie", "stable"]
    header, cookie, weighted = vs["spec"]["http"]
    assert header["match"] == [{"headers": {"x-canary": {"exact": "always"}}}]
    assert header["route"] == [{"destination": {"host": HOST, "subset": "new", "port": {"number": 8000}}, "weight": 100}]
    assert cookie["match"][0]["headers"]["cookie"]["regex"] == r"^(.*?;\s*)?glm-canary=new(;.*)?$"
    assert weighted["route"][1]["headers"]["response"]["add"]["Set-Cookie"] == "glm-canary=new; Max-Age=120; Path=/"
    assert all(r["timeout"] == "600s" and r["retries"] == {"attempts": 0} for r in vs["spec"]["http"])
    # No tester routes once the canary stops taking traffic.
    assert [r["name"] for r in virtual_service(inst, "old", Route("old", "new"))["spec"]["http"]] == ["stable"]


def test_canary_routes_fit_the_upstream_istio_schema(make_instance, upstream_schemas):  # noqa: F811
    schemas = upstream_schemas
    inst = make_instance(rollout={**ROLLOUT, "header": {"name": "x-canary", "value": "1"}, "stickyCookie": "c"})
    for route in (Route("old", "new", mirror=20, testers=True), Route("old", "new", weight=50, testers=True)):
        vs = virtual_service(inst, "old", route)
        schema = schemas[("networking.istio.io/v1", "VirtualService")]
        assert structural_errors(vs["spec"], schema["properties"]["spec"]) == []
