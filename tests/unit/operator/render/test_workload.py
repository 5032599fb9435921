"""The per-revision GPU Deployment and the engine command lines."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import resource, valid_spec

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.engines import PROFILES, check_user_args
from autoglm_operator.api.schema import InvalidSpec
from autoglm_operator.render.desired import validate
from autoglm_operator.render.edge import render_edge
from autoglm_operator.render.workload import DRAIN_HOOK_SOURCE, SETTLE_SECONDS, STOP_SECONDS, deployment


def _container(dep: dict) -> dict:
    return dep["spec"]["template"]["spec"]["containers"][0]


def test_name_selector_and_labels(make_instance):
    dep = deployment(make_instance(), "abc123")
    assert dep["metadata"]["name"] == "glm-abc123"
    assert dep["spec"]["selector"]["matchLabels"] == {"autoglm.io/instance": "glm", "autoglm.io/revision": "abc123"}
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["autoglm.io/revision"] == "abc123"
    assert pod_labels["app.kubernetes.io/managed-by"] == "autoglm-operator"
    assert pod_labels is not dep["metadata"]["labels"]


def test_gpu_scheduling(make_instance):
    dep = deployment(make_instance(resources={"gpu": {"count": 2, "product": "NVIDIA-H100-80GB-HBM3"}}), "r")
    pod = dep["spec"]["template"]["spec"]
    assert _container(dep)["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert _container(dep)["resources"]["requests"]["nvidia.com/gpu"] == "2"
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchExpressions": [
                {"key": "node-role.kubernetes.io/edge", "operator": "DoesNotExist"},
                {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-H100-80GB-HBM3"]},
            ]
        }
    ]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]


def test_volumes_and_mounts(make_instance):
    inst = make_instance(
        model={
            "name": "m",
            "source": "pvc://weights/glm",
            "loraAdapters": [{"name": "sql", "source": "pvc://adapters/sql"}, {"name": "qa", "source": "pvc://weights/qa"}],
        },
        resources={"shmSize": "16Gi"},
    )
    dep = deployment(inst, "r")
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    assert volumes["weights-0"]["persistentVolumeClaim"] == {"claimName": "weights", "readOnly": True}
    assert volumes["weights-1"]["persistentVolumeClaim"] == {"claimName": "adapters", "readOnly": True}
    assert len(volumes) == 4
    mounts = {m["mountPath"]: m for m in _container(dep)["volumeMounts"]}
    assert mounts["/dev/shm"]["name"] == "dshm"
    assert mounts["/models/weights"]["readOnly"] is True
    args = _container(dep)["args"]
    assert args[0] == "/models/weights/glm"
    assert "--revision" not in args, "a pvc source is not downloaded, so no hub revision"
    assert args[args.index("--lora-modules") + 1 :][:2] == ["sql=/models/adapters/sql", "qa=/models/weights/qa"]


def test_probes_sized_for_weight_loading(make_instance):
    dep = deployment(make_instance(runtime={"startupTimeoutSeconds": 3600, "drainSeconds": 45}), "r")
    c = _container(dep)
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] >= 3600
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert dep["spec"]["progressDeadlineSeconds"] > 3600


@pytest.mark.parametrize("engine", sorted(PROFILES))
def test_prestop_runs_the_drain_hook_on_the_engine_gauges_with_the_drain_budget(make_instance, engine):
    dep = deployment(make_instance(runtime={"engine": engine, "drainSeconds": 45}), "r")
    command = _container(dep)["lifecycle"]["preStop"]["exec"]["command"]
    signals = PROFILES[engine].signals
    assert command[:3] == ["python3", "-c", DRAIN_HOOK_SOURCE]
    assert command[3:] == [str(SETTLE_SECONDS), "45", "http://127.0.0.1:8000/metrics", signals.running, signals.waiting]
    assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == SETTLE_SECONDS + 45 + STOP_SECONDS


def test_drain_budget_defaults_to_the_route_timeout(make_instance):
    dep = deployment(make_instance(traffic={"timeoutSeconds": 900}), "r")
    assert _container(dep)["lifecycle"]["preStop"]["exec"]["command"][4] == "900"
    assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == SETTLE_SECONDS + 900 + STOP_SECONDS


def test_no_prestop_without_drain(make_instance):
    dep = deployment(make_instance(runtime={"drainSeconds": 0}), "r")
    assert "lifecycle" not in _container(dep)
    assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == STOP_SECONDS


def test_replicas_only_without_autoscaling(make_instance):
    assert deployment(make_instance(replicas=3), "r")["spec"]["replicas"] == 3
    assert "replicas" not in deployment(make_instance(autoscaling={"enabled": True}), "r")["spec"]


def test_security_context(make_instance):
    vllm = deployment(make_instance(), "r")
    assert vllm["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert _container(vllm)["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    tgi = deployment(make_instance(runtime={"engine": "tgi"}), "r")
    assert "runAsNonRoot" not in tgi["spec"]["template"]["spec"]["securityContext"]


FULL_RUNTIME = {"tensorParallelSize": 2, "maxModelLen": 8192}
FULL_MODEL = {"name": "zai-org/GLM-4-9B-0414", "quantization": "awq", "loraAdapters": [{"name": "sql", "source": "pvc://a/sql"}]}


@pytest.mark.parametrize(
    "engine,expected",
    [
        (
            "vllm",
            ["zai-org/GLM-4-9B-0414", "--tensor-parallel-size", "2", "--max-model-len", "8192", "--quantization", "awq",
             "--enable-lora", "--lora-modules", "sql=/models/a/sql", "--served-model-name"],
        ),
        (
            "sglang",
            ["--model-path", "--tp-size", "2", "--context-length", "8192", "--quantization", "awq", "--lora-paths",
             "sql=/models/a/sql", "--enable-metrics"],
        ),
        (
            "tgi",
            ["--model-id", "--num-shard", "2", "--max-total-tokens", "8192", "--quantize", "awq", "--lora-adapters",
             "sql=/models/a/sql"],
        ),
    ],
)
def test_engine_args(make_instance, engine, expected):
    inst = make_instance(model=FULL_MODEL, runtime={**FULL_RUNTIME, "engine": engine, "args": ["--seed", "1"]}, resources={"gpu": {"count": 2}})
    c = _container(deployment(inst, "r"))
    assert c["image"] == PROFILES[engine].image
    assert c["command"] == PROFILES[engine].command
    assert set(expected) <= set(c["args"])
    assert c["args"][-2:] == ["--seed", "1"], "user args come last"
    assert "8000" in c["args"] and c["ports"][0]["containerPort"] == 8000


def test_custom_image(make_instance):
    assert _container(deployment(make_instance(runtime={"image": "registry/vllm:x"}), "r"))["image"] == "registry/vllm:x"


@pytest.mark.parametrize("engine,flag", [("vllm", "--tensor-parallel-size=2"), ("sglang", "--port"), ("tgi", "--quantize")])
def test_user_args_may_not_repeat_managed_flags(make_instance, engine, flag):
    runtime = make_instance(runtime={"engine": engine, "args": [flag]}).spec.runtime
    with pytest.raises(InvalidSpec, match="set by the operator"):
        check_user_args(runtime)


# ---------------------------------------------------------------------------------------------
# Issue 15: pod essentials (fault 12), one merge rule for keyed lists (fault 3a), canonical quantities (fault 8)

ESSENTIALS = {
    "runtime": {
        "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hub", "key": "token"}}},
                {"name": "SETTING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k", "optional": True}}},
                {"name": "HTTPS_PROXY", "value": ""}],
        "envFrom": [{"secretRef": {"name": "engine-secrets"}, "prefix": "VLLM_"}],
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "10240Mi"}},
                    {"name": "certs", "secret": {"secretName": "ca"}}],
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"},
                         {"name": "certs", "mountPath": "/etc/ssl/custom", "readOnly": True}],
        "imagePullSecrets": [{"name": "registry"}],
    },
    "scheduling": {
        "tolerations": [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}],
        "nodeSelector": {"pool": "a100"},
        "nodeAffinity": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
                         {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}],
    },
    "resources": {"gpu": {"product": "NVIDIA-H100-80GB-HBM3"}, "cpu": "8000m", "memory": "65536Mi"},
}


def test_pod_essentials_are_rendered_after_the_operators_own(make_instance):
    dep = deployment(make_instance(**ESSENTIALS), "r")
    pod = dep["spec"]["template"]["spec"]
    container = _container(dep)
    # (a) the issue's managed-Kubernetes taint, and node selection
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                                  {"effect": "NoSchedule", "key": "sku", "operator": "Equal", "value": "gpu"}]
    assert pod["nodeSelector"] == {"pool": "a100"}
    own = [{"key": "node-role.kubernetes.io/edge", "operator": "DoesNotExist"},
           {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-H100-80GB-HBM3"]}]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [*own, {"key": "zone", "operator": "In", "values": ["a"]}]},
                     {"matchExpressions": [*own, {"key": "zone", "operator": "In", "values": ["b"]}]}]
    # (b) the Hub token from a Secret, never in the resource
    assert container["env"][:3] == [
        {"name": "HOME", "value": "/cache"}, {"name": "HF_HOME", "value": "/cache/huggingface"},
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hub", "key": "token"}}},
    ]
    assert container["env"][3] == {"name": "SETTING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k", "optional": True}}}
    assert container["env"][4] == {"name": "HTTPS_PROXY"}, "an empty value is stored as absent by the API server"
    assert container["envFrom"] == [{"secretRef": {"name": "engine-secrets"}, "prefix": "VLLM_"}]
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["volumes"][-2:] == [{"name": "scratch", "emptyDir": {"sizeLimit": "10Gi"}},
                                   {"name": "certs", "secret": {"secretName": "ca"}}]
    assert container["volumeMounts"][-2:] == [{"name": "scratch", "mountPath": "/scratch"},
                                              {"name": "certs", "mountPath": "/etc/ssl/custom", "readOnly": True}]
    assert container["resources"]["limits"] | {} == {"nvidia.com/gpu": "1", "cpu": "8", "memory": "64Gi"}


def test_defaults_render_no_empty_pod_fields(make_instance):
    pod = deployment(make_instance(), "r")["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "imagePullSecrets" not in pod and "envFrom" not in pod["containers"][0]
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_reserved_keys_are_exactly_what_the_operator_renders(make_instance):
    """The names validation refuses (api.spec) are the ones the renderer fills, and no more."""
    from autoglm_operator.api.engines import MODEL_DIR
    from autoglm_operator.api.spec import OPERATOR_ENV, OPERATOR_MOUNTS, OPERATOR_VOLUMES, WEIGHTS_DIR, WEIGHTS_VOLUME_PREFIX
    assert WEIGHTS_DIR == MODEL_DIR
    dep = deployment(make_instance(model={"name": "m", "source": "pvc://w/m"}), "r")
    pod, container = dep["spec"]["template"]["spec"], _container(dep)
    assert tuple(e["name"] for e in container["env"]) == OPERATOR_ENV
    volumes = [v["name"] for v in pod["volumes"]]
    assert volumes[:2] == list(OPERATOR_VOLUMES) and all(v.startswith(WEIGHTS_VOLUME_PREFIX) for v in volumes[2:])
    assert all(any(m["mountPath"] == p or m["mountPath"].startswith(p + "/") for p in OPERATOR_MOUNTS)
               for m in container["volumeMounts"])


KEYED_LISTS = [  # (where in the pod, the key the API server merges and checks uniqueness by)
    (lambda pod: pod["containers"][0]["env"], "name"),
    (lambda pod: pod["volumes"], "name"),
    (lambda pod: pod["containers"][0]["volumeMounts"], "mountPath"),
    (lambda pod: pod.get("imagePullSecrets", []), "name"),
    (lambda pod: pod["containers"][0]["ports"], "containerPort"),
]


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(spec=valid_spec(), extra=st.sampled_from(["HOME", "HF_HOME", "HF_TOKEN"]))
def test_no_valid_spec_renders_a_keyed_list_with_a_key_twice(spec, extra):
    """Generalisation of the HF_HOME input: whatever valid spec (plus a variable that may be the
    operator's own, in runtime.env and every edge group), cloud and edge pods never hold a key twice in a
    list the API server keys (the server-side apply error 'duplicate entries for key')."""
    runtime = spec.setdefault("runtime", {})
    runtime["env"] = [e for e in runtime.get("env", []) if e["name"] != extra] + [{"name": extra, "value": "x"}]
    for group in spec.get("edge", []):
        group["env"] = [e for e in group.get("env", []) if e["name"] != extra] + [{"name": extra, "value": "y"}]
    try:
        inst = validate(resource(spec), Capabilities())
    except InvalidSpec:
        return
    pods = [deployment(inst, "r")["spec"]["template"]["spec"]]
    pods += [o["spec"]["template"]["spec"] for o in render_edge(inst, "r", kubeedge=False) if o["kind"] == "Deployment"]
    for pod in pods:
        for where, key in KEYED_LISTS:
            keys = [entry[key] for entry in where(pod)]
            assert len(keys) == len(set(keys)), (key, keys)
