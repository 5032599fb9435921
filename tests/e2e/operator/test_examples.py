"""The examples, reconciled by the real operator: every object is accepted by the API server's real
schemas (strict field validation), GPU pods land on GPU nodes and run, and Ready is reported the way
`kubectl wait` and `kubectl get` expect."""
from __future__ import annotations

import json

import pytest

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.revision import revision
from autoglm_operator.api.spec import parse_instance
from autoglm_operator.render.desired import desired_objects, render, validate
from autoglm_operator.render.routing import Route
from autoglm_testenv import Env

from operator_support import EXAMPLES, apply, children, condition, example, resource, wait_for, wait_for_condition

pytestmark = pytest.mark.e2e

EVERYTHING = Capabilities(keda=True, istio=True)  # what the test environment serves


def test_autoscaled_example_becomes_ready(testenv: Env, namespace: str, operator, model_cache: str) -> None:
    cr = example("02-keda-autoscaled.yaml", namespace)
    cr["spec"]["autoscaling"]["prometheusAddress"] = testenv.prometheus_url  # as its comment says to do locally
    name = cr["metadata"]["name"]
    rev = revision(parse_instance(cr).spec)
    apply(testenv, cr)

    testenv.kubectl("wait", "--for=condition=Ready", f"autoglmdeployment/{name}", "-n", namespace, "--timeout=60s")

    found = children(testenv, namespace, name)
    assert sorted(found) == sorted((o["kind"], o["metadata"]["name"]) for o in desired_objects(cr, EVERYTHING))
    assert {"Deployment", "Service", "PodDisruptionBudget", "ScaledObject", "VirtualService", "DestinationRule",
            "PeerAuthentication", "AuthorizationPolicy"} == {kind for kind, _ in found}
    for obj in found.values():
        (owner,) = obj["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("AutoGLMDeployment", name, True)

    pods = testenv.kubectl_json("get", "pods", "-n", namespace, "-l", f"autoglm.io/instance={name}")["items"]
    assert pods, "the Deployment made no pod"
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        node = testenv.kubectl_json("get", "node", pod["spec"]["nodeName"])
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"

    cr = resource(testenv, namespace, name)
    status = cr["status"]
    assert status["observedGeneration"] == cr["metadata"]["generation"]
    assert isinstance(status["observedGeneration"], int)
    assert (status["currentRevision"], status["replicas"], status["readyReplicas"]) == (rev, 1, 1)
    assert status["selector"] == f"autoglm.io/instance={name},autoglm.io/revision={rev}"
    assert status["coldStartSeconds"][rev] >= 0
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Ready": "True", "Progressing": "False",
                                                                      "Degraded": "False"}

    table = testenv.kubectl("get", "agd", name, "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "READY", "REPLICAS", "REVISION", "CANARY", "PREDICTED", "AGE"]
    assert table[1].split()[:5] == [name, "Ready", "1", "1", rev]


def test_every_other_example_is_accepted_by_the_real_schemas(testenv: Env, namespace: str, operator) -> None:
    """01 runs; 03 asks for A100 GPUs this cluster lacks and says so; 04 adds JWT security objects."""
    crs = [example(f, namespace) for f in ("01-minimal.yaml", "03-sglang-tp2.yaml", "04-secured-jwt.yaml")]
    for cr in crs:
        apply(testenv, cr)
    for cr in crs:
        name = cr["metadata"]["name"]
        wanted = sorted((o["kind"], o["metadata"]["name"]) for o in desired_objects(cr, EVERYTHING))
        wait_for(f"every object of {name}", lambda: sorted(children(testenv, namespace, name)) == wanted, 30)

    wait_for_condition(testenv, namespace, "glm-chat", "Ready", "True")
    wait_for_condition(testenv, namespace, "glm-secured", "Ready", "True")
    stuck = wait_for_condition(testenv, namespace, "glm-sglang", "Ready", "False", "Unschedulable")
    assert "nodes are available" in condition(stuck, "Ready")["message"]


ALL_ROUTING = Capabilities(keda=True, istio=True, gateway_api=True, inference_pool=True, mirror_percent=True)


@pytest.mark.parametrize("provider", ["istio", "gateway-api", "inference-pool"])
def test_every_example_renders_objects_the_real_crds_accept_on_every_provider(testenv: Env, namespace: str, autoglm_crd,
                                                                              provider: str) -> None:
    """Each example with its traffic moved to `provider` (Istio-only fields dropped elsewhere), rendered
    stable-only, mid-mirror and mid-weight (with testers), is accepted by a server-side dry run against
    the real Istio, Gateway API and InferencePool CRDs with strict field validation."""
    files = sorted(p.name for p in EXAMPLES.glob("*.yaml"))
    assert {"08-gateway-api-canary.yaml", "09-inference-pool-canary.yaml"} <= set(files)
    for name in files:
        cr = example(name, namespace)
        traffic = cr["spec"].setdefault("traffic", {})
        if traffic.get("provider", "istio") != provider:
            traffic["provider"] = provider
            for other in ("gateways", "parentRefs", "retries", "endpointPicker"):
                traffic.pop(other, None)
            if provider != "istio":
                traffic["parentRefs"] = [{"name": "public", "namespace": "infra"}]
        inst = validate(cr, ALL_ROUTING)
        routes = [Route(stable="aaaaaaaaaa", canary="bbbbbbbbbb", mirror=20, testers=True),
                  Route(stable="aaaaaaaaaa", canary="bbbbbbbbbb", weight=25, testers=True)] if inst.spec.rollout else []
        for route in [None, *routes]:
            objects = [cr, *render(inst, ALL_ROUTING, "aaaaaaaaaa", route=route)]
            testenv.kubectl("apply", "--dry-run=server", "--server-side", "--field-manager=examples-test",
                            "--validate=strict", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objects))
