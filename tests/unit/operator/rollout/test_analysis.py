"""Canary analysis: the PromQL per check, judging values (absolute and vs stable), no data, query errors."""
from __future__ import annotations

import logging
import math
from datetime import datetime, timezone

import pytest

from autoglm_operator.rollout.analysis import (
    MAX_MESSAGE_CHARS,
    PrometheusAnalyzer,
    error_cause,
    judge,
    prometheus_address,
    queries,
    query_client,
)
from autoglm_operator.api.engines import PROFILES, check_signals, missing_signal
from autoglm_operator.api.queries import AmbiguousAnswer, instant_value, range_values
from autoglm_operator.api.schema import InvalidSpec
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


def test_instant_value_reads_one_series_or_a_scalar_and_refuses_the_rest():
    assert instant_value([]) is None
    assert instant_value([{"metric": {}, "value": [1.0, "0.25"]}]) == 0.25
    assert math.isnan(instant_value([{"metric": {}, "value": [1.0, "NaN"]}]))
    assert instant_value([1.0, "3"]) == 3.0
    # Issue 15 fault 10: one series per pod (0.40 and 0.99) was judged on the first.
    per_pod = [{"metric": {"pod": "a"}, "value": [1.0, "0.40"]}, {"metric": {"pod": "b"}, "value": [1.0, "0.99"]}]
    with pytest.raises(AmbiguousAnswer, match=r'2 series answered \({pod="a"}; {pod="b"}\).*aggregate'):
        instant_value(per_pod)
    many = [{"metric": {"pod": str(i)}, "value": [1.0, "1"]} for i in range(7)]
    with pytest.raises(AmbiguousAnswer, match="7 series.*and 4 more"):
        instant_value(many)
    with pytest.raises(AmbiguousAnswer, match="range vector"):
        instant_value([{"metric": {}, "values": [[1.0, "1"]]}])
    with pytest.raises(AmbiguousAnswer, match="non-numeric"):
        instant_value([1.0, "text"])


def test_range_values_read_one_series_and_refuse_several():
    assert range_values([]) == []
    assert range_values([{"metric": {}, "values": [[1.0, "2"], [2.0, "3"]]}]) == [(1.0, 2.0), (2.0, 3.0)]
    with pytest.raises(AmbiguousAnswer, match="2 series"):
        range_values([{"metric": {"pod": "a"}, "values": []}, {"metric": {"pod": "b"}, "values": []}])
    with pytest.raises(AmbiguousAnswer, match="series over time"):
        range_values([{"metric": {}, "value": [1.0, "1"]}])


def test_a_user_metric_answering_one_series_per_pod_fails_with_the_series_named(make_instance):
    inst = make_instance(rollout={"analysis": {"metrics": [
        {"name": "kv", "query": 'vllm:kv_cache_usage_perc{autoglm_revision="{{revision}}"}', "max": 0.95}]}})
    prom = FakeProm({"kv_cache": [{"metric": {"pod": "a"}, "value": [0, "0.40"]},
                                  {"metric": {"pod": "b"}, "value": [0, "0.99"]}],
                     "request_success": [{"metric": {}, "value": [0, "1"]}]})
    by = {c.name: c for c in PrometheusAnalyzer(lambda url: prom).run("http://p:9090", inst, inst.spec.rollout.analysis,
                                                                      "new", "old", 10)}
    assert by["kv"].result == "Fail" and by["kv"].value is None, by["kv"]
    assert by["kv"].message.startswith('ambiguous answer: 2 series answered ({pod="a"}; {pod="b"})'), by["kv"].message
    assert by["successRate"].result == "Pass"


@pytest.mark.parametrize("engine", sorted(PROFILES))
def test_built_in_checks_use_the_engine_profile_names_only(make_instance, engine):
    """Issue 15 fault 2: an SGLang or TGI canary was asked for vLLM's series and never had data."""
    inst = make_instance(runtime={"engine": engine},
                         rollout={"analysis": {"queueDepthMax": 8, "maxRelativeDegradation": 0.2}})
    qs = {q.name: q for q in queries(inst, inst.spec.rollout.analysis, "new", "old", 30)}
    text = " ".join(f"{q.canary} {q.stable}" for q in qs.values())
    others = {e: PROFILES[e].signals.running.split(":")[0].split("_")[0] for e in PROFILES if e != engine}
    assert not any(f"{prefix}:" in text or f"{prefix}_" in text for prefix in others.values()), text
    assert PROFILES[engine].signals.waiting in qs["queueDepth"].canary
    computable = {c for c in ("successRate", "ttftP95", "queueDepth") if missing_signal(engine, c) is None}
    assert set(qs) == computable, "relative comparison covers what the engine can compute"


