"""Parsing, defaults and every validation rule of the AutoGLMDeployment spec."""
from __future__ import annotations

import pytest

from autoglm_operator.api.schema import InvalidSpec, parse
from autoglm_operator.api.spec import Spec, check_capabilities, check_labels, parse_instance


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
    one = make_instance(rollout={}).spec
    with pytest.raises(InvalidSpec, match="^spec.rollout needs Istio, which is not installed$"):
        check_capabilities(one, keda=False, istio=False)


def test_defaults_need_no_istio(make_instance):
    check_capabilities(make_instance().spec, keda=False, istio=False)


# ---------------------------------------------------------------------------------------------
# Issue 15: accepted configurations that cannot recover (fault 5)


def test_scale_to_zero_on_the_default_load_query_is_refused(make_cr):
    """The issue's input: the default query counts requests the engine pods report, so at zero pods it
    reads 0 for ever and KEDA never activates again."""
    cr = make_cr(autoscaling={"enabled": True, "engine": "keda", "minReplicas": 0, "maxReplicas": 4})
    with pytest.raises(InvalidSpec, match="minReplicas 0 .* needs autoscaling.target.query: the default load query"):
        parse_instance(cr)


@pytest.mark.parametrize("enabled", [True, False])
def test_scale_to_zero_is_accepted_with_a_signal_that_exists_at_zero_pods(make_cr, enabled):
    spec = {"enabled": enabled, "minReplicas": 0, "maxReplicas": 4, "target": {"query": GATEWAY_RATE}}
    assert parse_instance(make_cr(autoscaling=spec)).spec.autoscaling.min_replicas == 0


# ---------------------------------------------------------------------------------------------
# Issue 15: user entries in keyed lists the operator also fills (fault 3a), pod essentials (fault 12)

