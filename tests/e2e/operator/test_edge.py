"""Edge placement against the real API server, the real KubeEdge CRDs and the kwok edge nodes."""
from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable, Iterator

import pytest
from operator_support import apply, condition, example, resource, wait_for, wait_for_condition

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.labels import bounded_name
from autoglm_operator.render.desired import desired_objects
from autoglm_operator.render.edge import NODE_GROUP_LABEL
from autoglm_testenv import Env, components, config

pytestmark = pytest.mark.e2e

KUBEEDGE_CRDS = ("nodegroups.apps.kubeedge.io", "edgeapplications.apps.kubeedge.io")
SITE_A = {"name": "site-a", "nodeLabels": {"autoglm.io/edge-group": "site-a"}, "quantization": "awq", "maxModelLen": 4096,
          "env": [{"name": "SITE", "value": "a"}], "resources": {"cpu": "1", "memory": "2Gi"}}
SITE_B = {"name": "site-b", "nodeLabels": {"autoglm.io/edge-group": "site-b"}, "image": "nvcr.io/nvidia/vllm:25.09-jetson",
          "resources": {"gpuCount": 1, "gpuProduct": "NVIDIA-Jetson-AGX-Orin"}}


def _cr(namespace: str, *groups: dict) -> dict:
    cr = example("01-minimal.yaml", namespace)
    cr["spec"]["edge"] = list(groups)
    return cr


def _node_groups(testenv: Env, namespace: str) -> dict[str, dict]:
    items = testenv.kubectl_json("get", "nodegroups.apps.kubeedge.io", "-l", f"autoglm.io/namespace={namespace}")["items"]
    return {item["metadata"]["name"]: item for item in items}


def _edge_status(testenv: Env, namespace: str, name: str) -> dict[str, dict]:
    return {s["name"]: s for s in resource(testenv, namespace, name).get("status", {}).get("edge") or []}


@pytest.fixture
def without_kubeedge(testenv: Env) -> Iterator[Callable[[], None]]:
    """Removes the KubeEdge CRDs; `restore()` (also run at teardown, even on failure) re-installs them from the cache."""
    files = sorted(config.binaries().crds.glob("kubeedge-*.yaml"))
    assert len(files) == 2, files
    testenv.kubectl("delete", "crd", *KUBEEDGE_CRDS, "--wait=true", "--timeout=60s")
    restored = False

    def restore() -> None:
        nonlocal restored
        if restored:
            return
        args = [x for f in files for x in ("-f", str(f))]
        testenv.kubectl("apply", "--server-side", "--force-conflicts", *args)
        # `kubectl wait` fails outright on a CRD whose status has no conditions yet: poll instead.
        wait_for("KubeEdge CRDs Established", lambda: all(
            any(c["type"] == "Established" and c["status"] == "True"
                for c in testenv.kubectl_json("get", "crd", crd).get("status", {}).get("conditions") or [])
            for crd in KUBEEDGE_CRDS), 60)
        restored = True

    try:
        yield restore
    finally:
        restore()


