"""The chart's Prometheus rules and Grafana dashboard against the real Prometheus, while the whole
product runs: operator, simulated engine under replayed load, collector -> Kafka -> predictor.

The rule file is loaded into the environment's Prometheus; then every recording rule, every
alert's signal (the expression without its threshold) and every dashboard query (with the
namespace and deployment variables filled in) must parse and return series: a query that returns
nothing on a running system is a bug (a wrong metric or label name). Full alert expressions must
parse; they return nothing while all is well; one of them is then made to fire (an undecodable
record on the topic -> AutoGLMRecordsRejected). Queries on kube-state-metrics (the pod cold-start
recording rule and its panel), which neither this product nor the local environment runs, are
checked to parse and listed; promtool's unit tests
(tests/unit/manifests/test_rules.py) cover their logic. Queries on a canary's series (source
`gen.CANARY`; the replay runs none) are checked to parse here and answer during a canary in
tests/e2e/operator/test_canary_metrics.py. The autoscaling bounds (AutoGLMFloorPinnedAtMaximum, the
capacity panel) are the operator's own series of the predictive deployment: they must answer.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import dataclasses

import pytest
import requests

import autoglm_testenv
import gen_observability as gen
from autoglm_operator.api.engines import PROFILES
from autoglm_testenv import procs, prometheus

pytestmark = pytest.mark.e2e

DAY = 40.0  # real seconds per modelled day of the replayed trace
OTHER_ENGINES = ("sglang", "tgi")  # beside the predictive vLLM deployment, engines only (no pipeline)


def _query(url: str, expr: str) -> dict:
    """Prometheus' instant-query answer; `status` is "error" (with `error`) for an invalid query."""
    resp = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    body = resp.json()
    assert body["status"] == "success", f"{expr}\n-> {body.get('errorType')}: {body.get('error')}"
    return body["data"]


def _fill(expr: str, namespace: str, name: str) -> str:
    """The dashboard's variables as Grafana fills them for one deployment (1 s scrapes here)."""
    return expr.replace("$namespace", namespace).replace("$deployment", name).replace("$__rate_interval", "30s")


def _signal_names(engine: str) -> set[str]:
    """The metric names the engine's profile says it publishes."""
    signals = PROFILES[engine].signals
    return {getattr(signals, f.name) for f in dataclasses.fields(signals) if f.name != "failed_matchers"} - {None}


