"""KEDA ScaledObject, HPA fallback, or nothing when autoscaling is off."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from autoglm_operator.api.forecast import STALENESS_WINDOW_SECONDS
from autoglm_operator.api.queries import default_load_query
from autoglm_operator.api.schema import InvalidSpec
from autoglm_operator.api.timestamps import format_time
from autoglm_operator.render.autoscaling import autoscaler, autoscaling_status, min_replicas

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
    # The predictor forecasts the same query, so threshold and floor share one unit.
    assert trigger["metadata"]["query"] == default_load_query("ml", "glm", "vllm")
    assert 'vllm:num_requests_running{namespace="ml",autoglm_deployment="glm"}' in trigger["metadata"]["query"]


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


# ---------------------------------------------------------------------------------------------
# Predictive floor: status.forecast raises the minimum while fresh; one writer (the operator).

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
PREDICTIVE = {**ON, "predictive": {"enabled": True}}


def forecast(floor: int, age_seconds: float = 10, **extra) -> dict:
    return {"horizonSeconds": 360, "predicted": 40.0, "recommendedMinReplicas": floor,
            "updatedAt": format_time(NOW - timedelta(seconds=age_seconds)), **extra}


def so_min(make_instance, autoscaling, status_forecast, now=NOW, keda=True) -> int:
    obj = autoscaler(make_instance(autoscaling=autoscaling), "r", keda=keda, forecast=status_forecast, now=now)
    return obj["spec"]["minReplicaCount" if keda else "minReplicas"]


def test_fresh_forecast_raises_the_keda_minimum_and_the_fallback(make_instance):
    so = autoscaler(make_instance(autoscaling=PREDICTIVE), "r", keda=True, forecast=forecast(7), now=NOW)
    assert so["spec"]["minReplicaCount"] == 7
    assert so["spec"]["fallback"]["replicas"] == 7, "Prometheus down: never fall below the forecast floor"
    assert so["spec"]["maxReplicaCount"] == 10


def test_fresh_forecast_raises_the_hpa_minimum(make_instance):
    assert so_min(make_instance, PREDICTIVE, forecast(6), keda=False) == 6


@pytest.mark.parametrize("floor, expected", [(0, 2), (1, 2), (2, 2), (5, 5), (10, 10), (50, 10)])
def test_floor_is_clamped_to_min_and_max(make_instance, floor, expected):
    assert so_min(make_instance, PREDICTIVE, forecast(floor)) == expected


def test_max_floor_caps_the_forecast(make_instance):
    capped = {**ON, "predictive": {"enabled": True, "maxFloor": 4}}
    assert so_min(make_instance, capped, forecast(9)) == 4
    assert so_min(make_instance, capped, forecast(3)) == 3
    low_cap = {**ON, "predictive": {"enabled": True, "maxFloor": 1}}
    assert so_min(make_instance, low_cap, forecast(9)) == 2, "never below minReplicas"


def test_kill_switch_and_absent_settings_are_purely_reactive(make_instance):
    off = {**ON, "predictive": {"enabled": False}}
    assert so_min(make_instance, off, forecast(9)) == 2
    assert so_min(make_instance, ON, forecast(9)) == 2
    assert autoscaler(make_instance(autoscaling=PREDICTIVE), "r", keda=True, forecast=forecast(9))["spec"][
        "minReplicaCount"] == 2, "no clock given: reactive"


def test_stale_forecast_decays_to_the_reactive_minimum(make_instance):
    window = STALENESS_WINDOW_SECONDS
    assert so_min(make_instance, PREDICTIVE, forecast(7, age_seconds=window)) == 7
    assert so_min(make_instance, PREDICTIVE, forecast(7, age_seconds=window + 1)) == 2
    assert so_min(make_instance, PREDICTIVE, forecast(7, age_seconds=-(window + 60))) == 2, "far-future timestamp"


@pytest.mark.parametrize("bad", [
    None, {}, {"recommendedMinReplicas": 7}, {"updatedAt": "yesterday", "recommendedMinReplicas": 7},
    {"updatedAt": format_time(NOW), "recommendedMinReplicas": "7"},
    {"updatedAt": format_time(NOW), "recommendedMinReplicas": -3},
    {"updatedAt": format_time(NOW), "recommendedMinReplicas": True},
    {"updatedAt": format_time(NOW), "recommendedMinReplicas": float("nan")},
    {"updatedAt": format_time(NOW)},
])
def test_unreadable_forecast_is_ignored(make_instance, bad):
    assert so_min(make_instance, PREDICTIVE, bad) == 2


def test_status_shows_the_minimum_in_effect_and_only_a_forecast_in_use(make_instance):
    """What the Predicted printer column reads: a stale forecast's number must not stay on screen."""
    inst = make_instance(autoscaling=PREDICTIVE)
    assert autoscaling_status(inst, forecast(7), NOW) == {"minReplicas": 7, "forecast": "Used", "predicted": 40.0}
    assert autoscaling_status(inst, forecast(1), NOW) == {"minReplicas": 2, "forecast": "Used", "predicted": 40.0}
    stale = forecast(7, age_seconds=STALENESS_WINDOW_SECONDS + 1)
    assert autoscaling_status(inst, stale, NOW) == {"minReplicas": 2, "forecast": "Stale"}
    assert autoscaling_status(inst, {"updatedAt": "yesterday"}, NOW) == {"minReplicas": 2, "forecast": "Stale"}
    assert autoscaling_status(inst, None, NOW) == {"minReplicas": 2, "forecast": "Missing"}
    assert autoscaling_status(inst, forecast(7, predicted="high"), NOW) == {"minReplicas": 7, "forecast": "Used"}
    assert autoscaling_status(make_instance(autoscaling=ON), forecast(7), NOW) == {"minReplicas": 2, "forecast": "Disabled"}
    assert autoscaling_status(make_instance(), forecast(7), NOW) is None


