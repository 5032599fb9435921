"""Invalid specs: refused by the API server at `kubectl apply` (this proves the CRD's schema and CEL
rules compile and run on a real server), or, where only the operator can tell, reported as
Ready=False reason InvalidSpec with nothing applied.

Rules enforced by the API server (each a case below): field types, required `spec.model`, unknown
fields, enums (engine), minimums (GPUs >= 1) and maximums (tensorParallelSize <= 16), patterns
(pvc:// sources, quantities), unique LoRA adapter names, the metadata.name rule, the CEL rules
minReplicas <= maxReplicas, scale-to-zero needs KEDA, and GPU count a multiple of tensor parallelism,
required strings that are empty (field rules, the same words as `autoglm render`), the
transition rule that refuses `kubectl scale` while autoscaling decides the replicas, and issue 15's
rules (hosts, gateways and retry conditions as Istio validates them, scale to zero only with a signal
that exists at zero pods, keys the operator owns, the pod fields' own rules).
Rule enforced by the operator here: `runtime.args` may not repeat a flag the operator sets. (The
rules that depend on KEDA or Istio being absent cannot trigger in this cluster, which serves both;
their unit tests are in tests/unit/operator/api/test_spec.py.)
"""
from __future__ import annotations

import copy
import json
import subprocess
from typing import Any

import pytest
import yaml
from operator_support import (
    apply,
    audit_offset,
    children,
    condition,
    describe,
    wait_for_condition,
    writes_by,
)

from autoglm_operator.api.schema import InvalidSpec
from autoglm_operator.api.spec import parse_instance
from autoglm_testenv import Env, components

pytestmark = pytest.mark.e2e


def _cr(namespace: str, name: str = "glm", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "autoglm.io/v1alpha1",
        "kind": "AutoGLMDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": {"name": "zai-org/GLM-4-9B-0414"}, **copy.deepcopy(spec)},
    }


