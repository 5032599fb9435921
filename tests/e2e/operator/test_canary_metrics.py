"""The operator's per-AutoGLMDeployment series (reconcile/metrics.py) during a real canary that is
rolled back, read by the real Prometheus with the chart's rules loaded: every query of the rules and
the dashboard on a canary's series (`gen.CANARY`) answers, AutoGLMCanaryRolledBack fires, the
analysis results and the rollback are counted once (not again by the resyncs every 2 s), and the
resource's series go with it.

The replay of tests/e2e/predictor/test_observability.py runs no canary: this is where those
queries are proven against a running system.
"""
from __future__ import annotations

import time

import pytest
import requests
from canary_support import NAME, Traffic, canary_cr, revision_of
from operator_support import apply, wait_for, wait_for_condition

import gen_observability as gen
from autoglm_testenv import Env, prometheus

pytestmark = pytest.mark.e2e


def _answer(url: str, expr: str) -> list[dict]:
    """The series of an instant query; an invalid query fails with Prometheus' reason."""
    body = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", f"{expr}\n-> {body.get('error')}"
    return body["data"]["result"]


def _value(url: str, expr: str) -> float | None:
    """The one value of `expr`, None while it has no series."""
    result = _answer(url, expr)
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def test_canary_series_the_rolled_back_alert_and_counted_once(testenv: Env, namespace: str, operator, kube,
                                                              sim_engine) -> None:
    url = testenv.prometheus_url
    rule_file = prometheus.load_rules(testenv.prometheus_targets, url, f"autoglm-chart-rules-{namespace}",
                                      gen.RULES_FILE.read_text())
    target = testenv.add_scrape_target(f"operator-{operator.metrics_port}", f"127.0.0.1:{operator.metrics_port}")
    ours = f'namespace="{namespace}",autoglm_deployment="{NAME}"'
    try:
        cr = canary_cr(namespace, url, drainDelaySeconds=3)
        apply(testenv, cr)
        old = wait_for_condition(testenv, namespace, NAME, "Ready", "True")["status"]["currentRevision"]
        engines = {old: sim_engine(namespace=namespace, deployment=NAME, revision=old).url}
        wait_for("Ready=True in Prometheus", lambda: _value(
            url, f'autoglm_deployment_condition{{{ours},type="Ready",status="True"}}') == 1, 30)
        cr["spec"]["model"]["name"] = "zai-org/GLM-4-9B-0414-v2"
        new = revision_of(cr)
        engines[new] = sim_engine(namespace=namespace, deployment=NAME, revision=new, error_rate=0.5).url
        with Traffic(kube, namespace, engines):
            time.sleep(2)  # stable traffic in Prometheus first
            apply(testenv, cr)
            rolled = wait_for_condition(testenv, namespace, NAME, "Ready", "False", "RolledBack", timeout=90)
        failed = rolled["status"]["canary"]["failedChecks"]

        def firing() -> bool:
            alerts = requests.get(f"{url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
            return any(a["labels"]["alertname"] == "AutoGLMCanaryRolledBack" and a["state"] == "firing"
                       and a["labels"].get("namespace") == namespace for a in alerts)

        wait_for("AutoGLMCanaryRolledBack firing in Prometheus", firing, 30)
        # The first step mirrored 50% (weight 0) until the second failed analysis: Prometheus saw it.
        mirror = f'autoglm_canary_mirror_percent{{{ours},autoglm_revision="{new}"}}'
        assert _value(url, f"max_over_time({mirror}[5m])") == 50
        assert _value(url, mirror) == 0, "traffic back to stable once rolled back"
        assert _value(url, f'autoglm_canary_phase{{{ours},phase="RolledBack"}}') == 1

        silent = {}
        for where, expr, source, answers in gen.queries():
            if source == gen.CANARY:
                filled = expr.replace("$namespace", namespace).replace("$deployment", NAME).replace(
                    "$__rate_interval", "30s")
                if not _answer(url, filled) and answers:
                    silent[where] = filled
        assert not silent, f"queries without series during a canary: {silent}"

        # Counted once: the same numbers after more resyncs (one every 2 s) than the rollout had steps.
        def counts() -> tuple[float, float]:
            return (operator.metric("autoglm_canary_rollbacks_total", namespace=namespace),
                    operator.metric("autoglm_canary_analysis_results_total", namespace=namespace, check="successRate"))

        before = counts()
        fails = operator.metric("autoglm_canary_analysis_results_total", namespace=namespace, check="successRate",
                                result="Fail")
        # each failed analysis raised status.canary.failedChecks once and failed successRate at most once
        assert before[0] == 1 and 1 <= fails <= failed, (before, fails, rolled["status"]["canary"])
        reconciles = operator.metric("autoglm_operator_reconciles_total")
        wait_for("five more reconciles", lambda: operator.metric("autoglm_operator_reconciles_total") >= reconciles + 5, 30)
        assert counts() == before

        # A deleted resource leaves no series behind.
        testenv.kubectl("delete", "autoglmdeployment", NAME, "-n", namespace, "--timeout=30s")
        wait_for("the resource's series gone from /metrics", lambda: requests.get(
            f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5).text.count(f'namespace="{namespace}"') == 0, 30)
    finally:
        target.unlink(missing_ok=True)
        prometheus.unload_rules(url, rule_file)