def test_kubeedge_node_groups_and_edge_application(testenv: Env, namespace: str, operator) -> None:
    no_site = {"name": "site-c", "nodeLabels": {"autoglm.io/edge-group": "site-c"}}
    big_gpu = {"name": "site-h100", "nodeLabels": {"autoglm.io/edge-group": "site-b"},
               "resources": {"gpuCount": 1, "gpuProduct": "NVIDIA-H100-80GB-HBM3"}}
    apply(testenv, _cr(namespace, SITE_A, SITE_B, no_site, big_gpu))

    # The unplaceable groups degrade the resource with a clear reason; no group has a Ready pod (nothing
    # runs KubeEdge's EdgeApplications here), so the model is not Ready where the spec wants it.
    def degraded() -> dict | None:
        cr = resource(testenv, namespace, "glm-chat")
        ok = condition(cr, "Ready").get("reason") == "EdgeNotReady" and condition(cr, "Degraded").get("status") == "True"
        return cr if ok and len(cr["status"].get("edge") or []) == 4 else None

    cr = wait_for("not Ready and Degraded with four edge groups", degraded, 120)
    assert condition(cr, "Degraded")["reason"] == "EdgePlacementFailed"
    assert "edge group site-c: 0/1 pods Ready (NoMatchingEdgeNodes)" in condition(cr, "Ready")["message"]
    edge = {s["name"]: s for s in cr["status"]["edge"]}
    assert edge["site-c"]["reason"] == "NoMatchingEdgeNodes"
    assert edge["site-h100"]["reason"] == "NoEdgeGpu" and "NVIDIA-H100-80GB-HBM3" in edge["site-h100"]["message"]
    assert "reason" not in edge["site-a"] and "reason" not in edge["site-b"]
    assert edge["site-a"]["desired"] == 1

    groups = _node_groups(testenv, namespace)
    def ng(group: str) -> str:
        """The NodeGroup's name: `<ns>-<name>-<group>`, with a hash suffix past 63 characters (test namespaces are long)."""
        return bounded_name(namespace, "glm-chat", group)

    assert set(groups) == {ng(g) for g in ("site-a", "site-b", "site-c", "site-h100")}
    assert groups[ng("site-b")]["spec"]["matchLabels"]["nvidia.com/gpu.product"] == "NVIDIA-Jetson-AGX-Orin"
    app = testenv.kubectl_json("get", "edgeapplications.apps.kubeedge.io", "glm-chat-edge", "-n", namespace)
    targets = {t["name"]: t["overriders"] for t in app["spec"]["workloadScope"]["targetNodeGroups"]}
    assert targets[ng("site-a")]["argsOverriders"][0]["value"] == ["--max-model-len", "4096", "--quantization", "awq"]
    assert targets[ng("site-b")]["resourcesOverriders"][0]["value"]["limits"] == {"nvidia.com/gpu": "1"}
    assert {o["component"] for o in targets[ng("site-b")]["imageOverriders"]} == {"Registry", "Repository", "Tag"}

    # Removing groups removes exactly their NodeGroups and targets; Degraded clears.
    apply(testenv, _cr(namespace, SITE_A, SITE_B))
    wait_for("NodeGroups of removed groups gone",
             lambda: set(_node_groups(testenv, namespace)) == {ng("site-a"), ng("site-b")}, 60)
    cr = wait_for_condition(testenv, namespace, "glm-chat", "Degraded", "False", timeout=60)
    assert (condition(cr, "Ready")["reason"], condition(cr, "Progressing")["reason"]) == ("EdgeNotReady", "EdgePodsStarting")
    app = testenv.kubectl_json("get", "edgeapplications.apps.kubeedge.io", "glm-chat-edge", "-n", namespace)
    assert [t["name"] for t in app["spec"]["workloadScope"]["targetNodeGroups"]] == [ng("site-a"), ng("site-b")]

    # Deleting the resource removes everything, including the cluster-scoped NodeGroups.
    testenv.kubectl("delete", "autoglmdeployment", "glm-chat", "-n", namespace, "--timeout=60s")
    wait_for("NodeGroups deleted with the resource", lambda: not _node_groups(testenv, namespace), 30)


def test_the_edge_example_is_not_ready_while_its_sites_serve_nothing(testenv: Env, namespace: str, operator) -> None:
    """06-edge was Ready while every edge site was 0/1: here KubeEdge's APIs are served but nothing runs
    its EdgeApplications, so no site gets a pod. Ready is False and names the sites (the fallback test
    below shows Ready once the sites' pods run)."""
    cr = example("06-edge.yaml", namespace)
    apply(testenv, cr)
    stuck = wait_for_condition(testenv, namespace, "glm-edge", "Ready", "False", "EdgeNotReady", timeout=90)
    message = condition(stuck, "Ready")["message"]
    assert message.startswith("edge group site-a: 0/1 pods Ready; edge group site-b: 0/1 pods Ready; revision "), message
    assert condition(stuck, "Progressing")["reason"] == "EdgePodsStarting"
    assert stuck["status"]["readyReplicas"] == 1, "the cloud part serves"


