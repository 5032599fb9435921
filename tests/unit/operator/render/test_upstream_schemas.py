"""Rendered Istio and KEDA objects fit the real upstream CRD schemas, as an API server would check.

The schemas and the checker are in schema_support.py (shared with the hostile-spec tests).
"""
from __future__ import annotations

from typing import Any

import yaml
from schema_support import body, structural_errors

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.crd import build_crd
from autoglm_operator.render.desired import desired_objects


def _rendered(make_cr) -> list[dict[str, Any]]:
    spec = {
        "autoscaling": {"enabled": True},
        "traffic": {"hosts": ["glm.example.com"], "gateways": ["istio-system/public"], "retries": {"attempts": 1, "perTryTimeoutSeconds": 60}},
        "security": {"allowedPrincipals": ["cluster.local/ns/a/sa/b"], "jwt": {"issuer": "https://i", "jwksUri": "https://i/jwks", "audiences": ["x"]}},
    }
    return desired_objects(make_cr(**spec), Capabilities(keda=True, istio=True))


def test_rendered_objects_fit_upstream_crds(make_cr, upstream_schemas):
    schemas = upstream_schemas
    checked = []
    for obj in _rendered(make_cr):
        schema = schemas.get((obj["apiVersion"], obj["kind"]))
        if schema is None:
            continue  # a built-in kind; the API server's own types cover it
        assert structural_errors(body(obj), {**schema, "required": []}) == [], obj["kind"]
        checked.append(obj["kind"])
    assert sorted(checked) == sorted(
        ["ScaledObject", "DestinationRule", "VirtualService", "PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication"]
    )


def test_validator_catches_a_wrong_field(upstream_schemas):
    schema = upstream_schemas[("networking.istio.io/v1", "VirtualService")]
    bad = {"spec": {"http": [{"route": [{"destination": {"host": "h"}, "weigth": 100}]}]}}
    assert structural_errors(bad, schema) == [".spec.http[0].route[0].weigth: unknown field"]


def test_examples_fit_our_own_crd(repo):
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for example in sorted((repo / "manifests" / "examples").glob("*.yaml")):
        cr = yaml.safe_load(example.read_text(encoding="utf-8"))
        assert structural_errors(body(cr), {**schema, "required": []}) == [], example.name
