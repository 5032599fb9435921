"""Reconciling an unchanged resource writes nothing: counted in the API server's audit log for the
operator's own ServiceAccount over several resyncs (every 2 s here)."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest
from operator_support import (
    EXAMPLES,
    apply,
    children,
    condition,
    describe,
    example,
    node_readiness_changed_since,
    wait_for,
    wait_for_condition,
    wait_until_quiet,
    writes_by,
)
from pipeline_support import PREDICTIVE

from autoglm_testenv import Env

pytestmark = pytest.mark.e2e


def test_resyncs_of_an_unchanged_resource_write_nothing(testenv: Env, namespace: str, operator, model_cache: str) -> None:
    hpa = example("01-minimal.yaml", namespace)
    hpa["metadata"]["name"] = "glm-hpa"
    hpa["spec"]["autoscaling"] = {"enabled": True, "engine": "hpa", "maxReplicas": 3}
    crs = [example(f, namespace) for f in ("01-minimal.yaml", "02-keda-autoscaled.yaml", "04-secured-jwt.yaml")]
    for cr in [*crs, hpa]:  # between them every kind the operator makes, each defaulted by the server
        apply(testenv, cr)
    for cr in [*crs, hpa]:
        wait_for_condition(testenv, namespace, cr["metadata"]["name"], "Ready", "True")

    writes, _, _ = _steady_state(testenv, operator, resources=4)
    assert writes == []


def _steady_state(testenv: Env, operator, resources: int, resyncs: int = 4) -> tuple[list[str], float, float]:
    """The operator's writes while it reconciled `resyncs` times as many times as there are
    `resources`, once it was quiet: (writes, reconciles, seconds). Waits on the reconcile count, not
    on a time (a loaded machine resyncs late, never less). A window in which the cluster itself
    changed proves nothing, and another is taken: a node's heartbeat lapsed (every pod turned
    NotReady), a pod of the namespace changed (a GPU another test freed let a Pending pod run), or
    an autoscaler reported (KEDA or the HPA controller set a condition the status follows)."""
    for _ in range(3):
        since = wait_until_quiet(testenv, operator.user, quiet_seconds=3)
        pods, started = _cluster_versions(testenv, operator.namespace), time.time()
        before = operator.metric("autoglm_operator_reconciles_total")
        wait_for(f"{resyncs * resources} reconciles", lambda: operator.metric("autoglm_operator_reconciles_total") - before
                 >= resyncs * resources, 30 * resyncs)
        writes = describe(writes_by(testenv, operator.user, since))
        if not node_readiness_changed_since(testenv, started) and _cluster_versions(testenv, operator.namespace) == pods:
            break
    return writes, operator.metric("autoglm_operator_reconciles_total") - before, time.time() - started


def _cluster_versions(testenv: Env, namespace: str) -> dict[tuple[str, str], str]:
    """What others write in the namespace (pods; autoscalers' status from KEDA and the HPA controller)."""
    kinds = "pods,horizontalpodautoscalers,scaledobjects.keda.sh"
    return {(obj["kind"], obj["metadata"]["name"]): obj["metadata"]["resourceVersion"]
            for obj in testenv.kubectl_json("get", kinds, "-n", namespace)["items"]}


def test_values_the_api_server_normalises_are_not_drift(testenv: Env, namespace: str, operator) -> None:
    """Issue 15, fault 4: an empty env value (stored without `value`) and re-spelt quantities
    (stored canonical) were re-applied with an Event at every resync."""
    cr = example("01-minimal.yaml", namespace)
    cr["spec"]["runtime"] = {"env": [{"name": "HTTPS_PROXY", "value": ""}, {"name": "NO_PROXY", "value": "localhost"}]}
    cr["spec"]["resources"] = {**cr["spec"].get("resources", {}), "cpu": "1000m", "memory": "65536Mi"}
    apply(testenv, cr)
    wait_for_condition(testenv, namespace, cr["metadata"]["name"], "Ready", "True")
    deployment = next(obj for (kind, _), obj in children(testenv, namespace, cr["metadata"]["name"]).items()
                      if kind == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "HTTPS_PROXY"} in container["env"], "the server stores an empty value as no value"
    assert container["resources"]["limits"]["cpu"] == "1", "and 1000m as 1"

    writes, _, _ = _steady_state(testenv, operator, resources=1)
    assert writes == []


EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.glob("*.yaml"))


