"""Canary analysis from Prometheus: the PromQL of each check, and judging the numbers (pure), apart
from the one class that sends the queries (prometheus-api-client).

Series are selected by `namespace`, `autoglm_deployment` and `autoglm_revision` labels. No engine
publishes them itself: the PodMonitor (or scrape config) must copy the pod labels
`autoglm.io/instance` -> `autoglm_deployment` and `autoglm.io/revision` -> `autoglm_revision`, and
the pod's namespace to `namespace` (see docs/rollouts.md). Every rate uses the step interval as its
window (at least 5 s), so a step is judged on its own traffic.

Built-in checks (each on the canary and, for the relative comparison, on the stable revision),
written from the engine profile's metric names (`api.queries`: success_rate, ttft_p95,
queue_depth; the names per engine in `api.engines` and docs/rollouts.md). A check the engine
cannot compute (TGI publishes no TTFT histogram) is refused by validation when its bound is set
(`api.engines.check_signals`); relative comparison covers the checks the engine can compute, and one
that is asked for anyway (an object stored before validation refused it) fails with the reason.
A query returning nothing or NaN (no requests in the window) is "no data", never a pass. A query
that fails is "no data" too, its message leading with the innermost error (`error_cause`). An
answer of several series is a failure naming them (`api.queries.instant_value`): which of them
would count is not ours to guess.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Callable
from typing import Any

from autoglm_operator.api import queries as promql
from autoglm_operator.api.engines import BOUNDS, PROFILES, check_bound, missing_signal
from autoglm_operator.api.rollout_spec import Analysis
from autoglm_operator.api.spec import Instance
from autoglm_operator.rollout.canary import Check

log = logging.getLogger("autoglm.analysis")

MIN_WINDOW_SECONDS = 5
MAX_CAUSE_CHARS = 300  # the innermost error of a failed query, enough for a DNS or TLS error with its host
MAX_MESSAGE_CHARS = 512  # a failed query's whole message; at most 19 checks stay far below a condition's 32768
TTFT_FLOOR_SECONDS = 0.05  # relative TTFT checks ignore differences smaller than this
QUEUE_FLOOR = 1.0  # ... and queue differences below one request
ERROR_FLOOR = 0.01  # ... and error-rate differences below one percentage point


@dataclasses.dataclass(frozen=True)
class Query:
    name: str
    canary: str | None  # None: the engine cannot answer it (`unavailable` says why)
    stable: str | None  # None: no relative comparison
    min: float | None = None
    max: float | None = None
    kind: str = "user"  # successRate, ttftP95, queueDepth or user
    unavailable: str | None = None


def selector(inst: Instance, revision: str) -> str:
    return f'namespace="{inst.namespace}",autoglm_deployment="{inst.name}",autoglm_revision="{revision}"'




def render_template(query: str, inst: Instance, revision: str) -> str:
    return query.replace("{{namespace}}", inst.namespace).replace("{{name}}", inst.name).replace("{{revision}}", revision)


def queries(inst: Instance, analysis: Analysis, canary: str, stable: str, interval_seconds: int) -> list[Query]:
    w = f"{max(interval_seconds, MIN_WINDOW_SECONDS)}s"
    c, s = selector(inst, canary), selector(inst, stable)
    relative = analysis.max_relative_degradation is not None
    engine = inst.spec.runtime.engine
    signals = PROFILES[engine].signals
    build = {"successRate": promql.success_rate, "ttftP95": promql.ttft_p95, "queueDepth": promql.queue_depth}
    out = []
    for check in BOUNDS:
        bound = check_bound(analysis, check)
        if bound is None and not relative:
            continue
        reason = missing_signal(engine, check)
        if reason is not None and bound is None:
            continue  # relative comparison covers the checks this engine can compute (docs/rollouts.md)
        limits = {"min": bound} if check == "successRate" else {"max": bound}
        out.append(Query(check, build[check](signals, c, w), build[check](signals, s, w) if relative else None,
                         kind=check, unavailable=reason, **limits))
    for m in analysis.metrics:
        out.append(Query(m.name, render_template(m.query, inst, canary), None, min=m.min, max=m.max))
    return out


def judge(q: Query, value: float | None, stable: float | None, max_relative: float | None) -> Check:
    """Pure: one check's verdict from its measured values."""
    if value is None or math.isnan(value):
        return Check(q.name, "NoData", None, _clean(stable), "no samples in the window")
    stable = _clean(stable)
    if q.min is not None and value < q.min:
        return Check(q.name, "Fail", value, stable, f"below min {q.min:g}")
    if q.max is not None and value > q.max:
        return Check(q.name, "Fail", value, stable, f"above max {q.max:g}")
    if stable is not None and max_relative is not None:
        d = max_relative
        if q.kind == "successRate":
            err, stable_err = 1 - value, 1 - stable
            if err > stable_err * (1 + d) + ERROR_FLOOR:
                return Check(q.name, "Fail", value, stable, f"error rate {err:.3g} vs stable {stable_err:.3g} (+{d:.0%} allowed)")
        elif q.kind in ("ttftP95", "queueDepth"):
            floor = TTFT_FLOOR_SECONDS if q.kind == "ttftP95" else QUEUE_FLOOR
            if value > stable * (1 + d) and value - stable > floor:
                return Check(q.name, "Fail", value, stable, f"{value / stable if stable else math.inf:.2g}x stable "
                                                            f"(+{d:.0%} allowed)")
    return Check(q.name, "Pass", value, stable)


