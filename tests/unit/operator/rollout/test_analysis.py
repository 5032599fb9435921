"""Canary analysis: the PromQL per check, judging values (absolute and vs stable), no data, query errors."""
from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from autoglm_operator.rollout.analysis import (
    MAX_MESSAGE_CHARS,
    PrometheusAnalyzer,
    error_cause,
    first_value,
    judge,
    prometheus_address,
    queries,
)
from autoglm_operator.rollout.canary import Observed, decide

SEL_NEW = 'namespace="ml",autoglm_deployment="glm",autoglm_revision="new"'


@pytest.fixture
def inst(make_instance):
    return make_instance(rollout={"analysis": {"ttftP95MaxSeconds": 2.0, "queueDepthMax": 8, "maxRelativeDegradation": 0.2,
                                               "metrics": [{"name": "kv", "query": 'max(vllm:kv_cache_usage_perc{namespace="{{namespace}}",autoglm_deployment="{{name}}",autoglm_revision="{{revision}}"})', "max": 0.9}]}})


def test_queries_select_by_namespace_deployment_and_revision(inst):
    qs = {q.name: q for q in queries(inst, inst.spec.rollout.analysis, "new", "old", 30)}
    assert list(qs) == ["successRate", "ttftP95", "queueDepth", "kv"]
    assert qs["ttftP95"].canary == (
        f"histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{{{SEL_NEW}}}[30s])))")
    assert 'autoglm_revision="old"' in qs["ttftP95"].stable
    assert f'http_requests_total{{{SEL_NEW},status=~"5.."}}[30s]' in qs["successRate"].canary
    assert "vllm:request_success_total" in qs["successRate"].canary
    assert qs["queueDepth"].canary == f"avg(avg_over_time(vllm:num_requests_waiting{{{SEL_NEW}}}[30s]))"
    assert qs["kv"].canary == f"max(vllm:kv_cache_usage_perc{{{SEL_NEW}}})" and qs["kv"].stable is None
    assert "[5s]" in queries(inst, inst.spec.rollout.analysis, "new", "old", 1)[0].canary, "rate needs two scrapes"


def test_only_configured_checks(make_instance):
    inst = make_instance(rollout={})
    (only,) = queries(inst, inst.spec.rollout.analysis, "new", "old", 30)
    assert (only.name, only.min, only.stable) == ("successRate", 0.99, None), "relative comparison is opt-in"


def test_judge_absolute_bounds_relative_comparison_and_no_data(inst):
    qs = {q.name: q for q in queries(inst, inst.spec.rollout.analysis, "new", "old", 30)}
    assert judge(qs["ttftP95"], 3.1, 0.2, 0.2).result == "Fail"
    assert judge(qs["ttftP95"], 3.1, 0.2, 0.2).message == "above max 2"
    assert judge(qs["ttftP95"], 0.9, 0.5, 0.2).result == "Fail", "80% slower than stable"
    assert judge(qs["ttftP95"], 0.53, 0.5, 0.2).result == "Pass"
    assert judge(qs["ttftP95"], 0.04, 0.01, 0.2).result == "Pass", "tiny absolute differences are noise"
    assert judge(qs["successRate"], 0.9, 1.0, 0.2).result == "Fail" and "below min 0.99" in judge(qs["successRate"], 0.9, 1.0, 0.2).message
    assert judge(qs["successRate"], 1.0, 1.0, 0.2).result == "Pass"
    assert judge(qs["queueDepth"], 5, 1, 0.2).result == "Fail"
    assert judge(qs["queueDepth"], 1.5, 1, 0.2).result == "Pass"
    nodata = judge(qs["ttftP95"], math.nan, 0.2, 0.2)
    assert nodata.result == "NoData" and nodata.value is None
    assert judge(qs["ttftP95"], 0.3, math.nan, 0.2).result == "Pass", "no stable data: absolute bounds only"
    assert judge(qs["kv"], 0.95, None, 0.2).result == "Fail" and judge(qs["kv"], 0.5, None, 0.2).result == "Pass"


def test_first_value():
    assert first_value([]) is None
    assert first_value([{"metric": {}, "value": [1.0, "0.25"]}]) == 0.25
    assert math.isnan(first_value([{"metric": {}, "value": [1.0, "NaN"]}]))
    assert first_value([1.0, "3"]) == 3.0


class FakeProm:
    def __init__(self, answers):
        self.answers, self.asked = answers, []

    def custom_query(self, query):
        self.asked.append(query)
        for needle, answer in self.answers.items():
            if needle in query:
                if isinstance(answer, Exception):
                    raise answer
                return answer
        return []


