"""Fixtures shared by the operator's unit tests."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest

from autoglm_operator.spec import Instance, parse_instance

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