def _engine_queries(engine: str, namespace: str, deployment: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(where, PromQL) of the engine-sourced dashboard targets and recorded series that read a
    metric `engine` publishes, for its deployment; and the names of those that read none (TGI has
    no TTFT histogram), which cannot answer for it."""
    names = _signal_names(engine)
    applies, cannot = [], []
    for where, expr, source, _ in gen.queries():
        if source == "engines" and where.startswith("dashboard"):
            (applies if any(n in expr for n in names) else cannot).append((f"{where} [{engine}]", _fill(expr, namespace, deployment)))
    for records in gen.RECORDS.values():
        for r in records:
            if r.source == "engines":
                query = f'{r.record}{{namespace="{namespace}",autoglm_deployment="{deployment}"}}'
                (applies if any(n in r.expr for n in names) else cannot).append((f"record {r.record} [{engine}]", query))
    return applies, [where for where, _ in cannot]


def test_every_rule_and_dashboard_query_returns_series_during_a_replay(
        testenv, namespace, operator, predictive_deployment, sim_engine, pipeline, daily_cycle, tmp_path):
    url = testenv.prometheus_url
    rule_file = prometheus.load_rules(testenv.prometheus_targets, url, "autoglm-chart-rules", gen.RULES_FILE.read_text())
    targets: list[Path] = []
    loadgen = 0
    try:
        name = predictive_deployment(per_replica=4, horizon_seconds=6)
        engine = sim_engine(namespace=namespace, deployment=name, max_running=256)
        others = {e: sim_engine(namespace=namespace, deployment=f"glm-{e}", engine=e, max_running=256).url
                  for e in OTHER_ENGINES}
        kafka_env = {"AUTOGLM_KAFKA_TOPIC": f"autoglm.load.{namespace}"}
        collector = pipeline("collector", "--step-seconds=1", "--rate-window=5s", "--backfill-seconds=0",
                             "--refresh-seconds=2", **kafka_env)
        predictor = pipeline("predictor", "--step-seconds=1", "--bucket-seconds=2", f"--season-seconds={DAY:.0f}",
                             "--decision-seconds=1", "--heartbeat-seconds=5", "--stale-after-seconds=5",
                             "--history-seconds=600", "--retrain-seconds=10", "--no-lstm",
                             # its own group: other tests' predictors on this shared Kafka rebalance theirs
                             f"--group=autoglm-predictor-{namespace}", **kafka_env)
        for component, port in (("operator", operator.metrics_port), ("collector", collector.metrics_port),
                                ("predictor", predictor.metrics_port)):
            targets.append(testenv.add_scrape_target(f"{component}-{port}", f"127.0.0.1:{port}"))

        trace = tmp_path / "day.csv"
        daily_cycle(2).to_csv(trace, index_label="timestamp")
        loadgen = procs.start("loadgen", [
            sys.executable, "-m", "autoglm_testenv.loadgen", "--trace", str(trace), "--target", engine.url,
            *(f"--target={u}" for u in others.values()), "--speedup", f"{86400 / DAY}", "--duration", f"{2 * DAY}", "--max-tokens", "16",
            "--scale", f"{DAY / 86400}"], tmp_path, {"PYTHONPATH": str(Path(autoglm_testenv.__file__).parent.parent)})

        queries = [(where, _fill(expr, namespace, name), source, answers)
                   for where, expr, source, answers in gen.queries()]
        # An unavailable source must not hide a query: exactly those reading kube-state-metrics, and
        # those reading a canary's series, are excused (the latter answer in test_canary_metrics.py).
        for where, expr, source, _ in queries:
            reads_ksm = "kube_" in expr or "autoglm:pod_cold_start_seconds" in expr
            assert reads_ksm == (source == gen.KUBE_STATE_METRICS), where
            assert ("autoglm_canary_" in expr) == (source == gen.CANARY), where
        must_answer = [(where, expr) for where, expr, source, answers in queries
                       if answers and source not in (gen.KUBE_STATE_METRICS, gen.CANARY)]
        assert len(must_answer) > 20, must_answer
        reads_bounds = {where for where, expr, _, answers in queries if answers and "autoglm_autoscaling_" in expr}
        assert reads_bounds and reads_bounds <= {where for where, _ in must_answer}, reads_bounds
        cannot_answer = {}
        for e in OTHER_ENGINES:
            applies, cannot_answer[e] = _engine_queries(e, namespace, f"glm-{e}")
            must_answer += applies

        silent: dict[str, str] = {}

        def all_answer() -> bool:
            silent.clear()
            for where, expr in must_answer:
                if not _query(url, expr)["result"]:
                    silent[where] = expr
            return not silent

        deadline = time.monotonic() + 2 * DAY + 60
        while not all_answer() and time.monotonic() < deadline:
            time.sleep(2)
        assert not silent, "queries without series on the running system:\n" + "\n".join(
            f"  {where}: {expr}" for where, expr in silent.items())

        for where, expr, _, _ in queries:  # every full alert expression and the excused ones: valid PromQL
            _query(url, expr)
        excused = [where for where, _, source, _ in queries if source == gen.KUBE_STATE_METRICS]
        canary = [where for where, _, source, _ in queries if source == gen.CANARY]
        print(f"{len(must_answer)} queries answered; parse-only (kube-state-metrics): {excused}; "
              f"parse-only here (a canary's, answered in test_canary_metrics.py): {canary}; "
              f"not applicable (the engine publishes none of the metrics they read): {cannot_answer}")

        # An alert fires in the real Prometheus from the real counter: one undecodable record on the topic.
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=testenv.kafka_bootstrap)
        producer.send(kafka_env["AUTOGLM_KAFKA_TOPIC"], key=f"{namespace}/{name}".encode(), value=b"\x00\xff garbage")
        producer.flush()
        producer.close()

        def rejected_alert_fires() -> bool:
            alerts = requests.get(f"{url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
            return any(a["labels"]["alertname"] == "AutoGLMRecordsRejected" and a["state"] == "firing" for a in alerts)

        # First the predictor counts it (its own /metrics), then Prometheus scrapes, records and fires
        # (1 s scrape and evaluation): two waits, so a failure says which step did not happen.
        procs.wait_until("the predictor counting the undecodable record",
                         lambda: predictor.metric("autoglm_predictor_records_rejected_total") >= 1, 120,
                         predictor.pid, predictor.log)
        procs.wait_until("AutoGLMRecordsRejected firing in Prometheus", rejected_alert_fires, 30)

        groups = requests.get(f"{url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        ours = [r for g in groups if g["file"] == str(rule_file) for r in g["rules"]]
        assert len(ours) == sum(len(g["rules"]) for g in gen.rules()["groups"])
        assert [(r["name"], r["lastError"]) for r in ours if r["health"] != "ok"] == []
    finally:
        if loadgen:
            procs.stop(loadgen)
        for target in targets:
            target.unlink(missing_ok=True)
        prometheus.unload_rules(url, rule_file)
