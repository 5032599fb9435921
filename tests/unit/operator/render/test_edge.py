"""Edge placement (spec.edge): spec rules, KubeEdge and fallback rendering, overriders, reconcile steps.

status.edge and the conditions it implies: tests/unit/operator/status/test_edge.py.
"""
from __future__ import annotations

import pytest
import yaml

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.labels import INSTANCE_LABEL
from autoglm_operator.api.schema import InvalidSpec
from autoglm_operator.reconcile import edge_sync
from autoglm_operator.reconcile.diff import fingerprinted
from autoglm_operator.reconcile.kinds import CHILD_KINDS, EDGE_APPLICATION
from autoglm_operator.render.desired import desired_objects
from autoglm_operator.render.edge import (
    EDGE_GROUP_LABEL,
    EDGE_OF_LABEL,
    apply_overriders,
    edge_deployment_template,
    group_overriders,
    render_edge,
    split_image,
)
from autoglm_operator.render.workload import EDGE_NODE_LABEL
from autoglm_operator.status.edge import live_revision

SITE_A = {"name": "site-a", "nodeLabels": {"autoglm.io/edge-group": "site-a"}, "replicas": 2, "quantization": "awq",
          "maxModelLen": 4096, "env": [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}, {"name": "SITE", "value": "a"}],
          "resources": {"cpu": "4", "memory": "16Gi"}}
# A cloud variable site-a replaces (KubeEdge `replace`); SITE is one it adds.
CLOUD_RUNTIME = {"env": [{"name": "VLLM_LOGGING_LEVEL", "value": "INFO"}]}
SITE_B = {"name": "site-b", "nodeLabels": {"autoglm.io/edge-group": "site-b"}, "image": "nvcr.io/nvidia/vllm:25.09-jetson",
          "args": ["--enforce-eager"], "resources": {"gpuCount": 1, "gpuProduct": "NVIDIA-Jetson-AGX-Orin"}}


def _by_kind(objects: list[dict]) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


# --- spec ------------------------------------------------------------------------------------


@pytest.mark.parametrize("edge, message", [
    ([SITE_A, SITE_A], "duplicate name site-a"),
    ([{**SITE_A, "nodeLabels": {}}], "nodeLabels must select"),
    ([{**SITE_A, "resources": {"gpuProduct": "X"}}], "gpuProduct needs"),
    ([{**SITE_A, "args": ["--port", "1"]}], "spec.edge[site-a].args"),
    ([{**SITE_A, "image": "repo/x@sha256:abc"}], "does not match"),
    ([{**SITE_A, "name": "Site_A"}], "does not match"),
])
def test_invalid_edge_groups_are_refused(make_cr, edge, message):
    with pytest.raises(InvalidSpec, match=message.replace("[", r"\[").replace("]", r"\]")):
        desired_objects(make_cr(edge=edge), Capabilities())


