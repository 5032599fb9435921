"""Smoke tests proving the local environment is real: a 1.34 API server that schedules GPU and
edge pods onto kwok nodes and validates the real Istio/KEDA/KubeEdge schemas, RBAC that denies,
a Kafka broker that round-trips records, a Prometheus that scrapes the simulated engine, real KEDA
feeding its HPA through the external metrics API, pods with a cold start; and
that `hack/testenv` serves only its own checkout's environment."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from kafka import KafkaConsumer, KafkaProducer
from prometheus_api_client import PrometheusConnect

from autoglm_operator.api.timestamps import parse_time
from autoglm_testenv import Env, config, procs
from autoglm_testenv.cluster import EDGE_GROUP_LABEL

pytestmark = pytest.mark.e2e


def _deployment(name: str, gpus: int | None = None, node_selector: dict[str, str] | None = None) -> str:
    container: dict = {"name": "engine", "image": "vllm/vllm-openai:v0.11.0"}
    pod: dict = {"containers": [container]}
    if gpus is not None:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
        pod["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    if node_selector:
        pod["nodeSelector"] = node_selector
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": pod}},
    })


def _pod_of(testenv: Env, namespace: str, app: str) -> dict:
    pods = testenv.kubectl_json("get", "pods", "-n", namespace, "-l", f"app={app}")["items"]
    return pods[0] if pods else {}


def _running_pod(testenv: Env, namespace: str, app: str) -> dict:
    found: dict = {}

    def running() -> bool:
        found.update(_pod_of(testenv, namespace, app))
        return found.get("status", {}).get("phase") == "Running"

    procs.wait_until(f"pod of {app} Running", running, 60)
    return found


def test_server_is_kubernetes_1_34(testenv: Env) -> None:
    version = json.loads(testenv.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"].startswith("v1.34.")
    assert version["serverVersion"]["minor"] == "34"


def test_gpu_pod_runs_on_gpu_node_and_oversized_request_stays_pending(testenv: Env, namespace: str) -> None:
    testenv.kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("one-gpu", gpus=1))
    testenv.kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("nine-gpus", gpus=9))
    pod = _running_pod(testenv, namespace, "one-gpu")
    node = testenv.kubectl_json("get", "node", pod["spec"]["nodeName"])
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "8"
    assert "nvidia.com/gpu.product" in node["metadata"]["labels"]

    def unschedulable() -> bool:
        conds = _pod_of(testenv, namespace, "nine-gpus").get("status", {}).get("conditions", [])
        return any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable" for c in conds)

    procs.wait_until("nine-GPU pod reported Unschedulable", unschedulable, 60)
    pending = _pod_of(testenv, namespace, "nine-gpus")
    assert pending["status"]["phase"] == "Pending"
    message = next(c["message"] for c in pending["status"]["conditions"] if c["type"] == "PodScheduled")
    assert "Insufficient nvidia.com/gpu" in message


def test_edge_pod_lands_on_edge_node(testenv: Env, namespace: str) -> None:
    selector = {"node-role.kubernetes.io/edge": "", EDGE_GROUP_LABEL: "site-b"}
    testenv.kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("edge", node_selector=selector))
    pod = _running_pod(testenv, namespace, "edge")
    assert pod["spec"]["nodeName"] == "edge-node-b"


def test_cpu_pod_avoids_tainted_gpu_nodes(testenv: Env, namespace: str) -> None:
    testenv.kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("plain"))
    pod = _running_pod(testenv, namespace, "plain")
    assert not pod["spec"]["nodeName"].startswith("gpu-node-")


def test_real_istio_schema_rejects_unknown_field(testenv: Env, namespace: str) -> None:
    vs = {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "vs"},
        "spec": {"hosts": ["glm"], "http": [{"route": [{"destination": {"host": "glm"}, "weight": 100}]}],
                 "notAField": True},
    }
    bad = testenv.kubectl("create", "--validate=strict", "-n", namespace, "-f", "-", input=json.dumps(vs), check=False)
    assert bad.returncode != 0
    assert "notAField" in bad.stderr
    del vs["spec"]["notAField"]
    testenv.kubectl("create", "--validate=strict", "-n", namespace, "-f", "-", input=json.dumps(vs))


def test_real_keda_schema_rejects_wrong_type(testenv: Env, namespace: str) -> None:
    so = {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "so"},
        "spec": {"scaleTargetRef": {"name": "glm"}, "minReplicaCount": "one",
                 "triggers": [{"type": "prometheus", "metadata": {"serverAddress": "http://p", "query": "up",
                                                                   "threshold": "8"}}]},
    }
    bad = testenv.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(so), check=False)
    assert bad.returncode != 0
    assert "minReplicaCount" in bad.stderr
    so["spec"]["minReplicaCount"] = 1
    testenv.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(so))


def test_keda_feeds_its_hpa_from_prometheus_through_the_external_metrics_api(testenv: Env, namespace: str) -> None:
    """The real KEDA operator makes the HPA; the API server reaches KEDA's adapter (APIService ->
    ExternalName Service -> localhost), which asks the operator, which asks Prometheus."""
    testenv.kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("scaled"))
    so = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "scaled"},
          "spec": {"scaleTargetRef": {"name": "scaled"}, "minReplicaCount": 1, "maxReplicaCount": 3, "triggers": [
              {"type": "prometheus", "metadata": {"serverAddress": testenv.prometheus_url, "query": "vector(7)",
                                                  "threshold": "1"}}]}}
    testenv.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(so))
    found: dict = {}

    def hpa_made() -> bool:
        result = testenv.kubectl("get", "hpa", "keda-hpa-scaled", "-n", namespace, "-o", "json", check=False)
        found.update(json.loads(result.stdout) if result.returncode == 0 else {})
        return bool(found)

    procs.wait_until("KEDA's HPA", hpa_made, 60)
    metric = found["spec"]["metrics"][0]["external"]["metric"]
    selector = ",".join(f"{k}={v}" for k, v in metric["selector"]["matchLabels"].items())
    values = json.loads(testenv.kubectl("get", "--raw", f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/"
                                                        f"{metric['name']}?labelSelector={selector}").stdout)
    assert [item["value"] for item in values["items"]] == ["7"]
    # 7 / 1 per replica, capped at maxReplicaCount: the HPA controller scaled the Deployment.
    procs.wait_until("the HPA at maxReplicaCount", lambda: testenv.kubectl_json(
        "get", "deployment", "scaled", "-n", namespace)["spec"]["replicas"] == 3, 60)


def test_pods_turn_ready_only_after_their_namespace_cold_start(testenv: Env, namespace: str) -> None:
    testenv.set_cold_start(namespace, 4)
    testenv.kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("cold"))
    procs.wait_until("the pod Ready", lambda: any(c["type"] == "Ready" and c["status"] == "True" for c in
                                                  _pod_of(testenv, namespace, "cold").get("status", {}).get("conditions", [])), 60)
    pod = _pod_of(testenv, namespace, "cold")
    ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")["lastTransitionTime"]
    waited = parse_time(ready).timestamp() - parse_time(pod["metadata"]["creationTimestamp"]).timestamp()
    assert waited >= 3, f"Ready {waited:.0f} s after creation (timestamps have 1 s resolution)"


def test_real_kubeedge_crds_are_served(testenv: Env) -> None:
    resources = testenv.kubectl("api-resources", "--api-group=apps.kubeedge.io", "-o", "name").stdout.split()
    assert {"nodegroups.apps.kubeedge.io", "edgeapplications.apps.kubeedge.io"} <= set(resources)


def test_rbac_denies_a_service_account(testenv: Env, namespace: str) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    testenv.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    token = testenv.service_account_token(namespace, "nobody")
    core = client.CoreV1Api(testenv.api_client(token))
    with pytest.raises(ApiException) as denied:
        core.list_secret_for_all_namespaces()
    assert denied.value.status == 403
    assert f"system:serviceaccount:{namespace}:nobody" in denied.value.body


def test_kafka_round_trip(testenv: Env) -> None:
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=testenv.kafka_bootstrap)
    producer.send(topic, key=b"ml/glm-chat", value=b'{"load": 42}').get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=testenv.kafka_bootstrap, auto_offset_reset="earliest",
                             group_id=f"smoke-{topic}", consumer_timeout_ms=20000)
    try:
        record = next(iter(consumer))
    finally:
        consumer.close()
    assert (record.key, record.value) == (b"ml/glm-chat", b'{"load": 42}')


def test_prometheus_scrapes_the_simulated_engine(testenv: Env, sim_engine) -> None:
    engine = sim_engine(namespace="smoke", deployment="glm-chat", revision="r1", time_scale=10)
    for _ in range(5):
        requests.post(f"{engine.url}/v1/completions", json={"prompt": "hello", "max_tokens": 8}, timeout=10).raise_for_status()
    prom = PrometheusConnect(url=testenv.prometheus_url, disable_ssl=True)
    query = 'sum(vllm:request_success_total{namespace="smoke",autoglm_deployment="glm-chat"})'

    def five_requests() -> bool:
        result = prom.custom_query(query)
        return bool(result) and float(result[0]["value"][1]) == 5.0

    procs.wait_until("Prometheus to scrape 5 successful requests", five_requests, 30)
    ttft = prom.custom_query('histogram_quantile(0.95, sum by (le) (vllm:time_to_first_token_seconds_bucket{namespace="smoke"}))')
    assert ttft and float(ttft[0]["value"][1]) > 0


@pytest.fixture
def other_checkout(tmp_path: Path) -> Iterator[Path]:
    """A second checkout on this machine, as far as `hack/testenv` can tell: its own copy of
    hack/testenv and hack/autoglm_testenv, and this checkout's .venv linked in. Its folder under
    the cache is removed afterwards."""
    root = tmp_path / "other-checkout"
    shutil.copytree(config.HACK_DIR / "autoglm_testenv", root / "hack" / "autoglm_testenv",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(config.HACK_DIR / "testenv", root / "hack" / "testenv")
    (root / ".venv").symlink_to(config.REPO_DIR / ".venv")
    yield root
    shutil.rmtree(config.checkout_state_dir(root), ignore_errors=True)


def _in_checkout(root: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run a bash script in `root` with only the system's PATH, so whatever it finds of kubectl
    or the plugin came from `hack/testenv env`, not from the shell running the tests."""
    variables = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", config.OWNER_VARIABLE)}
    return subprocess.run(["bash", "-c", script], cwd=root, env={**variables, "PATH": os.defpath},
                          capture_output=True, text=True, timeout=120)


