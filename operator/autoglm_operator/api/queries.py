"""PromQL the pipeline runs per deployment: the load signal and the engine health signals.

`default_load_query` is the one definition of "load" when `spec.autoscaling.target.query` is
empty; the operator's KEDA trigger should import it so the reactive threshold and the forecast
measure the same thing in the same unit (`spec.autoscaling.target.perReplica`).
"""
from __future__ import annotations

from autoglm_operator.api.engines import PROFILES


def selector(namespace: str, name: str) -> str:
    """Label matchers for one deployment's engine pods (all revisions: load belongs to the model)."""
    return f'namespace="{namespace}",autoglm_deployment="{name}"'


def default_load_query(namespace: str, name: str, engine: str = "vllm") -> str:
    """Running plus waiting requests over all pods of the deployment; 0 when no pod reports."""
    profile = PROFILES[engine]
    labels = selector(namespace, name)
    return (f"(sum({profile.running_metric}{{{labels}}}) or vector(0))"
            f" + (sum({profile.waiting_metric}{{{labels}}}) or vector(0))")


def engine_queries(namespace: str, name: str, engine: str, rate_window: str) -> dict[str, str]:
    """Context published beside the load (record fields); only vLLM's metric names are known here."""
    if engine != "vllm":
        return {}
    labels = selector(namespace, name)
    return {
        "requests_per_second": f"sum(rate(vllm:request_success_total{{{labels}}}[{rate_window}]))",
        "queue_depth": f"sum(vllm:num_requests_waiting{{{labels}}})",
        "kv_cache_usage": f"avg(vllm:kv_cache_usage_perc{{{labels}}})",
        "ttft_p95_seconds": ("histogram_quantile(0.95, sum by (le) "
                             f"(rate(vllm:time_to_first_token_seconds_bucket{{{labels}}}[{rate_window}])))"),
        "ready_replicas": f"count(vllm:num_requests_running{{{labels}}})",
    }
