"""Istio PeerAuthentication, AuthorizationPolicy and optional JWT."""
from __future__ import annotations

from autoglm_operator.render.security import authorization_policy, peer_authentication, request_authentication

SELECTOR = {"matchLabels": {"autoglm.io/instance": "glm"}}


def test_peer_authentication(make_instance):
    pa = peer_authentication(make_instance())
    assert pa["apiVersion"] == "security.istio.io/v1"
    assert pa["spec"] == {"selector": SELECTOR, "mtls": {"mode": "STRICT"}}


def test_own_namespace_by_default(make_instance):
    ap = authorization_policy(make_instance())
    assert ap["spec"] == {"selector": SELECTOR, "action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": ["ml"]}}]}]}
    assert request_authentication(make_instance()) is None


def test_listed_callers(make_instance):
    ap = authorization_policy(make_instance(security={"allowedPrincipals": ["cluster.local/ns/web/sa/app"], "allowedNamespaces": ["batch"]}))
    assert ap["spec"]["rules"] == [
        {"from": [{"source": {"principals": ["cluster.local/ns/web/sa/app"]}}, {"source": {"namespaces": ["batch"]}}]}
    ]


def test_jwt_is_required_not_just_validated(make_instance):
    inst = make_instance(
        security={"allowedNamespaces": ["web"], "jwt": {"issuer": "https://auth.example.com", "jwksUri": "https://auth.example.com/jwks", "audiences": ["glm"]}}
    )
    ra = request_authentication(inst)
    assert ra["spec"] == {
        "selector": SELECTOR,
        "jwtRules": [{"issuer": "https://auth.example.com", "jwksUri": "https://auth.example.com/jwks", "forwardOriginalToken": False, "audiences": ["glm"]}],
    }
    sources = [f["source"] for f in authorization_policy(inst)["spec"]["rules"][0]["from"]]
    assert sources == [{"namespaces": ["web"], "requestPrincipals": ["https://auth.example.com/*"]}]
