"""status.edge from observed nodes and pods, and the Ready/Progressing/Degraded it implies."""
from __future__ import annotations

from datetime import datetime, timezone

from autoglm_operator.render.edge import EDGE_GROUP_LABEL, EDGE_OF_LABEL
from autoglm_operator.render.workload import EDGE_NODE_LABEL
from autoglm_operator.status.conditions import Observation, compute_status
from autoglm_operator.status.edge import edge_problem, edge_status

SITE_A = {"name": "site-a", "nodeLabels": {"autoglm.io/edge-group": "site-a"}, "replicas": 2, "quantization": "awq",
          "maxModelLen": 4096, "env": [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}, {"name": "SITE", "value": "a"}],
          "resources": {"cpu": "4", "memory": "16Gi"}}
SITE_B = {"name": "site-b", "nodeLabels": {"autoglm.io/edge-group": "site-b"}, "image": "nvcr.io/nvidia/vllm:25.09-jetson",
          "args": ["--enforce-eager"], "resources": {"gpuCount": 1, "gpuProduct": "NVIDIA-Jetson-AGX-Orin"}}
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _node(name: str, labels: dict, gpus: int = 0) -> dict:
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": {"nvidia.com/gpu": str(gpus)}}}


NODES = [
    _node("edge-node-a", {EDGE_NODE_LABEL: "", "autoglm.io/edge-group": "site-a"}),
    _node("edge-node-b", {EDGE_NODE_LABEL: "", "autoglm.io/edge-group": "site-b",
                          "nvidia.com/gpu.product": "NVIDIA-Jetson-AGX-Orin"}, gpus=1),
    _node("gpu-node-0", {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, gpus=8),
]


def _pod(name: str, group: str | None, node: str | None = None, ready: bool = False, unschedulable: str = "") -> dict:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if unschedulable:
        conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": unschedulable})
    labels = {EDGE_OF_LABEL: "glm", **({EDGE_GROUP_LABEL: group} if group else {})}
    return {"metadata": {"name": name, "labels": labels}, "spec": {"nodeName": node} if node else {},
            "status": {"conditions": conditions}}


def test_edge_status_counts_pods_and_names_placement_problems(make_instance):
    groups = [SITE_A, SITE_B,
              {"name": "site-c", "nodeLabels": {"autoglm.io/edge-group": "site-c"}},
              {"name": "big", "nodeLabels": {"autoglm.io/edge-group": "site-b"}, "resources": {"gpuCount": 2}},
              {"name": "h100", "nodeLabels": {"autoglm.io/edge-group": "site-a"},
               "resources": {"gpuCount": 1, "gpuProduct": "NVIDIA-H100-80GB-HBM3"}}]
    pods = [_pod("a-1", "site-a", "edge-node-a", ready=True), _pod("a-2", "site-a", unschedulable="Insufficient cpu"),
            _pod("kubeedge-b", None, "edge-node-b", ready=True)]
    status = {s["name"]: s for s in edge_status(make_instance(edge=groups), "r1", NODES, pods)}
    assert status["site-a"] == {"name": "site-a", "desired": 2, "ready": 1, "revision": "r1", "reason": "Unschedulable",
                                "message": "pod a-2 cannot be scheduled: Insufficient cpu"}
    assert status["site-b"] == {"name": "site-b", "desired": 1, "ready": 1, "revision": "r1"}
    assert status["site-c"]["reason"] == "NoMatchingEdgeNodes"
    assert "autoglm.io/edge-group=site-c" in status["site-c"]["message"]
    assert status["big"]["reason"] == "NoEdgeGpu" and "2 nvidia.com/gpu" in status["big"]["message"]
    assert status["h100"]["reason"] == "NoEdgeGpu" and "NVIDIA-H100-80GB-HBM3" in status["h100"]["message"]


def test_unreadable_nodes_fall_back_to_pod_scheduling(make_instance):
    status = edge_status(make_instance(edge=[SITE_A]), "r1", None, [_pod("a-1", "site-a")])
    assert status == [{"name": "site-a", "desired": 2, "ready": 0, "revision": "r1"}]


def test_edge_problem_summary():
    assert edge_problem([{"name": "a"}]) is None
    assert edge_problem([{"name": "a", "reason": "NoEdgeGpu", "message": "m"}]) == ("NoEdgeGpu", "edge group a: m")
    mixed = [{"name": "a", "reason": "NoEdgeGpu", "message": "m"}, {"name": "b", "reason": "Unschedulable", "message": "n"}]
    assert edge_problem(mixed) == ("EdgePlacementFailed", "edge group a: m; edge group b: n")


def _observation(edge: list[dict]) -> Observation:
    serving = {"metadata": {"name": "glm-r1", "generation": 1}, "spec": {"replicas": 1},
               "status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1, "observedGeneration": 1}}
    return Observation(generation=1, desired="r1", serving="r1", selector="s", deployments={"r1": serving}, pods=[], edge=edge)


def _conditions(status: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_unplaceable_edge_group_degrades_and_is_not_ready():
    """06-edge with no edge node for a site: the cloud serves, the site does not, and Ready says so."""
    edge = [{"name": "site-c", "desired": 1, "ready": 0, "reason": "NoMatchingEdgeNodes", "message": "no edge node"}]
    status = compute_status({}, _observation(edge), NOW)
    assert _conditions(status) == {"Ready": ("False", "EdgeNotReady"), "Progressing": ("False", "NoMatchingEdgeNodes"),
                                   "Degraded": ("True", "NoMatchingEdgeNodes")}
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["message"] == "edge group site-c: 0/1 pods Ready (NoMatchingEdgeNodes); revision r1: 1/1 pods Ready"
    assert next(c for c in status["conditions"] if c["type"] == "Degraded")["message"] == "edge group site-c: no edge node"
    assert status["phase"] == "Degraded"
    assert status["edge"] == edge


def test_ready_waits_for_a_ready_pod_in_every_edge_group():
    starting = [{"name": "site-a", "desired": 1, "ready": 0}, {"name": "site-b", "desired": 2, "ready": 1}]
    status = compute_status({}, _observation(starting), NOW)
    assert _conditions(status) == {"Ready": ("False", "EdgeNotReady"), "Progressing": ("True", "EdgePodsStarting"),
                                   "Degraded": ("False", "AsExpected")}
    assert status["phase"] == "Progressing"
    # Every group serves (one Ready pod each, as for the cloud revision); more are starting.
    serving = [{"name": "site-a", "desired": 1, "ready": 1}, {"name": "site-b", "desired": 2, "ready": 1},
               {"name": "site-off", "desired": 0, "ready": 0}]
    status = compute_status({}, _observation(serving), NOW)
    assert _conditions(status) == {"Ready": ("True", "Serving"), "Progressing": ("True", "EdgePodsStarting"),
                                   "Degraded": ("False", "AsExpected")}
    complete = [{"name": "site-a", "desired": 1, "ready": 1}, {"name": "site-b", "desired": 2, "ready": 2}]
    assert _conditions(compute_status({}, _observation(complete), NOW))["Progressing"] == ("False", "Complete")


def test_no_edge_groups_leaves_status_edge_unset():
    status = compute_status({}, _observation([]), NOW)
    assert status["edge"] is None
    assert {c["type"]: c["status"] for c in status["conditions"]}["Degraded"] == "False"
