"""Istio security (security.istio.io/v1): mTLS, who may call the model, and optional JWT.

A RequestAuthentication alone lets token-less requests through, so a JWT always goes with an
AuthorizationPolicy that requires a request principal from that issuer.
"""
from __future__ import annotations

from typing import Any

from autoglm_operator.api.labels import metadata, pod_selector
from autoglm_operator.api.spec import Instance


def peer_authentication(inst: Instance) -> dict[str, Any]:
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": metadata(inst, inst.name, "security"),
        "spec": {"selector": {"matchLabels": pod_selector(inst)}, "mtls": {"mode": inst.spec.security.mtls}},
    }


def authorization_policy(inst: Instance) -> dict[str, Any]:
    """ALLOW only the listed principals or namespaces (the model's own namespace by default)."""
    security = inst.spec.security
    namespaces = security.allowed_namespaces
    if not security.allowed_principals and not namespaces:
        namespaces = [inst.namespace]
    sources: list[dict[str, Any]] = []
    if security.allowed_principals:
        sources.append({"principals": security.allowed_principals})
    if namespaces:
        sources.append({"namespaces": namespaces})
    if security.jwt:
        # Fields inside one source are ANDed: every allowed caller must also carry a valid token.
        for source in sources:
            source["requestPrincipals"] = [f"{security.jwt.issuer}/*"]
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": metadata(inst, inst.name, "security"),
        "spec": {
            "selector": {"matchLabels": pod_selector(inst)},
            "action": "ALLOW",
            "rules": [{"from": [{"source": source} for source in sources]}],
        },
    }


def request_authentication(inst: Instance) -> dict[str, Any] | None:
    jwt = inst.spec.security.jwt
    if jwt is None:
        return None
    rule: dict[str, Any] = {"issuer": jwt.issuer, "jwksUri": jwt.jwks_uri, "forwardOriginalToken": False}
    if jwt.audiences:
        rule["audiences"] = jwt.audiences
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "RequestAuthentication",
        "metadata": metadata(inst, inst.name, "security"),
        "spec": {"selector": {"matchLabels": pod_selector(inst)}, "jwtRules": [rule]},
    }
