"""The per-revision GPU Deployment and the engine command lines."""
from __future__ import annotations

import pytest

from autoglm_operator.api.engines import PROFILES, check_user_args
from autoglm_operator.api.schema import InvalidSpec
from autoglm_operator.render.workload import deployment


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
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "45"]
    assert dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > 45
    assert dep["spec"]["progressDeadlineSeconds"] > 3600


def test_no_prestop_without_drain(make_instance):
    assert "lifecycle" not in _container(deployment(make_instance(runtime={"drainSeconds": 0}), "r"))


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
