"""Parsing, defaults and every validation rule of the AutoGLMDeployment spec."""
from __future__ import annotations

import pytest

from autoglm_operator.api.schema import InvalidSpec, parse
from autoglm_operator.api.spec import Spec, check_capabilities, parse_instance


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


# Every string the spec requires to say something, left empty: the words are the CRD rule's message
# (schema.NOT_EMPTY, NO_EMPTY_ITEM) or its pattern, as `kubectl apply` reports them.
EMPTY_STRINGS = [
    ({"model": {"name": ""}}, "spec.model.name: must not be empty"),
    ({"model": {"name": "m", "revision": ""}}, "spec.model.revision: must not be empty"),
    ({"model": {"name": "m", "loraAdapters": [{"name": "", "source": "pvc://c"}]}}, "spec.model.loraAdapters[0].name: "),
    ({"runtime": {"args": ["--enforce-eager", ""]}}, "spec.runtime.args: must not contain an empty string"),
    ({"runtime": {"env": [{"name": ""}]}}, "spec.runtime.env[0].name: "),
    ({"traffic": {"hosts": [""]}}, "spec.traffic.hosts: must not contain an empty string"),
    ({"traffic": {"gateways": [""]}}, "spec.traffic.gateways: must not contain an empty string"),
    ({"traffic": {"retries": {"attempts": 1, "retryOn": ""}}}, "spec.traffic.retries.retryOn: must not be empty"),
    ({"security": {"allowedPrincipals": [""]}}, "spec.security.allowedPrincipals: must not contain an empty string"),
    ({"security": {"allowedNamespaces": [""]}}, "spec.security.allowedNamespaces: must not contain an empty string"),
    ({"security": {"jwt": {"issuer": "", "jwksUri": "https://i/jwks"}}}, "spec.security.jwt.issuer: must not be empty"),
    ({"security": {"jwt": {"issuer": "i", "jwksUri": "https://i/jwks", "audiences": [""]}}},
     "spec.security.jwt.audiences: must not contain an empty string"),
    ({"edge": [{"name": "", "nodeLabels": {"a": "b"}}]}, "spec.edge[0].name: "),
    ({"edge": [{"name": "a", "nodeLabels": {"a": "b"}, "args": [""]}]}, "spec.edge[0].args: must not contain an empty string"),
    ({"rollout": {"analysis": {"metrics": [{"name": "kv", "query": "", "max": 1}]}}},
     "spec.rollout.analysis.metrics[0].query: must not be empty"),
    ({"rollout": {"header": {"name": "x-canary", "value": ""}}}, "spec.rollout.header.value: must not be empty"),
]


@pytest.mark.parametrize("spec,words", EMPTY_STRINGS, ids=[w.split(":")[0] for _, w in EMPTY_STRINGS])
def test_required_strings_are_not_empty(make_cr, spec, words):
    """`vllm serve ""` (and an empty host, flag, issuer, query ...) is refused, never rendered."""
    with pytest.raises(InvalidSpec) as err:
        parse_instance(make_cr(**spec))
    assert str(err.value).startswith(words)


def test_replicas_are_fixed_while_autoscaling_decides():
    """The Python twin of the transition rule the API server applies to `kubectl scale` and edits."""
    (rule,) = Spec.TRANSITION_RULES

    def spec(replicas: int, enabled: bool) -> Spec:
        return parse(Spec, {"model": {"name": "m"}, "replicas": replicas, "autoscaling": {"enabled": enabled}}, "spec")

    assert not rule.check((spec(1, True), spec(3, True))), "kubectl scale on an autoscaled resource"
    assert rule.check((spec(1, True), spec(1, True)))
    assert rule.check((spec(1, False), spec(3, False))), "without autoscaling spec.replicas is the count"
    assert rule.check((spec(1, True), spec(3, False))), "switching autoscaling off with a count"
    assert rule.check((spec(1, False), spec(3, True))), "switching it on in the same update"


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


# A load signal that exists while the model has no pod: the mesh's request rate to its Service.
GATEWAY_RATE = 'sum(rate(istio_requests_total{destination_service_name="glm"}[1m]))'


def test_scale_to_zero_needs_keda_installed(make_instance):
    spec = make_instance(autoscaling={"enabled": True, "minReplicas": 0, "target": {"query": GATEWAY_RATE}}).spec
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
