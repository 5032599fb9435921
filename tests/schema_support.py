"""The real upstream CRD schemas (Istio, KEDA, KubeEdge) and a structural check of objects against them.

The schemas come from the test-environment cache (hack/build-tools.sh crds); they are never
committed to this repository, so tests that need them skip without the cache.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml

from autoglm_operator.api.schema import matches

CACHE = Path(os.environ.get("AUTOGLM_CACHE", Path.home() / ".cache" / "autoglm-testenv"))
TYPES = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float), "boolean": bool}


@functools.cache
def load_upstream_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema for every served version of every cached CRD; empty without the cache."""
    dirs = sorted(CACHE.glob("crds-*/"))
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in dirs[-1].glob("*.yaml") if dirs else ():
        for crd in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            for version in crd["spec"]["versions"]:
                key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
                schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


def _bounds_errors(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Patterns, lengths and ranges: the value checks an API server applies besides CEL."""
    errors = []
    if isinstance(value, str):
        if "pattern" in schema and not matches(schema["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            errors.append(f"{path}: {len(value)} characters, outside [{schema.get('minLength')}, {schema.get('maxLength')}]")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < schema.get("minimum", value) or value > schema.get("maximum", value):
            errors.append(f"{path}: {value} outside [{schema.get('minimum')}, {schema.get('maximum')}]")
    if isinstance(value, (list, dict)) and len(value) > schema.get("maxItems", schema.get("maxProperties", len(value))):
        errors.append(f"{path}: too many entries")
    return errors


def structural_errors(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Unknown fields, wrong types, missing required fields, values outside an enum, patterns and bounds."""
    if schema.get("x-kubernetes-int-or-string"):
        return [] if isinstance(value, (int, str)) else [f"{path}: expected int or string"]
    expected = schema.get("type")
    if expected == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: the API server takes 2.0 as an integer
    if expected and (not isinstance(value, TYPES[expected]) or (expected != "boolean" and isinstance(value, bool))):
        return [f"{path}: expected {expected}, got {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} not in {schema['enum']}"]
    errors = _bounds_errors(value, schema, path)
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


def body(obj: dict[str, Any]) -> dict[str, Any]:
    """What the schema governs: metadata is validated by the API server itself."""
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}


def without_nulls(value: Any) -> Any:
    """What the API server checks: it drops null fields first (then defaults them)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value