@pytest.mark.exclusive  # deletes the KubeEdge CRDs every test shares
def test_fallback_without_kubeedge_pins_deployments_to_edge_nodes(
    testenv: Env, namespace: str, without_kubeedge: Callable[[], None], operator
) -> None:
    apply(testenv, _cr(namespace, SITE_A, SITE_B))
    wait_for("fallback Deployments", lambda: testenv.kubectl(
        "get", "deployment", "glm-chat-edge-site-a", "glm-chat-edge-site-b", "-n", namespace, check=False).returncode == 0, 60)
    without_kubeedge()  # short window: other tests may need the CRDs; the operator's discovery is cached for 60 s

    def running() -> dict[str, str] | None:
        pods = testenv.kubectl_json("get", "pods", "-n", namespace, "-l", "autoglm.io/edge-of=glm-chat")["items"]
        placed = {p["metadata"]["labels"]["autoglm.io/edge-placement"]: p["spec"].get("nodeName", "")
                  for p in pods if p.get("status", {}).get("phase") == "Running"}
        return placed if len(placed) == 2 else None

    assert wait_for("edge pods Running", running, 45) == {"site-a": "edge-node-a", "site-b": "edge-node-b"}
    cr = wait_for_condition(testenv, namespace, "glm-chat", "Ready", "True", timeout=60)
    assert condition(cr, "Degraded")["status"] == "False"
    assert {s["name"]: s["ready"] for s in cr["status"]["edge"]} == {"site-a": 1, "site-b": 1}

    cloud = testenv.kubectl_json("get", "pods", "-n", namespace, "-l", "autoglm.io/instance=glm-chat")["items"]
    assert cloud and all(p["spec"]["nodeName"] not in ("edge-node-a", "edge-node-b") for p in cloud)
    pod = next(p for p in testenv.kubectl_json("get", "pods", "-n", namespace, "-l", "autoglm.io/edge-of=glm-chat")["items"])
    assert pod["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"


def test_render_shows_edge_objects(tmp_path) -> None:
    import yaml

    path = tmp_path / "cr.yaml"
    path.write_text(yaml.safe_dump(_cr("demo", SITE_A, SITE_B)))
    out = subprocess.run(components.autoglm_argv(["render", "-f", str(path), "--capabilities", "kubeedge"]),
                         capture_output=True, text=True, check=True).stdout
    kinds = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out)]
    assert ("NodeGroup", "demo-glm-chat-site-a") in kinds and ("EdgeApplication", "glm-chat-edge") in kinds


def _dry_run(testenv: Env, obj: dict) -> subprocess.CompletedProcess:
    return testenv.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False)


def test_long_names_fit_where_kubeedge_puts_them(testenv: Env, namespace: str, autoglm_crd: None) -> None:
    """Issue 15, fault 7: `<ns>-<name>-<group>` was 66 characters for this input, and KubeEdge writes the
    NodeGroup's name into a node label and the pods' nodeSelector, which the API server refuses. The
    server judges the rendered NodeGroup and EdgeApplication and both uses of the name; the old name
    is refused by the same checks (so they can fail)."""
    cr = _cr(namespace, {"name": "factory-shanghai-01", "nodeLabels": {"autoglm.io/edge-group": "factory-shanghai-01"}})
    cr["metadata"]["name"] = "autoglm-phone-9b-awq-edge"
    issue = copy.deepcopy(cr)
    issue["metadata"]["namespace"] = "inference-production"  # the issue's namespace (the NodeGroup is cluster-scoped)
    group = next(o for o in desired_objects(issue, Capabilities(kubeedge=True)) if o["kind"] == "NodeGroup")
    old = "inference-production-autoglm-phone-9b-awq-edge-factory-shanghai-01"
    assert len(old) == 66 and len(group["metadata"]["name"]) <= 63

    def uses(name: str) -> list[dict]:
        """What KubeEdge does with a NodeGroup name: a node label, and the pods' nodeSelector."""
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"dry-{namespace}"[:63], "labels": {NODE_GROUP_LABEL: name}}}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dry", "namespace": namespace},
               "spec": {"nodeSelector": {NODE_GROUP_LABEL: name}, "containers": [{"name": "c", "image": "x"}]}}
        return [node, pod]

    for obj in [group, *uses(group["metadata"]["name"])]:
        result = _dry_run(testenv, obj)
        assert result.returncode == 0, (obj["kind"], result.stderr)
    for obj in uses(old):
        result = _dry_run(testenv, obj)
        assert result.returncode != 0 and "must be no more than 63 characters" in result.stderr, (obj["kind"], result.stderr)
    for obj in desired_objects(cr, Capabilities(kubeedge=True)):  # every object in the test's namespace, as rendered
        result = _dry_run(testenv, obj)
        assert result.returncode == 0, (obj["kind"], result.stderr)
