"""What the rendered autoscaler's own status says: a ScaledObject or HPA that cannot scale."""
from __future__ import annotations

from autoglm_operator.status.readiness import autoscaler_problem


def _scaler(kind: str, *conditions: tuple[str, str, str, str]) -> dict:
    return {"kind": kind, "metadata": {"name": "glm-chat"},
            "status": {"conditions": [{"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in conditions]}}


def test_a_scaled_object_keda_cannot_scale_is_a_problem_named_with_keda_s_words():
    # The shape KEDA writes when its Prometheus trigger cannot reach the server (the example 02 case locally).
    failing = _scaler("ScaledObject", ("Ready", "False", "ScaledObjectCheckFailed", "Failed to ensure HPA is correctly created"),
                      ("Active", "False", "ScalerNotActive", ""), ("Fallback", "False", "NoFallbackFound", ""))
    assert autoscaler_problem([failing]) == (
        "AutoscalerFailed", "ScaledObject glm-chat not Ready (ScaledObjectCheckFailed): Failed to ensure HPA is correctly created")
    fallback = _scaler("ScaledObject", ("Ready", "True", "ScaledObjectReady", ""),
                       ("Fallback", "True", "FallbackExists", "At least one trigger is falling back on this scaled object"))
    assert autoscaler_problem([fallback])[1] == ("ScaledObject glm-chat uses its fallback replicas (FallbackExists): "
                                                 "At least one trigger is falling back on this scaled object")


def test_a_working_or_new_autoscaler_is_no_problem():
    ready = _scaler("ScaledObject", ("Ready", "True", "ScaledObjectReady", ""), ("Fallback", "False", "NoFallbackFound", ""))
    assert autoscaler_problem([ready, {"kind": "ScaledObject", "metadata": {"name": "new"}}]) is None
    assert autoscaler_problem([]) is None


def test_an_hpa_that_cannot_read_its_metric_is_a_problem_but_not_one_scaled_to_zero():
    broken = _scaler("HorizontalPodAutoscaler", ("ScalingActive", "False", "FailedGetExternalMetric", "unable to get metric"))
    assert autoscaler_problem([broken]) == (
        "AutoscalerFailed", "HorizontalPodAutoscaler glm-chat cannot scale (FailedGetExternalMetric): unable to get metric")
    disabled = _scaler("HorizontalPodAutoscaler", ("ScalingActive", "False", "ScalingDisabled", "scaling is disabled"))
    assert autoscaler_problem([disabled]) is None