def test_env_puts_kubectl_and_the_autoglm_plugin_on_path(testenv: Env, other_checkout: Path) -> None:
    pointer = config.state_pointer(other_checkout)  # as if `hack/testenv up` there had started `testenv`
    pointer.parent.mkdir(parents=True)
    pointer.write_text(str(testenv.state_file))
    result = _in_checkout(other_checkout, 'eval "$(hack/testenv env)" && kubectl autoglm --help && kubectl plugin list'
                                          ' && kubectl get nodes -o name')
    assert result.returncode == 0, result.stderr
    assert "rollout" in result.stdout, "kubectl ran the autoglm plugin"
    assert str(config.checkout_state_dir(other_checkout) / "bin" / "kubectl-autoglm") in result.stdout
    assert "node/gpu-node-0" in result.stdout, "KUBECONFIG names the running cluster"


def test_another_checkout_neither_sees_nor_stops_this_environment(testenv: Env, other_checkout: Path) -> None:
    mine = procs.owned_by(str(config.checkout_state_dir()))
    assert set(testenv.pids.values()) <= set(mine), "every service carries this checkout's mark"
    status = _in_checkout(other_checkout, "hack/testenv status")
    assert status.returncode == 1 and "not running" in status.stderr
    down = _in_checkout(other_checkout, "hack/testenv down --force")
    assert down.returncode == 0, down.stderr
    assert "no environment started by `hack/testenv up` in this checkout" in down.stdout
    assert "stopped 0 other process(es)" in down.stdout
    assert all(testenv.running().values())
    testenv.kubectl("get", "nodes")
