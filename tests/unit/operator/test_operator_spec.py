"""Parsing, defaults and every validation rule of the AutoGLMDeployment spec."""
from __future__ import annotations

import pytest

from autoglm_operator.schema import InvalidSpec
from autoglm_operator.spec import check_capabilities, parse_instance


def test_defaults_fill_a_minimal_spec(make_instance):
    spec = make_instance().spec
    assert spec.runtime.engine == "vllm"
    assert spec.runtime.tensor_parallel_size == 1
    assert spec.resources.gpu.count == 1
    assert spec.replicas == 1
    assert spec.autoscaling.enabled is False
    assert spec.traffic.timeout_seconds == 600
    assert spec.traffic.retries.attempts == 0
    assert spec.security.mtls == "STRICT"
    assert spec.security.jwt is None


def test_floats_accept_integers(make_instance):
    assert make_instance(autoscaling={"target": {"perReplica": 4}}).spec.autoscaling.target.per_replica == 4.0


# Each rule, the smallest spec breaking it, and words the error must contain.
SCHEMA_RULES = [
    ("model.name is required", {"model": {}}, "spec.model.name: required"),
    ("unknown fields are refused", {"runtime": {"engin": "vllm"}}, "unknown field(s) engin"),
    ("engine is an enum", {"runtime": {"engine": "llamacpp"}}, "must be one of vllm, sglang, tgi"),
    ("quantization is an enum", {"model": {"name": "m", "quantization": "int3"}}, "must be one of"),
    ("types are checked", {"replicas": "2"}, "expected int"),
    ("tensorParallelSize >= 1", {"runtime": {"tensorParallelSize": 0}}, "must be >= 1"),
    ("gpu.count <= 16", {"resources": {"gpu": {"count": 17}}}, "must be <= 16"),
    ("startup budget >= 60 s", {"runtime": {"startupTimeoutSeconds": 10}}, "must be >= 60"),
    ("retries.attempts <= 3", {"traffic": {"retries": {"attempts": 5}}}, "must be <= 3"),
    ("model source is a pvc:// URI", {"model": {"name": "m", "source": "s3://bucket/m"}}, "does not match"),
    ("adapter source is a pvc:// URI", {"model": {"name": "m", "loraAdapters": [{"name": "a", "source": "/x"}]}}, "does not match"),
    (
        "adapter names are unique",
        {"model": {"name": "m", "loraAdapters": [{"name": "a", "source": "pvc://c/a"}, {"name": "a", "source": "pvc://c/b"}]}},
        "duplicate name a",
    ),
    ("env names are unique", {"runtime": {"env": [{"name": "A"}, {"name": "A"}]}}, "duplicate name A"),
    ("memory is a quantity", {"resources": {"memory": "lots"}}, "does not match"),
    ("jwksUri is a URL", {"security": {"jwt": {"issuer": "i", "jwksUri": "jwks.json"}}}, "does not match"),
    ("jwt needs an issuer", {"security": {"jwt": {"jwksUri": "https://i/jwks"}}}, "issuer: required"),
    (
        "CEL: minReplicas <= maxReplicas",
        {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
        "minReplicas must be <= autoscaling.maxReplicas",
    ),
    (
        "CEL: scale to zero only with KEDA",
        {"autoscaling": {"engine": "hpa", "minReplicas": 0}},
        "scale to zero) needs engine keda",
    ),
    (
        "CEL: tensorParallelSize divides the GPU count",
        {"runtime": {"tensorParallelSize": 2}, "resources": {"gpu": {"count": 3}}},
        "multiple of runtime.tensorParallelSize",
    ),
]


@pytest.mark.parametrize("spec,words", [r[1:] for r in SCHEMA_RULES], ids=[r[0] for r in SCHEMA_RULES])
def test_schema_rules(make_cr, spec, words):
    cr = make_cr(**spec)
    with pytest.raises(InvalidSpec) as err:
        parse_instance(cr)
    assert words in str(err.value)


@pytest.mark.parametrize(
    "name",
    ["9glm", "Glm", "glm_chat", "g" * 53, ""],
)
def test_name_rule(make_cr, name):
    cr = make_cr()
    cr["metadata"]["name"] = name
    with pytest.raises(InvalidSpec, match="DNS label of at most 52"):
        parse_instance(cr)


def test_wrong_kind_is_refused(make_cr):
    cr = make_cr()
    cr["kind"] = "Deployment"
    with pytest.raises(InvalidSpec, match="expected apiVersion"):
        parse_instance(cr)


def test_tp_dividing_gpu_count_is_accepted(make_instance):
    make_instance(runtime={"tensorParallelSize": 2}, resources={"gpu": {"count": 4}})


def test_scale_to_zero_needs_keda_installed(make_instance):
    spec = make_instance(autoscaling={"enabled": True, "minReplicas": 0}).spec
    check_capabilities(spec, keda=True, istio=False)
    with pytest.raises(InvalidSpec, match="minReplicas 0 needs KEDA"):
        check_capabilities(spec, keda=False, istio=False)


def test_custom_query_needs_keda(make_instance):
    spec = make_instance(autoscaling={"enabled": True, "target": {"query": "sum(x)"}}).spec
    check_capabilities(spec, keda=True, istio=False)
    with pytest.raises(InvalidSpec, match="target.query needs KEDA"):
        check_capabilities(spec, keda=False, istio=False)


def test_istio_features_need_istio(make_instance):
    spec = make_instance(traffic={"hosts": ["glm.example.com"]}, security={"allowedNamespaces": ["web"]}).spec
    check_capabilities(spec, keda=False, istio=True)
    with pytest.raises(InvalidSpec, match="spec.traffic.hosts, spec.security.allowedNamespaces need Istio"):
        check_capabilities(spec, keda=False, istio=False)


def test_defaults_need_no_istio(make_instance):
    check_capabilities(make_instance().spec, keda=False, istio=False)