def test_crd_declares_edge_spec_and_status(repo):
    crd = yaml.safe_load((repo / "crds" / "autoglm.io_autoglmdeployments.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    edge = schema["spec"]["properties"]["edge"]
    assert edge["x-kubernetes-list-map-keys"] == ["name"]
    assert "nodeLabels" in edge["items"]["required"]
    assert schema["status"]["properties"]["edge"]["items"]["properties"].keys() >= {"desired", "ready", "reason", "message"}


# --- KubeEdge ----------------------------------------------------------------------------------


def test_kubeedge_renders_node_groups_and_one_edge_application(make_cr):
    objects = _by_kind(desired_objects(make_cr(runtime=CLOUD_RUNTIME, edge=[SITE_A, SITE_B]), Capabilities(kubeedge=True)))
    group_a, group_b = objects[("NodeGroup", "ml-glm-site-a")], objects[("NodeGroup", "ml-glm-site-b")]
    assert "namespace" not in group_a["metadata"]
    assert group_a["metadata"]["labels"]["autoglm.io/namespace"] == "ml"
    assert group_a["spec"] == {"matchLabels": {"autoglm.io/edge-group": "site-a", EDGE_NODE_LABEL: ""}}
    assert group_b["spec"]["matchLabels"]["nvidia.com/gpu.product"] == "NVIDIA-Jetson-AGX-Orin"

    app = objects[("EdgeApplication", "glm-edge")]
    deployment, service = app["spec"]["workloadTemplate"]["manifests"]
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    assert INSTANCE_LABEL not in deployment["metadata"]["labels"], "KubeEdge's Deployments are not ours to prune"
    targets = {t["name"]: t["overriders"] for t in app["spec"]["workloadScope"]["targetNodeGroups"]}
    allowed = {"replicas", "imageOverriders", "envOverriders", "commandOverriders", "argsOverriders", "resourcesOverriders"}
    assert all(set(o) <= allowed for o in targets.values())
    a, b = targets["ml-glm-site-a"], targets["ml-glm-site-b"]
    assert a["replicas"] == 2 and b["replicas"] == 1
    assert a["argsOverriders"] == [{"containerName": "engine", "operator": "add",
                                    "value": ["--max-model-len", "4096", "--quantization", "awq"]}]
    assert a["envOverriders"] == [
        {"containerName": "engine", "operator": "replace", "value": [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}]},
        {"containerName": "engine", "operator": "add", "value": [{"name": "SITE", "value": "a"}]},
    ]
    assert b["imageOverriders"] == [
        {"component": "Registry", "operator": "add", "value": "nvcr.io"},
        {"component": "Repository", "operator": "replace", "value": "nvidia/vllm"},
        {"component": "Tag", "operator": "replace", "value": "25.09-jetson"},
    ]
    assert b["resourcesOverriders"][0]["value"]["limits"] == {"nvidia.com/gpu": "1"}
    assert ("Deployment", "glm-edge-site-a") not in objects


def test_edge_pod_shape(make_instance):
    pod = edge_deployment_template(make_instance(edge=[SITE_A]), "r1")["spec"]["template"]
    assert pod["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
    assert INSTANCE_LABEL not in pod["metadata"]["labels"], "the cloud Service and PDB must not select edge pods"
    assert pod["metadata"]["labels"][EDGE_OF_LABEL] == "glm"
    spec = pod["spec"]
    assert "nodeSelector" not in spec
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": EDGE_NODE_LABEL, "operator": "Exists"}]}]
    offline = [t for t in spec["tolerations"] if t.get("effect") == "NoExecute"]
    assert {t["key"] for t in offline} == {"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"}
    assert all("tolerationSeconds" not in t for t in offline)


def test_cloud_pods_stay_off_edge_nodes(make_cr):
    objects = _by_kind(desired_objects(make_cr(edge=[SITE_A]), Capabilities()))
    cloud = next(o for (kind, name), o in objects.items() if kind == "Deployment" and "-edge-" not in name)
    terms = cloud["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert {"key": EDGE_NODE_LABEL, "operator": "DoesNotExist"} in terms["nodeSelectorTerms"][0]["matchExpressions"]


# --- fallback ----------------------------------------------------------------------------------


def test_fallback_is_one_pinned_deployment_per_group(make_cr):
    objects = _by_kind(desired_objects(make_cr(edge=[SITE_A, SITE_B]), Capabilities()))
    assert not any(kind in ("NodeGroup", "EdgeApplication") for kind, _ in objects)
    a, b = objects[("Deployment", "glm-edge-site-a")], objects[("Deployment", "glm-edge-site-b")]
    assert a["metadata"]["labels"][INSTANCE_LABEL] == "glm", "pruned like every child"
    assert a["spec"]["replicas"] == 2
    assert a["spec"]["selector"]["matchLabels"] == {EDGE_OF_LABEL: "glm", EDGE_GROUP_LABEL: "site-a"}
    expressions = b["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"]
    assert expressions == [
        {"key": EDGE_NODE_LABEL, "operator": "Exists"},
        {"key": "autoglm.io/edge-group", "operator": "In", "values": ["site-b"]},
        {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-Jetson-AGX-Orin"]},
    ]
    container = b["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nvcr.io/nvidia/vllm:25.09-jetson"
    assert container["args"][-1] == "--enforce-eager"
    assert objects[("Service", "glm-edge")]["spec"]["selector"] == {EDGE_OF_LABEL: "glm"}


def test_fallback_runs_the_pods_kubeedge_would(make_instance):
    inst = make_instance(edge=[SITE_A, SITE_B])
    template = edge_deployment_template(inst, "r1")
    fallback = {o["metadata"]["name"]: o for o in render_edge(inst, "r1", kubeedge=False) if o["kind"] == "Deployment"}
    for group in inst.spec.edge:
        derived = apply_overriders(template, group_overriders(inst, group, template))
        ours = fallback[f"glm-edge-{group.name}"]["spec"]["template"]["spec"]["containers"][0]
        assert ours == derived["spec"]["template"]["spec"]["containers"][0]


def test_apply_overriders_semantics():
    deployment = {"spec": {"replicas": 0, "template": {"spec": {"containers": [
        {"name": "engine", "image": "reg.io/a/b:1", "args": ["x", "y"], "env": [{"name": "A", "value": "1"}]}]}}}}
    result = apply_overriders(deployment, {
        "replicas": 3,
        "imageOverriders": [{"component": "Registry", "operator": "remove"}, {"component": "Tag", "operator": "replace", "value": "2"}],
        "envOverriders": [{"containerName": "engine", "operator": "replace", "value": [{"name": "A", "value": "9"}]},
                          {"containerName": "engine", "operator": "add", "value": [{"name": "B", "value": "2"}]}],
        "argsOverriders": [{"containerName": "engine", "operator": "remove", "value": ["x"]},
                           {"containerName": "engine", "operator": "add", "value": ["z"]}],
        "resourcesOverriders": [{"containerName": "engine", "value": {"limits": {"cpu": "1"}}}],
    })
    container = result["spec"]["template"]["spec"]["containers"][0]
    assert result["spec"]["replicas"] == 3
    assert container["image"] == "a/b:2"
    assert container["env"] == [{"name": "A", "value": "9"}, {"name": "B", "value": "2"}]
    assert container["args"] == ["y", "z"]
    assert container["resources"] == {"limits": {"cpu": "1"}}
    assert deployment["spec"]["replicas"] == 0, "the template is not modified"


@pytest.mark.parametrize("image, parts", [
    ("vllm/vllm-openai:v0.11.0", ("", "vllm/vllm-openai", "v0.11.0")),
    ("nvcr.io/nvidia/vllm:25.09", ("nvcr.io", "nvidia/vllm", "25.09")),
    ("localhost:5000/x", ("localhost:5000", "x", "")),
    ("ubuntu", ("", "ubuntu", "")),
])
def test_split_image(image, parts):
    assert split_image(image) == parts


# --- reconcile steps ---------------------------------------------------------------------------


def test_edge_application_is_a_pruned_child_kind():
    assert EDGE_APPLICATION in CHILD_KINDS


def test_split_strips_owner_from_node_groups_and_holds_edge_objects(make_instance):
    inst = make_instance(edge=[SITE_A])
    owned = [fingerprinted({**o, "metadata": {**o["metadata"], "ownerReferences": [{"uid": "u"}]}})
             for o in render_edge(inst, "r1", kubeedge=True)]
    namespaced, cluster = edge_sync.split(owned, held=False)
    assert [o["kind"] for o in namespaced] == ["EdgeApplication"]
    assert [o["kind"] for o in cluster] == ["NodeGroup"] and "ownerReferences" not in cluster[0]["metadata"]
    assert edge_sync.split(owned, held=True) == ([], [])
    children = {("EdgeApplication", "glm-edge"): namespaced[0]}
    assert edge_sync.held_keys(children, True) == {("EdgeApplication", "glm-edge")}
    assert edge_sync.held_keys(children, False) == set()
    assert live_revision(namespaced) == "r1"


class FakeNodeGroups:
    def __init__(self, live: list[dict]) -> None:
        self.live = {o["metadata"]["name"]: o for o in live}
        self.calls: list[str] = []

    def get_namespace(self, namespace: str) -> dict:
        return {"metadata": {"name": namespace, "uid": "ns-uid"}}

    def list_node_groups(self, selector: str) -> list[dict]:
        assert selector == "app.kubernetes.io/managed-by=autoglm-operator,autoglm.io/instance=glm,autoglm.io/namespace=ml"
        return list(self.live.values())

    def apply_cluster_scoped(self, obj: dict) -> dict:
        self.calls.append(f"apply {obj['metadata']['name']}")
        self.live[obj["metadata"]["name"]] = obj
        return obj

    def delete_node_group(self, obj) -> None:
        self.calls.append(f"delete {obj['metadata']['name']}")
        self.live.pop(obj["metadata"]["name"])


def test_sync_node_groups_applies_changes_and_prunes_removed_groups(make_instance):
    _, wanted = edge_sync.split(render_edge(make_instance(edge=[SITE_A, SITE_B]), "r1", kubeedge=True), held=False)
    cluster = FakeNodeGroups([])
    assert edge_sync.sync_node_groups(cluster, "ml", "glm", wanted, True, False) == [
        "created NodeGroup ml-glm-site-a", "created NodeGroup ml-glm-site-b"]
    assert edge_sync.sync_node_groups(cluster, "ml", "glm", wanted, True, False) == [], "nothing to write twice"
    assert edge_sync.sync_node_groups(cluster, "ml", "glm", wanted[:1], True, True) == [], "held during a rollout"
    assert edge_sync.sync_node_groups(cluster, "ml", "glm", wanted[:1], True, False) == ["deleted NodeGroup ml-glm-site-b"]
    assert edge_sync.delete_node_groups(cluster, "ml", "glm") == 1
    assert cluster.live == {}