def _clean(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


# urllib3 starts an error with its connection: `HTTPConnection(host='p', port=9090): ` (2.x) or
# `<urllib3.connection.HTTPConnection object at 0x7f...>: ` (1.x); the message names the address instead.
_CONNECTION_PREFIX = re.compile(r"^(<[^<>]*>|[A-Za-z]*Connection(Pool)?\([^()]*\)): ")


def error_cause(exc: BaseException) -> str:
    """The innermost error of a failed query in words, at most MAX_CAUSE_CHARS characters.

    requests raises its ConnectionError with urllib3's MaxRetryError as the argument, which holds
    the cause as `reason`; both messages repeat the whole URL, i.e. the PromQL, hundreds of
    characters, before `(Caused by ...)`, so a message cut at 200 characters showed the query and
    lost the cause (a DNS failure for the Prometheus address). The cause is what is kept.
    """
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException) and len(exc.args) == 1 and isinstance(exc.args[0], BaseException):
            inner = exc.args[0]
        if not isinstance(inner, BaseException):
            break
        exc = inner
    text = _CONNECTION_PREFIX.sub("", str(exc), count=1).strip() or type(exc).__name__
    return _bounded(text, MAX_CAUSE_CHARS)


def query_failure(address: str, exc: BaseException) -> str:
    """A failed query's check message: the cause first, then which Prometheus was asked."""
    return _bounded(f"query failed: {error_cause(exc)} (Prometheus {address})", MAX_MESSAGE_CHARS)


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class PrometheusAnalyzer:
    """Sends the queries; a query that fails (Prometheus down, bad PromQL) is no data with the error.

    A failure to reach Prometheus at all (requests' errors are OSErrors; an answer Prometheus refused,
    such as bad PromQL, is not) ends the analysis: the remaining checks get the same message
    without being sent, since each unreachable query costs the client's retries (about 6 s) and
    the converge waits for them.
    """

    def __init__(self, connect: Callable[[str], Any] | None = None) -> None:
        self._connect = connect or query_client
        self._clients: dict[str, Any] = {}

    def _client(self, address: str) -> Any:
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = self._connect(address)
        return client

    def run(self, address: str, inst: Instance, analysis: Analysis, canary: str, stable: str, interval: int) -> list[Check]:
        client = self._client(address)
        checks = []
        unreachable: str | None = None
        for q in queries(inst, analysis, canary, stable, interval):
            if q.unavailable is not None or q.canary is None:
                checks.append(Check(q.name, "Fail", message=q.unavailable))
                continue
            if unreachable is not None:
                checks.append(Check(q.name, "NoData", message=unreachable))
                continue
            try:
                value = promql.instant_value(client.custom_query(q.canary))
                base = promql.instant_value(client.custom_query(q.stable)) if q.stable else None
            except promql.AmbiguousAnswer as exc:
                checks.append(Check(q.name, "Fail", message=_bounded(f"ambiguous answer: {exc}", MAX_MESSAGE_CHARS)))
                continue
            except Exception as exc:  # noqa: BLE001 - any failure of the query is "no data", reported
                checks.append(Check(q.name, "NoData", message=query_failure(address, exc)))
                log.warning("canary analysis of %s/%s, check %s: %s", inst.namespace, inst.name, q.name, checks[-1].message)
                if isinstance(exc, OSError):
                    unreachable = checks[-1].message
                continue
            checks.append(judge(q, value, base, analysis.max_relative_degradation))
        return checks

    def in_flight(self, address: str, inst: Instance, revision: str) -> float | None:
        """Requests running or queued on `revision` now (api.queries.in_flight), for its retirement;
        None when Prometheus has no series for it, answers NaN or fails (logged): the retirement then
        waits for its drain budget instead (rollout/canary.py `retirement`)."""
        client = self._client(address)
        query = promql.in_flight(PROFILES[inst.spec.runtime.engine].signals, selector(inst, revision))
        try:
            return _clean(promql.instant_value(client.custom_query(query)))
        except Exception as exc:  # noqa: BLE001 - no reading: the drain budget decides
            log.warning("requests in flight on %s/%s revision %s: %s", inst.namespace, inst.name, revision,
                        query_failure(address, exc))
            return None


class QuietQueryRetries(logging.Filter):
    """Drops urllib3's per-attempt "Retrying (Retry(total=2, ...)) after connection broken by ...: URL"
    warning for Prometheus queries: the URL is the URL-encoded PromQL, hundreds of characters, and a
    down Prometheus repeated it for every attempt of every check. The analyzer logs one short line
    per failed query instead (the cause, `query_failure`), and the status carries it. Retries of any
    other request through urllib3 (the Kubernetes client's) still log.

    The record is urllib3's `log.warning("Retrying (%r) after connection broken by '%r': %s",
    retries, err, url)` in connectionpool.py (urllib3 1.26 and 2.x); its last argument is the path.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (str(record.msg).startswith("Retrying") and args and str(args[-1]).startswith("/api/v1/query"))


_RETRY_LOGGER = logging.getLogger("urllib3.connectionpool")


def quiet_query_retries() -> None:
    """Install `QuietQueryRetries` once on urllib3's connection pool logger (where the record is made)."""
    if not any(isinstance(f, QuietQueryRetries) for f in _RETRY_LOGGER.filters):
        _RETRY_LOGGER.addFilter(QuietQueryRetries())


def query_client(address: str, retry: Any = None) -> Any:
    """The analysis' Prometheus client; `retry` (a urllib3 Retry) None: prometheus-api-client's default."""
    from prometheus_api_client import PrometheusConnect

    quiet_query_retries()
    return PrometheusConnect(url=address, disable_ssl=False, retry=retry)


def prometheus_address(inst: Instance) -> str:
    rollout = inst.spec.rollout
    assert rollout is not None
    return rollout.analysis.prometheus_address or inst.spec.autoscaling.prometheus_address
