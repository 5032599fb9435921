"""PromQL per deployment from the engine profile (`api.engines`), and the one rule for reading answers.

`default_load_query` is the one definition of "load" when `spec.autoscaling.target.query` is
empty: the KEDA trigger and the forecast measure the same thing in the same unit
(`spec.autoscaling.target.perReplica`). `success_rate`, `ttft_p95` and `queue_depth` are the
canary analysis's built-in checks and the collector's context fields, written once from the
engine's metric names; each returns None when the engine does not publish what it needs.

Reading answers: a check or a signal is one number per instant. `instant_value` and
`range_values` accept an answer of at most one series and refuse anything else with
`AmbiguousAnswer`, naming the series: a query without aggregation that returns one series per
pod (0.40 and 0.99) must not be judged on whichever series Prometheus lists first.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from autoglm_operator.api.engines import PROFILES, Signals

MAX_SERIES_NAMED = 3  # series named in an AmbiguousAnswer message


class AmbiguousAnswer(ValueError):
    """A PromQL answer that is not one number (several series, a range vector, a string)."""


def selector(namespace: str, name: str) -> str:
    """Label matchers for one deployment's engine pods (all revisions: load belongs to the model)."""
    return f'namespace="{namespace}",autoglm_deployment="{name}"'


def default_load_query(namespace: str, name: str, engine: str = "vllm") -> str:
    """Running plus waiting requests over all pods of the deployment; 0 when no pod reports."""
    profile = PROFILES[engine]
    labels = selector(namespace, name)
    return (f"(sum({profile.running_metric}{{{labels}}}) or vector(0))"
            f" + (sum({profile.waiting_metric}{{{labels}}}) or vector(0))")


def _rate(metric: str, sel: str, window: str, matchers: str = "") -> str:
    labels = f"{sel},{matchers}" if matchers else sel
    return f"sum(rate({metric}{{{labels}}}[{window}]))"


def success_rate(s: Signals, sel: str, window: str) -> str | None:
    """Share of finished requests that succeeded over `window`, from whichever two of the
    engine's outcome counters exist (`Signals`); no failures published in the window count as 0."""
    failed = f"({_rate(s.failed, sel, window, s.failed_matchers)} or vector(0))" if s.failed else None
    if s.succeeded and failed:
        ok = _rate(s.succeeded, sel, window)
        return f"{ok} / ({ok} + {failed})"
    if s.total and failed:
        total = _rate(s.total, sel, window)
        return f"({total} - {failed}) / {total}"
    if s.succeeded and s.total:
        return f"{_rate(s.succeeded, sel, window)} / {_rate(s.total, sel, window)}"
    return None


def requests_per_second(s: Signals, sel: str, window: str) -> str | None:
    """Finished requests per second (successful ones where only those are counted)."""
    counter = s.total or s.succeeded
    return _rate(counter, sel, window) if counter else None


def ttft_p95(s: Signals, sel: str, window: str) -> str | None:
    if s.ttft is None:
        return None
    return f"histogram_quantile(0.95, sum by (le) (rate({s.ttft}_bucket{{{sel}}}[{window}])))"


def queue_depth(s: Signals, sel: str, window: str) -> str:
    """Waiting requests per pod, averaged over `window`."""
    return f"avg(avg_over_time({s.waiting}{{{sel}}}[{window}]))"


def in_flight(s: Signals, sel: str) -> str:
    """Requests running or queued now, summed over the pods: what a retiring revision still serves."""
    return f"sum({s.running}{{{sel}}}) + sum({s.waiting}{{{sel}}})"


def engine_queries(namespace: str, name: str, engine: str, rate_window: str) -> dict[str, str]:
    """Context published beside the load (record fields): those the engine's metrics allow."""
    s = PROFILES[engine].signals
    labels = selector(namespace, name)
    queries = {
        "requests_per_second": requests_per_second(s, labels, rate_window),
        "queue_depth": f"sum({s.waiting}{{{labels}}})",
        "kv_cache_usage": f"avg({s.kv_cache_usage}{{{labels}}})" if s.kv_cache_usage else None,
        "ttft_p95_seconds": ttft_p95(s, labels, rate_window),
        "ready_replicas": f"count({s.running}{{{labels}}})",
    }
    return {field: query for field, query in queries.items() if query is not None}


def _describe(series: Sequence[Any]) -> str:
    named = [", ".join(f'{k}="{v}"' for k, v in sorted((s.get("metric") or {}).items())) for s in series[:MAX_SERIES_NAMED]]
    more = f" and {len(series) - MAX_SERIES_NAMED} more" if len(series) > MAX_SERIES_NAMED else ""
    return "; ".join("{" + n + "}" for n in named) + more


def _one_series(result: Any, key: str) -> dict[str, Any] | None:
    if not isinstance(result, list) or not result:
        return None
    if not all(isinstance(s, dict) for s in result):
        raise AmbiguousAnswer(f"the answer is not a vector of series: {str(result)[:120]}")
    if len(result) > 1:
        raise AmbiguousAnswer(f"{len(result)} series answered ({_describe(result)}); one number is needed: "
                              "aggregate the query (for example max(...), avg(...) or sum(...))")
    if key not in result[0]:
        kind = "a range vector" if "values" in result[0] else "an answer without values"
        raise AmbiguousAnswer(f"{kind} answered; an instant value is needed" if key == "value"
                              else f"{kind} answered; a series over time is needed")
    return result[0]


def instant_value(result: Any) -> float | None:
    """The number of an instant query's `data.result` (as prometheus-api-client returns it):
    one series or a scalar; None when empty (no data). NaN is returned as is (the caller's "no
    data"). Raises AmbiguousAnswer for several series, a range vector or a string."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        try:  # a scalar: [time, "value"]
            return float(result[1])
        except (TypeError, ValueError):
            raise AmbiguousAnswer(f"a non-numeric answer: {str(result[1])[:120]}") from None
    series = _one_series(result, "value")
    return None if series is None else float(series["value"][1])


def range_values(result: Any) -> list[tuple[float, float]]:
    """(time, value) pairs of a range query's `data.result`: one series, or none (empty).
    Raises AmbiguousAnswer for several series."""
    series = _one_series(result, "values")
    return [] if series is None else [(float(ts), float(text)) for ts, text in series["values"]]
