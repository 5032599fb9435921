"""A pod no node can take: the resource says why (the scheduler's own words), the operator does not
spin, and it recovers as soon as the spec fits (more GPUs than a node has; a platform taint, fixed by
spec.scheduling.tolerations)."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from operator_support import apply, children, condition, example, resource, wait_for_condition

from autoglm_testenv import Env, procs

pytestmark = pytest.mark.e2e


def test_more_gpus_than_any_node_has(testenv: Env, namespace: str, operator) -> None:
    cr = example("01-minimal.yaml", namespace)
    cr["spec"]["resources"] = {"gpu": {"count": 16}}  # the GPU nodes have 8 each
    apply(testenv, cr)

    stuck = wait_for_condition(testenv, namespace, "glm-chat", "Ready", "False", "Unschedulable")
    message = condition(stuck, "Ready")["message"]
    assert "Insufficient nvidia.com/gpu" in message, message
    assert condition(stuck, "Degraded")["status"] == "True"
    assert condition(stuck, "Progressing")["status"] == "False"

    errors = operator.metric("autoglm_operator_reconciles_total", result="error")
    time.sleep(5)  # a couple of resyncs: the reason holds, and the operator neither fails nor retries in a loop
    assert procs.alive(operator.pid)
    assert condition(resource(testenv, namespace, "glm-chat"), "Ready")["reason"] == "Unschedulable"
    assert operator.metric("autoglm_operator_reconciles_total", result="error") - errors <= 1  # one API hiccup at most

    cr["spec"]["resources"] = {"gpu": {"count": 1}}
    apply(testenv, cr)
    ready = wait_for_condition(testenv, namespace, "glm-chat", "Ready", "True")
    deployments = [name for kind, name in children(testenv, namespace, "glm-chat") if kind == "Deployment"]
    assert deployments == [f"glm-chat-{ready['status']['currentRevision']}"], "the unschedulable revision is retired"


@pytest.fixture
def tainted_gpu_node(testenv: Env, namespace: str) -> Iterator[str]:
    """A kwok GPU node of this test alone, tainted the way some managed platforms taint GPU nodes
    (`sku=gpu:NoSchedule`), labelled with the test's namespace so only this test's pods select it."""
    name = f"gpu-{namespace}"[:63].rstrip("-")
    capacity = {"cpu": "64", "memory": "512Gi", "pods": "110", "nvidia.com/gpu": "8"}
    apply(testenv, {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                     "labels": {"kubernetes.io/hostname": name, "type": "kwok", "autoglm.io/test-pool": namespace[:63],
                                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}},
        "spec": {"taints": [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}]},
        "status": {"capacity": capacity, "allocatable": capacity},
    })
    yield name
    testenv.kubectl("delete", "node", name, "--wait=false", check=False)


def test_pod_essentials_reach_a_tainted_gpu_node(testenv: Env, namespace: str, operator, tainted_gpu_node: str) -> None:
    """Issue 15, fault 12: with a platform taint there was no way to add a toleration, and a Hub token
    had to sit in the resource in plain text. Now the real API server takes what the operator renders
    (tolerations, node selector and affinity terms, env from a Secret and a ConfigMap, envFrom,
    image pull secrets, extra volumes and mounts) and the pod runs on the tainted node."""
    apply(testenv, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hub", "namespace": namespace},
                    "stringData": {"token": "hf_not_a_real_token"}})
    apply(testenv, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "engine", "namespace": namespace},
                    "data": {"VLLM_LOGGING_LEVEL": "INFO"}})
    cr = example("01-minimal.yaml", namespace)
    cr["spec"]["scheduling"] = {"nodeSelector": {"autoglm.io/test-pool": namespace[:63]}}
    cr["spec"]["runtime"] = {
        "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hub", "key": "token"}}}],
        "envFrom": [{"configMapRef": {"name": "engine"}}],
        "imagePullSecrets": [{"name": "registry"}],
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "10240Mi"}}, {"name": "certs", "secret": {"secretName": "hub"}}],
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}, {"name": "certs", "mountPath": "/etc/hub", "readOnly": True}],
    }
    apply(testenv, cr)
    stuck = wait_for_condition(testenv, namespace, "glm-chat", "Ready", "False", "Unschedulable")
    assert "untolerated taint" in condition(stuck, "Ready")["message"], condition(stuck, "Ready")["message"]

    cr["spec"]["scheduling"]["tolerations"] = [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}]
    cr["spec"]["scheduling"]["nodeAffinity"] = [{"matchExpressions": [{"key": "type", "operator": "In", "values": ["kwok"]}]}]
    apply(testenv, cr)
    ready = wait_for_condition(testenv, namespace, "glm-chat", "Ready", "True")
    revision = ready["status"]["currentRevision"]
    pods = testenv.kubectl_json("get", "pods", "-n", namespace, "-l", f"autoglm.io/revision={revision}")["items"]
    assert pods and all(p["spec"]["nodeName"] == tainted_gpu_node for p in pods)
    pod = pods[0]["spec"]
    engine = pod["containers"][0]
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hub", "key": "token"}}} in engine["env"]
    assert engine["envFrom"] == [{"configMapRef": {"name": "engine"}}]
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    assert {"name": "scratch", "emptyDir": {"sizeLimit": "10Gi"}} in pod["volumes"]
    assert {"name": "certs", "mountPath": "/etc/hub", "readOnly": True} in engine["volumeMounts"]
    assert "hf_not_a_real_token" not in json.dumps(resource(testenv, namespace, "glm-chat")), "the token stays in its Secret"
