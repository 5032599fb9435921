"""Rendered Istio and KEDA objects fit the real upstream CRD schemas, as an API server would check.

The schemas come from the test-environment cache (hack/build-tools.sh crds); without it the
test is skipped, since the CRDs are never committed to this repository.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoglm_operator.crd import build_crd
from autoglm_operator.render import Capabilities, desired_objects

CACHE = Path(os.environ.get("AUTOGLM_CACHE", Path.home() / ".cache" / "autoglm-testenv"))
TYPES = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float), "boolean": bool}


@pytest.fixture(scope="module")
def upstream_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema for every served version of every cached CRD."""
    dirs = sorted(CACHE.glob("crds-*/"))
    if not dirs:
        pytest.skip(f"no third-party CRDs in {CACHE}/crds-*: run hack/build-tools.sh crds")
    schemas = {}
    for path in dirs[-1].glob("*.yaml"):
        for crd in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            for version in crd["spec"]["versions"]:
                key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
                schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def structural_errors(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Unknown fields, wrong types, missing required fields and values outside an enum."""
    if schema.get("x-kubernetes-int-or-string"):
        return [] if isinstance(value, (int, str)) else [f"{path}: expected int or string"]
    expected = schema.get("type")
    if expected and (not isinstance(value, TYPES[expected]) or (expected != "boolean" and isinstance(value, bool))):
        return [f"{path}: expected {expected}, got {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} not in {schema['enum']}"]
    errors = []
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}.{key}: required")
        for key, item in value.items():
            if key in properties:
                errors += structural_errors(item, properties[key], f"{path}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += structural_errors(item, schema["additionalProperties"], f"{path}.{key}")
            elif not schema.get("x-kubernetes-preserve-unknown-fields") and not schema.get("additionalProperties"):
                errors.append(f"{path}.{key}: unknown field")
    if isinstance(value, list):
        for i, item in enumerate(value):
            errors += structural_errors(item, schema.get("items", {}), f"{path}[{i}]")
    return errors


def _rendered(make_cr) -> list[dict[str, Any]]:
    spec = {
        "autoscaling": {"enabled": True},
        "traffic": {"hosts": ["glm.example.com"], "gateways": ["istio-system/public"], "retries": {"attempts": 1, "perTryTimeoutSeconds": 60}},
        "security": {"allowedPrincipals": ["cluster.local/ns/a/sa/b"], "jwt": {"issuer": "https://i", "jwksUri": "https://i/jwks", "audiences": ["x"]}},
    }
    return desired_objects(make_cr(**spec), Capabilities(keda=True, istio=True))


def _body(obj: dict[str, Any]) -> dict[str, Any]:
    """What the schema governs: metadata is validated by the API server itself."""
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}


def test_rendered_objects_fit_upstream_crds(make_cr, upstream_schemas):
    schemas = upstream_schemas
    checked = []
    for obj in _rendered(make_cr):
        schema = schemas.get((obj["apiVersion"], obj["kind"]))
        if schema is None:
            continue  # a built-in kind; the API server's own types cover it
        assert structural_errors(_body(obj), {**schema, "required": []}) == [], obj["kind"]
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
        assert structural_errors(_body(cr), {**schema, "required": []}) == [], example.name
