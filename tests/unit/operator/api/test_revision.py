"""The revision hash: stable, and changed only by fields that change the pods."""
from __future__ import annotations

import pytest

from autoglm_operator.api.revision import revision

# Golden value: a change here means every running model gets a new revision on upgrade.
GOLDEN_MINIMAL = "e1f7013882"


def test_golden_value(make_instance):
    assert revision(make_instance().spec) == GOLDEN_MINIMAL


def test_explicit_defaults_do_not_change_it(make_instance):
    explicit = make_instance(
        model={"name": "zai-org/GLM-4-9B-0414", "revision": "main", "quantization": "none"},
        runtime={"engine": "vllm", "tensorParallelSize": 1},
        resources={"gpu": {"count": 1}},
    )
    assert revision(explicit.spec) == GOLDEN_MINIMAL


@pytest.mark.parametrize(
    "section",
    [
        {"replicas": 5},
        {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 9}},
        {"traffic": {"timeoutSeconds": 30, "retries": {"attempts": 1}}},
        {"security": {"allowedNamespaces": ["web"]}},
    ],
)
def test_unchanged_by_fields_outside_the_pods(make_instance, section):
    assert revision(make_instance(**section).spec) == GOLDEN_MINIMAL


@pytest.mark.parametrize(
    "section",
    [
        {"model": {"name": "zai-org/GLM-4-9B-0414", "revision": "v2"}},
        {"model": {"name": "zai-org/GLM-4-9B-0414", "quantization": "fp8"}},
        {"runtime": {"engine": "sglang"}},
        {"runtime": {"args": ["--enable-prefix-caching"]}},
        {"runtime": {"startupTimeoutSeconds": 600}},
        {"resources": {"gpu": {"count": 2}}},
        {"resources": {"memory": "64Gi"}},
    ],
)
def test_changed_by_fields_inside_the_pods(make_instance, section):
    assert revision(make_instance(**section).spec) != GOLDEN_MINIMAL


def test_shape(make_instance):
    rev = revision(make_instance().spec)
    assert len(rev) == 10 and all(c in "0123456789abcdef" for c in rev)
