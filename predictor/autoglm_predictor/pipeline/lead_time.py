"""How far ahead a floor must look: pod cold start plus every delay between a sample and a Ready pod.

A floor written now only helps demand that arrives after the new pod is Ready, so the forecast
horizon must cover the cold start plus the pipeline lag (collector step, decision interval,
KEDA polling, one HPA sync). DESIGN section 6.
"""
from __future__ import annotations

import math

from autoglm_predictor.pipeline.targets import Target

DEFAULT_COLD_START_SECONDS = 300.0  # until the operator has measured one: a typical 9B weight load
HPA_SYNC_SECONDS = 15.0


def pipeline_lag_seconds(step_seconds: float, decision_seconds: float, polling_interval_seconds: float) -> float:
    return step_seconds + decision_seconds + polling_interval_seconds + HPA_SYNC_SECONDS


def lead_time_seconds(target: Target, step_seconds: float, decision_seconds: float) -> int:
    """spec.autoscaling.predictive.horizonSeconds if set, else measured cold start + pipeline lag."""
    if target.horizon_seconds is not None:
        return target.horizon_seconds
    cold = target.cold_start_seconds if target.cold_start_seconds is not None else DEFAULT_COLD_START_SECONDS
    return math.ceil(cold + pipeline_lag_seconds(step_seconds, decision_seconds, target.polling_interval_seconds))


def horizon_buckets(lead_seconds: float, bucket_seconds: float) -> int:
    return max(1, math.ceil(lead_seconds / bucket_seconds))