def test_sglang_and_tgi_signal_names():
    sglang, tgi = PROFILES["sglang"].signals, PROFILES["tgi"].signals
    assert (sglang.ttft, sglang.waiting, sglang.total, sglang.failed) == (
        "sglang:time_to_first_token_seconds", "sglang:num_queue_reqs", "sglang:num_requests_total",
        "sglang:num_aborted_requests_total")
    assert (tgi.succeeded, tgi.total, tgi.waiting, tgi.ttft) == ("tgi_request_success", "tgi_request_count",
                                                                   "tgi_queue_size", None)


def test_a_bound_the_engine_cannot_measure_is_refused(make_instance):
    inst = make_instance(runtime={"engine": "tgi"}, rollout={"analysis": {"ttftP95MaxSeconds": 2.0}})
    with pytest.raises(InvalidSpec, match="spec.rollout.analysis.ttftP95MaxSeconds: engine tgi publishes no "
                                          "time-to-first-token histogram"):
        check_signals(inst.spec)
    check_signals(make_instance(runtime={"engine": "sglang"}, rollout={"analysis": {"ttftP95MaxSeconds": 2.0}}).spec)
    check_signals(make_instance(runtime={"engine": "tgi"}, rollout={"analysis": {"successRateMin": 0.9}}).spec)
    # Stored before validation refused it: the check fails with the reason, never "no data".
    prom = FakeProm({})
    by = {c.name: c for c in PrometheusAnalyzer(lambda url: prom).run("http://p:9090", inst, inst.spec.rollout.analysis,
                                                                      "new", "old", 10)}
    assert by["ttftP95"].result == "Fail" and "publishes no" in by["ttftP95"].message
    assert not any("time_to_first_token" in q for q in prom.asked)


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


def test_an_unreachable_prometheus_logs_one_short_line_not_urllib3_retries(inst, caplog):
    """`make run` with an unreachable analysis Prometheus: urllib3 logged "Retrying (...) ... <URL-encoded
    PromQL>" per attempt; now the analysis logs one line per failed query with the cause, no query."""
    from urllib3.util.retry import Retry

    caplog.set_level(logging.WARNING)
    analyzer = PrometheusAnalyzer(lambda address: query_client(address, Retry(total=2, backoff_factor=0)))
    checks = analyzer.run(UNRESOLVABLE, inst, inst.spec.rollout.analysis, "new", "old", 10)
    assert checks[0].result == "NoData"
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [f"canary analysis of ml/glm, check successRate: {checks[0].message}"], lines
    assert "api/v1/query" not in lines[0] and len(lines[0]) < 300
    # The filter drops only Prometheus query retries: other requests' retries still say so.
    caplog.clear()
    other = logging.LogRecord("urllib3.connectionpool", logging.WARNING, "", 0,
                              "Retrying (%r) after connection broken by '%r': %s", ("Retry(total=2)", "err", "/api/v1/pods"), None)
    assert logging.getLogger("urllib3.connectionpool").filter(other)


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


def test_requests_in_flight_on_a_revision_add_its_running_and_waiting_gauges(inst):
    prom = FakeProm({"num_requests_running": [{"metric": {}, "value": [0, "3"]}]})
    assert PrometheusAnalyzer(lambda url: prom).in_flight("http://p:9090", inst, "old") == 3.0
    assert prom.asked == ['sum(vllm:num_requests_running{namespace="ml",autoglm_deployment="glm",autoglm_revision="old"}) '
                          '+ sum(vllm:num_requests_waiting{namespace="ml",autoglm_deployment="glm",autoglm_revision="old"})']


@pytest.mark.parametrize("answer", [[], [{"metric": {}, "value": [0, "NaN"]}], ConnectionRefusedError(111, "refused")])
def test_no_reading_of_requests_in_flight_is_none_never_zero(inst, answer):
    """No series, NaN, or Prometheus unreachable: the retirement waits for its budget instead."""
    assert PrometheusAnalyzer(lambda url: FakeProm({"vllm": answer})).in_flight("http://p:9090", inst, "old") is None