def test_min_replicas_is_pure(make_instance):
    inst = make_instance(autoscaling=PREDICTIVE)
    status = forecast(5)
    assert min_replicas(inst, status, NOW) == min_replicas(inst, status, NOW) == 5
    assert min_replicas(inst, status, NOW + timedelta(seconds=STALENESS_WINDOW_SECONDS)) == 2


def test_predictive_spec_defaults_and_rules(make_instance):
    spec = make_instance(autoscaling=ON).spec.autoscaling.predictive
    assert (spec.enabled, spec.quantile, spec.horizon_seconds, spec.max_floor) == (False, 0.95, None, None)
    full = make_instance(autoscaling={**ON, "predictive": {"enabled": True, "quantile": 0.9, "horizonSeconds": None,
                                                           "maxFloor": 10}}).spec.autoscaling.predictive
    assert (full.quantile, full.horizon_seconds, full.max_floor) == (0.9, None, 10)
    with pytest.raises(InvalidSpec, match="maxFloor must be <= autoscaling.maxReplicas"):
        make_instance(autoscaling={**ON, "predictive": {"enabled": True, "maxFloor": 11}})
    for quantile in (0.4, 1.0):
        with pytest.raises(InvalidSpec, match="quantile"):
            make_instance(autoscaling={**ON, "predictive": {"quantile": quantile}})


def test_predictive_crd_schema(repo):
    import yaml

    crd = yaml.safe_load((repo / "crds" / "autoglm.io_autoglmdeployments.yaml").read_text())
    autoscaling = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["autoscaling"]
    predictive = autoscaling["properties"]["predictive"]
    assert set(predictive["properties"]) == {"enabled", "quantile", "horizonSeconds", "maxFloor"}
    assert (predictive["properties"]["quantile"]["minimum"], predictive["properties"]["quantile"]["maximum"]) == (0.5, 0.99)
    assert any("maxFloor <= self.maxReplicas" in r["rule"] for r in autoscaling["x-kubernetes-validations"])
