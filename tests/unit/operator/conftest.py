"""Fixtures shared by the operator's unit tests."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest

from autoglm_operator.api.spec import Instance, parse_instance
from schema_support import CACHE, load_upstream_schemas

REPO = Path(__file__).resolve().parents[3]


def _cr(**spec: Any) -> dict[str, Any]:
    body = {"model": {"name": "zai-org/GLM-4-9B-0414"}}
    body.update(copy.deepcopy(spec))
    return {
        "apiVersion": "autoglm.io/v1alpha1",
        "kind": "AutoGLMDeployment",
        "metadata": {"name": "glm", "namespace": "ml"},
        "spec": body,
    }


@pytest.fixture
def make_cr() -> Callable[..., dict[str, Any]]:
    """`make_cr(runtime={...})`: a valid resource with the given top-level spec sections."""
    return _cr


@pytest.fixture
def make_instance() -> Callable[..., Instance]:
    return lambda **spec: parse_instance(_cr(**spec))


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def upstream_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """The real Istio/KEDA/KubeEdge CRD schemas (schema_support.py) by (apiVersion, kind)."""
    schemas = load_upstream_schemas()
    if not schemas:
        pytest.skip(f"no third-party CRDs in {CACHE}/crds-*: run hack/build-tools.sh crds")
    return schemas