REJECTED = {
    "wrong type": ({"replicas": "two"}, "spec.replicas in body must be of type integer"),
    "missing model": ({"model": None}, "spec.model: Required value"),
    "unknown field": ({"modle": {"name": "x"}}, 'unknown field "spec.modle"'),
    "unknown engine": ({"runtime": {"engine": "llamacpp"}}, 'Unsupported value: "llamacpp"'),
    "negative GPUs": ({"resources": {"gpu": {"count": -1}}}, "spec.resources.gpu.count in body should be greater than or equal to 1"),
    "tensor parallel too large": ({"runtime": {"tensorParallelSize": 32}}, "should be less than or equal to 16"),
    "source not pvc://": ({"model": {"name": "m", "source": "s3://bucket/m"}}, "spec.model.source in body should match"),
    "memory not a quantity": ({"resources": {"memory": "lots"}}, "spec.resources.memory in body should match"),
    "duplicate LoRA names": (
        {"model": {"name": "m", "loraAdapters": [{"name": "a", "source": "pvc://x"}, {"name": "a", "source": "pvc://y"}]}},
        "spec.model.loraAdapters[1]: Duplicate value",
    ),
    "min above max replicas": (
        {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}, "autoscaling.minReplicas must be <= autoscaling.maxReplicas"
    ),
    "scale to zero without KEDA": (
        {"autoscaling": {"engine": "hpa", "minReplicas": 0}}, "autoscaling.minReplicas 0 (scale to zero) needs engine keda"
    ),
    "tensor parallel not dividing GPUs": (
        {"resources": {"gpu": {"count": 3}}, "runtime": {"tensorParallelSize": 2}},
        "resources.gpu.count must be a multiple of runtime.tensorParallelSize",
    ),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_api_server_rejects(testenv: Env, namespace: str, autoglm_crd: None, case: str) -> None:
    spec, message = REJECTED[case]
    cr = _cr(namespace, **spec)
    cr["spec"] = {k: v for k, v in cr["spec"].items() if v is not None}
    result = testenv.kubectl("apply", "-f", "-", input=json.dumps(cr), check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert testenv.kubectl("get", "agd", "-n", namespace, "-o", "name").stdout == ""


EMPTY = {
    "model name": {"model": {"name": ""}},
    "model revision": {"model": {"name": "m", "revision": ""}},
    "engine flag": {"runtime": {"args": ["--enforce-eager", ""]}},
    "host": {"traffic": {"hosts": [""]}},
    "JWT issuer": {"security": {"jwt": {"issuer": "", "jwksUri": "https://issuer.example/jwks"}}},
}


@pytest.mark.parametrize("case", list(EMPTY))
def test_empty_required_strings_are_refused_in_the_same_words_as_render(
        testenv: Env, namespace: str, autoglm_crd: None, case: str, tmp_path) -> None:
    """`spec.model.name: ""` rendered `vllm serve ""`; now `kubectl apply` and `autoglm render` refuse it
    naming the same field with the same message (the CRD's field rule and its Python twin)."""
    _refused_in_the_same_words(testenv, namespace, _cr(namespace, **EMPTY[case]), tmp_path)


def _refused_in_the_same_words(testenv: Env, namespace: str, cr: dict[str, Any], tmp_path) -> None:
    """`kubectl apply` and `autoglm render` refuse `cr` naming the same field with the same message
    (the CRD's rule and its Python twin), and nothing is stored."""
    with pytest.raises(InvalidSpec) as refused:
        parse_instance(cr)
    path, words = str(refused.value).split(": ", 1)
    result = testenv.kubectl("apply", "-f", "-", input=json.dumps(cr), check=False)
    assert result.returncode != 0
    assert f"{path}: Invalid value" in result.stderr and words in result.stderr, result.stderr
    assert testenv.kubectl("get", "agd", "-n", namespace, "-o", "name").stdout == ""

    manifest = tmp_path / "cr.yaml"
    manifest.write_text(yaml.safe_dump(cr))
    render = subprocess.run(components.autoglm_argv(["render", "-f", str(manifest)]),
                            capture_output=True, text=True, check=False)
    assert render.returncode == 2 and f"{path}: {words}" in render.stderr, render.stderr


def test_kubectl_scale_is_refused_while_autoscaling_decides(testenv: Env, namespace: str, autoglm_crd: None) -> None:
    """The scale subresource writes spec.replicas, which autoscaling ignores: the API server checks the
    scaled object against the CRD's transition rule and refuses, saying what to do instead."""
    scaled = _cr(namespace, autoscaling={"enabled": True, "maxReplicas": 8})
    apply(testenv, scaled)
    result = testenv.kubectl("scale", "agd/glm", "-n", namespace, "--replicas=3", check=False)
    assert result.returncode != 0
    assert "spec.replicas cannot change while autoscaling.enabled is true" in result.stderr, result.stderr
    assert "change autoscaling.minReplicas or maxReplicas" in result.stderr
    edited = copy.deepcopy(scaled)
    edited["spec"]["replicas"] = 2
    assert testenv.kubectl("apply", "-f", "-", input=json.dumps(edited), check=False).returncode != 0, "an edit alike"
    assert testenv.kubectl_json("get", "agd", "glm", "-n", namespace)["spec"]["replicas"] == 1

    # Switching autoscaling off may set the count in the same update; then `kubectl scale` is the count.
    edited["spec"]["autoscaling"]["enabled"] = False
    apply(testenv, edited)
    testenv.kubectl("scale", "agd/glm", "-n", namespace, "--replicas=3")
    assert testenv.kubectl_json("get", "agd", "glm", "-n", namespace)["spec"]["replicas"] == 3


def test_api_server_rejects_a_name_that_cannot_prefix_a_revision(testenv: Env, namespace: str, autoglm_crd: None) -> None:
    result = testenv.kubectl("apply", "-f", "-", input=json.dumps(_cr(namespace, name="9glm")), check=False)
    assert result.returncode != 0
    assert "metadata.name must be a DNS label of at most 52 characters starting with a letter" in result.stderr


def test_operator_refuses_a_flag_it_sets_and_applies_nothing(testenv: Env, namespace: str, operator) -> None:
    since = audit_offset(testenv)
    apply(testenv, _cr(namespace, runtime={"args": ["--port", "9000"]}))
    cr = wait_for_condition(testenv, namespace, "glm", "Ready", "False", "InvalidSpec")
    assert "--port" in condition(cr, "Ready")["message"]
    assert condition(cr, "Degraded")["status"] == "True"
    assert cr["status"]["phase"] == "Degraded"
    assert children(testenv, namespace, "glm") == {}
    touched = {w["objectRef"]["resource"] for w in writes_by(testenv, operator.user, since)}
    assert touched <= {"autoglmdeployments", "events"}, describe(writes_by(testenv, operator.user, since))


def test_an_invalid_update_leaves_the_running_objects_alone(testenv: Env, namespace: str, operator) -> None:
    apply(testenv, _cr(namespace))
    rev = wait_for_condition(testenv, namespace, "glm", "Ready", "True")["status"]["currentRevision"]
    before = set(children(testenv, namespace, "glm"))
    offset = audit_offset(testenv)

    apply(testenv, _cr(namespace, runtime={"args": ["--tensor-parallel-size=2"]}))
    cr = wait_for_condition(testenv, namespace, "glm", "Ready", "False", "InvalidSpec")
    assert cr["status"]["observedGeneration"] == 2
    assert "--tensor-parallel-size" in condition(cr, "Ready")["message"]
    # The operator's own writes (controllers may still update the children's status): only its
    # resource's status and Events, never a child.
    to_children = [w for w in writes_by(testenv, operator.user, offset)
                   if w["objectRef"].get("resource") not in ("autoglmdeployments", "events")]
    assert to_children == [], f"nothing may be applied or pruned for an invalid spec: {describe(to_children)}"
    assert set(children(testenv, namespace, "glm")) == before

    apply(testenv, _cr(namespace))
    cr = wait_for_condition(testenv, namespace, "glm", "Ready", "True")
    assert (cr["status"]["observedGeneration"], cr["status"]["currentRevision"]) == (3, rev)



# Issue 15: what the API server refuses at `kubectl apply` now, in the same words as `autoglm render`
# (a CEL rule and its Python twin), instead of being accepted and failing later at apply, in Istio's
# webhook, in KEDA or never recovering.
SAME_WORDS = {
    # fault 6: a wildcard host bound to the mesh, which Istio's validation refuses
    "host * on a gateway": {"traffic": {"hosts": ["*"], "gateways": ["istio-system/public"]}},
    "retryOn Istio refuses": {"traffic": {"retries": {"attempts": 1, "retryOn": "5xx, reset"}}},
    # fault 5: scale to zero on the default load query, which reads only the engine pods
    "scale to zero without a signal at zero pods": {"autoscaling": {"enabled": True, "engine": "keda", "minReplicas": 0,
                                                                   "maxReplicas": 4}},
    # fault 3a: keys the operator fills itself
    "HF_HOME in runtime.env": {"runtime": {"env": [{"name": "HF_HOME", "value": "/models/hf"}]}},
    "HF_HOME in edge env": {"edge": [{"name": "a", "nodeLabels": {"site": "a"}, "env": [{"name": "HF_HOME", "value": "/d"}]}]},
    "volume named cache": {"runtime": {"volumes": [{"name": "cache", "emptyDir": {}}]}},
    "mount over /cache": {"runtime": {"volumes": [{"name": "s", "emptyDir": {}}],
                                      "volumeMounts": [{"name": "s", "mountPath": "/cache/x"}]}},
    "mount of no volume": {"runtime": {"volumeMounts": [{"name": "s", "mountPath": "/data"}]}},
    # fault 12: the pod fields, as the API server validates them in a Deployment
    "value and valueFrom": {"runtime": {"env": [{"name": "A", "value": "x",
                                                 "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}},
    "toleration Exists with a value": {"scheduling": {"tolerations": [{"key": "sku", "operator": "Exists", "value": "gpu"}]}},
    "affinity In without values": {"scheduling": {"nodeAffinity": [{"matchExpressions": [{"key": "zone", "operator": "In"}]}]}},
}


# Routing-provider fields that would be ignored or meaningless (trial findings 4 and 8), refused
# at `kubectl apply` in the same words as `autoglm render` instead of rendering half of them.
_GATEWAY = {"provider": "gateway-api", "parentRefs": [{"name": "public"}]}
_POOL = {"provider": "inference-pool", "parentRefs": [{"name": "public"}]}
SAME_WORDS.update({
    "inference-pool without parentRefs": {"traffic": {"provider": "inference-pool"}},
    "endpointPicker with gateway-api": {"traffic": {**_GATEWAY, "endpointPicker": {"service": "epp"}}},
    "endpointPicker service and image": {"traffic": {**_POOL, "endpointPicker": {"service": "epp",
                                                                                  "image": "registry.example.com/epp:1"}}},
    "HTTPRoute hostname *glm": {"traffic": {**_GATEWAY, "hosts": ["*glm.example.com"]}},
    "HTTPRoute hostname upper case": {"traffic": {**_POOL, "hosts": ["GLM.example.com"]}},
    "HTTPRoute hostname *": {"traffic": {**_GATEWAY, "hosts": ["*"]}},
})


def test_render_lists_every_error_kubectl_apply_lists(testenv: Env, namespace: str, autoglm_crd: None, tmp_path) -> None:
    """Two broken fields: `kubectl apply` names both, and so does `autoglm render` (it stopped at the first)."""
    cr = _cr(namespace, replicas=-1, traffic={"timeoutSeconds": 0})
    result = testenv.kubectl("apply", "-f", "-", input=json.dumps(cr), check=False)
    assert result.returncode != 0
    manifest = tmp_path / "cr.yaml"
    manifest.write_text(yaml.safe_dump(cr))
    render = subprocess.run(components.autoglm_argv(["render", "-f", str(manifest)]),
                            capture_output=True, text=True, check=False)
    assert render.returncode == 2
    for path in ("spec.replicas", "spec.traffic.timeoutSeconds"):
        assert f"{path}: Invalid value" in result.stderr, result.stderr
        assert f"* {path}: must be >= " in render.stderr, render.stderr


@pytest.mark.parametrize("case", list(SAME_WORDS))
def test_issue15_rules_are_refused_by_the_api_server_in_the_same_words_as_render(
        testenv: Env, namespace: str, autoglm_crd: None, case: str, tmp_path) -> None:
    _refused_in_the_same_words(testenv, namespace, _cr(namespace, **SAME_WORDS[case]), tmp_path)


PATTERNS = {
    "gateway without a namespace": ({"traffic": {"gateways": ["public"]}}, "spec.traffic.gateways[0] in body should match"),
    "host Istio refuses": ({"traffic": {"hosts": ["foo.*.com"]}}, "spec.traffic.hosts[0] in body should match"),
    "duplicate host": ({"traffic": {"hosts": ["a.example.com", "a.example.com"]}}, "spec.traffic.hosts[1]: Duplicate value"),
    "Secret name not a DNS name": ({"runtime": {"env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "Hub", "key": "t"}}}]}},
                                   "secretKeyRef.name in body should match"),
}


@pytest.mark.parametrize("case", list(PATTERNS))
def test_issue15_patterns_are_refused_by_the_api_server(testenv: Env, namespace: str, autoglm_crd: None, case: str) -> None:
    spec, message = PATTERNS[case]
    cr = _cr(namespace, **spec)
    with pytest.raises(InvalidSpec):
        parse_instance(cr)
    result = testenv.kubectl("apply", "-f", "-", input=json.dumps(cr), check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_scale_to_zero_with_a_signal_at_zero_pods_is_accepted(testenv: Env, namespace: str, autoglm_crd: None) -> None:
    query = f'sum(rate(istio_requests_total{{destination_service_namespace="{namespace}"}}[1m]))'
    apply(testenv, _cr(namespace, autoscaling={"enabled": True, "minReplicas": 0, "target": {"query": query}}))
    assert testenv.kubectl_json("get", "agd", "glm", "-n", namespace)["spec"]["autoscaling"]["minReplicas"] == 0
