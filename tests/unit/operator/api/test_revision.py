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


@pytest.mark.parametrize("first, second", [
    ({"cpu": "1000m"}, {"cpu": "1"}),  # the issue's inputs (fault 8)
    ({"memory": "65536Mi"}, {"memory": "64Gi"}),
    ({"shmSize": "8192Mi"}, {}),  # the default, re-spelt
    ({"cpu": "0.5", "memory": "1.5Gi"}, {"cpu": "500m", "memory": "1536Mi"}),
])
def test_respelling_a_quantity_keeps_the_revision(make_instance, first, second):
    """The API server treats these as equal, so they must not reload the model on a new Deployment."""
    assert revision(make_instance(resources=first).spec) == revision(make_instance(resources=second).spec)


def test_respelling_an_edge_or_volume_quantity_keeps_the_revision(make_instance):
    def volume(size: str) -> dict:
        return {"volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": size}}]}
    assert revision(make_instance(runtime=volume("1024Mi")).spec) == revision(make_instance(runtime=volume("1Gi")).spec)


def test_canonical_spellings_keep_their_old_revision(make_instance):
    """Specs that already used the canonical spelling hash as before (no reload on upgrade)."""
    assert revision(make_instance(resources={"memory": "64Gi", "cpu": "8"}).spec) == "1a08d715b9"  # computed by the hash before canonical quantities


@pytest.mark.parametrize("section", [
    {"scheduling": {"tolerations": [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}]}},
    {"scheduling": {"nodeSelector": {"pool": "a100"}}},
    {"runtime": {"env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hub", "key": "token"}}}]}},
    {"runtime": {"imagePullSecrets": [{"name": "registry"}]}},
])
def test_pod_essentials_make_a_new_revision(make_instance, section):
    """They change the pods, and a revision's Deployment never changes its pods after creation."""
    assert revision(make_instance(**section).spec) != GOLDEN_MINIMAL


def test_empty_scheduling_keeps_the_golden_value(make_instance):
    assert revision(make_instance(scheduling={"tolerations": [], "nodeSelector": {}}).spec) == GOLDEN_MINIMAL


def test_a_final_slash_on_a_source_keeps_the_revision(make_instance):
    """The pods mount and load the same path either way."""
    def model(slash: str) -> dict:
        return {"name": "m", "source": f"pvc://w/glm{slash}", "loraAdapters": [{"name": "a", "source": f"pvc://w/sql{slash}"}]}
    assert revision(make_instance(model=model("/")).spec) == revision(make_instance(model=model("")).spec)
