"""KEDA ScaledObject, HPA fallback, or nothing when autoscaling is off."""
from __future__ import annotations

from autoglm_operator.autoscaling import autoscaler

ON = {"enabled": True, "minReplicas": 2, "maxReplicas": 10, "target": {"perReplica": 6}, "scaleDownStabilizationSeconds": 900}


def test_off_renders_nothing(make_instance):
    assert autoscaler(make_instance(), "r", keda=True) is None


def test_keda_scaled_object(make_instance):
    so = autoscaler(make_instance(autoscaling=ON), "r", keda=True)
    assert (so["apiVersion"], so["kind"]) == ("keda.sh/v1alpha1", "ScaledObject")
    spec = so["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "glm-r"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 10)
    assert spec["pollingInterval"] == 15 and spec["cooldownPeriod"] == 300
    assert spec["fallback"] == {"failureThreshold": 3, "replicas": 2, "behavior": "currentReplicasIfHigher"}
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 900
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["threshold"] == "6"
    assert trigger["metadata"]["serverAddress"].startswith("http://")
    assert 'vllm:num_requests_running{namespace="ml",pod=~"glm-r-' in trigger["metadata"]["query"]
    assert "vllm:num_requests_waiting" in trigger["metadata"]["query"]


def test_custom_query_and_fractional_threshold(make_instance):
    so = autoscaler(make_instance(autoscaling={**ON, "target": {"query": "sum(load)", "perReplica": 2.5}}), "r", keda=True)
    assert so["spec"]["triggers"][0]["metadata"]["query"] == "sum(load)"
    assert so["spec"]["triggers"][0]["metadata"]["threshold"] == "2.5"


def test_hpa_when_keda_is_absent(make_instance):
    hpa = autoscaler(make_instance(autoscaling={**ON, "target": {"perReplica": 0.5}}), "r", keda=False)
    assert (hpa["apiVersion"], hpa["kind"]) == ("autoscaling/v2", "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["pods"]["metric"]["name"] == "vllm:num_requests_running"
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "500m"}
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 900


def test_hpa_when_asked(make_instance):
    hpa = autoscaler(make_instance(autoscaling={**ON, "engine": "hpa"}), "r", keda=True)
    assert hpa["kind"] == "HorizontalPodAutoscaler"
    assert hpa["spec"]["metrics"][0]["pods"]["target"]["averageValue"] == "6"


def test_engine_metric_names(make_instance):
    so = autoscaler(make_instance(autoscaling=ON, runtime={"engine": "sglang"}), "r", keda=True)
    assert "sglang:num_queue_reqs" in so["spec"]["triggers"][0]["metadata"]["query"]