def issue_15_inputs(namespace: str) -> list[dict[str, Any]]:
    """Each input of issue 15 that is a spec, as a resource (some are refused by validation now:
    an InvalidSpec at rest must be as quiet as a running resource), after one small resource per
    child kind."""
    def based_on(filename: str, name: str, **spec: Any) -> dict[str, Any]:
        cr = example(filename, namespace)
        cr["metadata"]["name"] = name
        cr["spec"] = {**cr["spec"], **spec}
        return cr

    minimal = example("01-minimal.yaml", namespace)["spec"]
    secured = {k: v for k, v in example("04-secured-jwt.yaml", namespace)["spec"].items() if k != "runtime"}
    return [
        # Every child kind with the fewest fields (the examples add theirs): HPA, ScaledObject, RequestAuthentication.
        based_on("01-minimal.yaml", "k-hpa", autoscaling={"enabled": True, "engine": "hpa", "maxReplicas": 3}),
        based_on("01-minimal.yaml", "k-keda", autoscaling={"enabled": True, "engine": "keda", "minReplicas": 1,
                                                           "maxReplicas": 4, "target": {"perReplica": 8}}),
        based_on("01-minimal.yaml", "k-jwt", **secured),
        based_on("05-canary.yaml", "i2-sglang-canary", runtime={"engine": "sglang"}, replicas=1),
        based_on("01-minimal.yaml", "i3-hf-home-twice", runtime={"env": [{"name": "HF_HOME", "value": "/models/hf"}]}),
        based_on("01-minimal.yaml", "i4-empty-env", runtime={"env": [{"name": "HTTPS_PROXY", "value": ""}]}),
        based_on("01-minimal.yaml", "i5-keda-zero", autoscaling={"enabled": True, "engine": "keda", "minReplicas": 0,
                                                                  "maxReplicas": 4}),
        based_on("01-minimal.yaml", "i6-any-host", traffic={"hosts": ["*"], "gateways": ["istio-system/public"]}),
        based_on("06-edge.yaml", "autoglm-phone-9b-awq-edge",
                 edge=[{"name": "factory-shanghai-01", "nodeLabels": {"autoglm.io/edge-group": "site-a"}, "replicas": 1,
                        "resources": {"gpuCount": 0, "cpu": "4", "memory": "16Gi"}}]),
        based_on("01-minimal.yaml", "i8-quantities", resources={**minimal.get("resources", {}), "cpu": "1000m",
                                                                "memory": "65536Mi"}),
        based_on("05-canary.yaml", "i10-user-metric", replicas=1, rollout={
            **example("05-canary.yaml", namespace)["spec"]["rollout"],
            "analysis": {"prometheusAddress": "http://prometheus-operated.monitoring.svc:9090",
                         "metrics": [{"name": "kv-cache", "query": "vllm:gpu_cache_usage_perc", "max": 0.95}]}}),
        based_on("01-minimal.yaml", "i12-pod-essentials", runtime={
            "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hub", "key": "token"}}}],
            "imagePullSecrets": [{"name": "registry"}],
            "volumes": [{"name": "extra", "emptyDir": {}}],
            "volumeMounts": [{"name": "extra", "mountPath": "/extra"}],
        }, scheduling={"tolerations": [{"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
                       "nodeSelector": {"topology.kubernetes.io/zone": "zone-a"}}),
    ]


@PREDICTIVE  # the examples include a predictive one
def test_every_example_and_every_issue_15_input_writes_nothing_at_rest(
        testenv: Env, namespace: str, operator, model_cache: str) -> None:
    """Issue 15's must-show (docs/benchmarks.md): once every resource has converged, resyncs (every
    2 s) write nothing, counted in the API server's audit log for the operator's identity."""
    crs = [example(f, namespace) for f in EXAMPLE_FILES] + issue_15_inputs(namespace)
    accepted, refused = [], {}
    for cr in crs:
        done = testenv.kubectl("apply", "-f", "-", input=json.dumps(cr), check=False)
        if done.returncode == 0:
            accepted.append(cr["metadata"]["name"])
        else:
            refused[cr["metadata"]["name"]] = done.stderr.strip()
    examples = {example(f, namespace)["metadata"]["name"] for f in EXAMPLE_FILES}
    assert not examples & set(refused), f"examples refused by the API server: {refused}"

    def converged() -> bool:
        items = testenv.kubectl_json("get", "autoglmdeployments", "-n", namespace)["items"]
        return len(items) == len(accepted) and all(
            (item.get("status") or {}).get("observedGeneration") == item["metadata"]["generation"] for item in items)

    wait_for("every resource converged once", converged, 120)
    writes, reconciles, seconds = _steady_state(testenv, operator, resources=len(accepted))
    reasons = {item["metadata"]["name"]: condition(item, "Ready").get("reason")
               for item in testenv.kubectl_json("get", "autoglmdeployments", "-n", namespace)["items"]}
    print(f"steady state: {len(accepted)} resources ({len(refused)} inputs refused by the API server: {refused}), "
          f"{reconciles:.0f} reconciles in {seconds:.0f} s, {len(writes)} writes; Ready reasons {reasons}")
    assert writes == []