def test_analyzer_queries_canary_and_stable_and_reports_failures_as_no_data(inst):
    """A query Prometheus refuses (bad PromQL: an answer, not an OSError) fails alone."""
    prom = FakeProm({"time_to_first_token": [{"value": [0, "2.5"]}], "request_success": ValueError("bad_data: parse error"),
                     "num_requests_waiting": [{"value": [0, "0"]}]})
    checks = PrometheusAnalyzer(lambda url: prom).run("http://p:9090", inst, inst.spec.rollout.analysis, "new", "old", 10)
    by = {c.name: c for c in checks}
    assert by["successRate"].result == "NoData"
    assert by["successRate"].message == "query failed: bad_data: parse error (Prometheus http://p:9090)"
    assert by["ttftP95"].result == "Fail" and by["ttftP95"].value == 2.5
    assert by["queueDepth"].result == "Pass"
    assert by["kv"].result == "NoData"


def test_an_unreachable_prometheus_is_asked_once(inst):
    """Each unreachable query costs the client's retries; the other checks share the first one's cause."""
    prom = FakeProm({"vllm": ConnectionRefusedError(111, "Connection refused")})
    checks = PrometheusAnalyzer(lambda url: prom).run("http://p:9090", inst, inst.spec.rollout.analysis, "new", "old", 10)
    assert len(prom.asked) == 1
    assert [c.result for c in checks] == ["NoData"] * 4
    assert {c.message for c in checks} == {"query failed: [Errno 111] Connection refused (Prometheus http://p:9090)"}


UNRESOLVABLE = "http://prometheus.autoglm.invalid:9090"  # .invalid never resolves (RFC 6761)


def _real_client(address: str):
    """The analyzer's real client, without the retries that would take 6 s to give up."""
    from prometheus_api_client import PrometheusConnect
    from urllib3.util.retry import Retry

    return PrometheusConnect(url=address, retry=Retry(total=0))


def test_an_unresolvable_prometheus_address_is_the_message_not_the_url(inst):
    """The real failure: requests wraps urllib3's MaxRetryError, whose message repeats the whole
    URL-encoded query before `(Caused by NameResolutionError(...))`; cut at 200 characters the DNS
    failure was gone. The message leads with it now, whole and bounded."""
    checks = PrometheusAnalyzer(_real_client).run(UNRESOLVABLE, inst, inst.spec.rollout.analysis, "new", "old", 10)
    message = checks[0].message
    assert message.startswith("query failed: Failed to resolve 'prometheus.autoglm.invalid' ("), message
    assert message.endswith(f") (Prometheus {UNRESOLVABLE})") and len(message) <= MAX_MESSAGE_CHARS
    assert "api/v1/query" not in message and "HTTPConnection" not in message
    assert {c.message for c in checks} == {message}

    # Through the canary machine: waiting for data, then rolled back, the cause said once and first.
    r = inst.spec.rollout
    base = {"name": "glm", "namespace": "ml", "desired": "new", "stable": "old", "stable_serving": True, "canary_ready": True}
    status = {"revision": "new", "stable": "old", "phase": "Progressing", "step": 0, "weight": 0, "mirror": 20,
              "stepStartedAt": "2025-01-01T00:00:00Z", "failedChecks": r.failure_limit - 1,
              "noDataIntervals": r.analysis.no_data_limit - 2}
    later = datetime(2025, 1, 1, 1, tzinfo=timezone.utc)
    waiting = decide(r, status, Observed(now=later, analysis=checks, **base))
    assert waiting.canary["message"] == (f"step 1/4: waiting for data {r.analysis.no_data_limit - 1}/{r.analysis.no_data_limit}: "
                                         f"{message} [successRate, ttftP95, queueDepth, kv]")
    failed = decide(r, {**waiting.canary, "stepStartedAt": "2025-01-01T01:00:00Z"},
                    Observed(now=later.replace(hour=2), analysis=checks, **base))
    ready = failed.verdict.message
    assert ready.startswith(f"canary new: analysis failed {r.failure_limit}/{r.failure_limit}: no data for "
                            f"{r.analysis.no_data_limit} intervals: query failed: Failed to resolve "
                            "'prometheus.autoglm.invalid'"), ready
    assert ready.count("Failed to resolve") == 1 and len(ready) < 1000, "an Event carries it whole too"


def test_error_cause_unwraps_and_bounds():
    class Wrapper(OSError):
        pass

    inner = OSError("<urllib3.connection.HTTPConnection object at 0x7f00>: Failed to establish a new connection")
    assert error_cause(Wrapper(inner)) == "Failed to establish a new connection"
    assert error_cause(TimeoutError()) == "TimeoutError"
    assert len(error_cause(ValueError("x" * 5000))) == 300


def test_prometheus_address_falls_back_to_autoscaling(make_instance):
    assert prometheus_address(make_instance(rollout={})) == "http://prometheus-operated.monitoring.svc:9090"
    inst = make_instance(rollout={"analysis": {"prometheusAddress": "http://prom:9090"}})
    assert prometheus_address(inst) == "http://prom:9090"