HUB_TOKEN = {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hub", "key": "token"}}}
SCRATCH = {"name": "scratch", "emptyDir": {"sizeLimit": "10Gi"}}

OWNED_KEYS = [
    ({"runtime": {"env": [{"name": "HF_HOME", "value": "/models/hf"}]}}, "spec.runtime.env: HOME, HF_HOME are set by the operator"),
    ({"runtime": {"env": [{"name": "HOME", "value": "/tmp"}]}}, "HOME, HF_HOME are set by the operator"),
    ({"edge": [{"name": "a", "nodeLabels": {"site": "a"}, "env": [{"name": "HF_HOME", "value": "/data"}]}]},
     "spec.edge[0].env: HOME, HF_HOME are set by the operator"),
    ({"runtime": {"volumes": [{"name": "cache", "emptyDir": {}}]}}, "volume names dshm, cache and weights-* are the operator's"),
    ({"runtime": {"volumes": [{"name": "weights-0", "emptyDir": {}}]}}, "weights-* are the operator's"),
    ({"runtime": {"volumes": [SCRATCH], "volumeMounts": [{"name": "scratch", "mountPath": "/cache"}]}},
     "mountPath may not be, or be inside, a path the operator mounts (/dev/shm, /cache, /models)"),
    ({"runtime": {"volumes": [SCRATCH], "volumeMounts": [{"name": "scratch", "mountPath": "/models/extra"}]}},
     "a path the operator mounts"),
    ({"runtime": {"volumeMounts": [{"name": "nowhere", "mountPath": "/data"}]}},
     "every runtime.volumeMounts[].name must be a volume of runtime.volumes"),
    ({"runtime": {"volumes": [SCRATCH], "volumeMounts": [{"name": "scratch", "mountPath": "/d"}, {"name": "scratch", "mountPath": "/d"}]}},
     "duplicate mountPath /d"),
    ({"runtime": {"volumes": [SCRATCH, SCRATCH]}}, "duplicate name scratch"),
    ({"runtime": {"imagePullSecrets": [{"name": "r"}, {"name": "r"}]}}, "duplicate name r"),
    ({"scheduling": {"nodeAffinity": [{"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "Exists"}]}]}},
     "are set by the operator (use resources.gpu.product)"),
]


def test_node_selector_on_an_operator_label_is_refused(make_instance):
    spec = make_instance(scheduling={"nodeSelector": {"node-role.kubernetes.io/edge": ""}}).spec
    with pytest.raises(InvalidSpec, match="spec.scheduling.nodeSelector: node-role.kubernetes.io/edge is set by the operator"):
        check_labels(spec)


@pytest.mark.parametrize("scheduling, words", [
    ({"nodeSelector": {"bad key!": "x"}}, "is not a label key"),
    ({"nodeSelector": {"pool": "not a value"}}, "is not a label value"),
    ({"tolerations": [{"key": ".".join(["a" * 60] * 5) + "/b", "operator": "Exists"}]}, "is not a label key"),  # prefix > 253
])
def test_scheduling_labels_are_labels(make_instance, scheduling, words):
    with pytest.raises(InvalidSpec, match=words):
        check_labels(make_instance(scheduling=scheduling).spec)


POD_RULES = [
    ({"runtime": {"env": [{"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}},
     "an env entry sets value or valueFrom, not both"),
    ({"runtime": {"env": [{"name": "A", "valueFrom": {}}]}}, "exactly one of secretKeyRef and configMapKeyRef"),
    ({"runtime": {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "S", "key": "k"}}}]}}, "does not match"),
    ({"runtime": {"envFrom": [{"prefix": "X_"}]}}, "exactly one of secretRef and configMapRef"),
    ({"runtime": {"volumes": [{"name": "v"}]}}, "exactly one of secret, configMap, persistentVolumeClaim and emptyDir"),
    ({"runtime": {"volumes": [{"name": "v", "emptyDir": {}, "secret": {"secretName": "s"}}]}}, "exactly one of"),
    ({"runtime": {"volumes": [SCRATCH], "volumeMounts": [{"name": "scratch", "mountPath": "/d", "subPath": "a/../../etc"}]}},
     "must not contain '..'"),
    ({"scheduling": {"tolerations": [{"value": "gpu"}]}}, "a toleration without a key must use operator Exists"),
    ({"scheduling": {"tolerations": [{"key": "sku", "operator": "Exists", "value": "gpu"}]}}, "operator Exists takes no value"),
    ({"scheduling": {"tolerations": [{"key": "sku", "tolerationSeconds": 30}]}}, "tolerationSeconds needs effect NoExecute"),
    ({"scheduling": {"tolerations": [{"key": "sku", "effect": "NoWay"}]}}, "must be one of"),
    ({"scheduling": {"nodeAffinity": [{"matchExpressions": [{"key": "pool", "operator": "In"}]}]}}, "operators In and NotIn need values"),
    ({"scheduling": {"nodeAffinity": [{"matchExpressions": [{"key": "pool", "operator": "Exists", "values": ["a"]}]}]}},
     "operators Exists and DoesNotExist take no values"),
    ({"scheduling": {"nodeAffinity": [{"matchExpressions": [{"key": "gpus", "operator": "Gt", "values": ["many"]}]}]}},
     "operators Gt and Lt take exactly one integer value"),
    ({"scheduling": {"nodeAffinity": [{"matchExpressions": []}]}}, "must not be empty"),
]


@pytest.mark.parametrize("spec, words", OWNED_KEYS + POD_RULES, ids=[w[:40] for _, w in OWNED_KEYS + POD_RULES])
def test_owned_keys_and_bad_pod_fields_are_refused_by_name(make_cr, spec, words):
    """OWNED_KEYS: the issue's input (HF_HOME) rendered HF_HOME twice and every apply failed with
    'duplicate entries'; POD_RULES: what the API server would refuse in the Deployment, refused earlier."""
    with pytest.raises(InvalidSpec) as refused:
        parse_instance(make_cr(**spec))
    assert words in str(refused.value)


def test_pod_essentials_parse(make_instance):
    spec = make_instance(
        runtime={"env": [HUB_TOKEN], "envFrom": [{"configMapRef": {"name": "engine-settings"}, "prefix": "VLLM_"}],
                 "volumes": [SCRATCH], "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                 "imagePullSecrets": [{"name": "registry"}]},
        scheduling={"tolerations": [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}], "nodeSelector": {"pool": "a100"},
                    "nodeAffinity": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]},
    ).spec
    assert spec.runtime.env[0].value_from.secret_key_ref.key == "token"
    assert spec.scheduling.tolerations[0].operator == "Equal"
    check_labels(spec)
