"""Canary analysis on engines other than vLLM, and answers of several series, against the real
Prometheus (which scrapes simulated engines publishing that engine's metric names) and, for the
rollouts, the real API server with the operator.

Issue 15 fault 2: the built-in checks asked for vLLM's series whatever `runtime.engine` was, so a
healthy SGLang canary had "no data" every interval and was rolled back. The input: the
05-canary example's analysis (successRateMin 0.99, ttftP95MaxSeconds 2.0) with `runtime.engine:
sglang`, and a Prometheus holding only `sglang:*` engine series for the deployment.
Fault 10: a user metric without aggregation (one series per pod, 0.40 and 0.99, max 0.95) passed
on its first series.
"""
from __future__ import annotations

import time

import pytest
from canary_support import NAME, Traffic, canary_cr, live_route, prometheus_series, revision_of
from operator_support import apply, condition, resource, wait_for, wait_for_condition

from autoglm_operator.api.spec import parse_instance
from autoglm_operator.rollout.analysis import PrometheusAnalyzer
from autoglm_testenv import Env

pytestmark = pytest.mark.e2e

EXAMPLE_ANALYSIS = {"successRateMin": 0.99, "ttftP95MaxSeconds": 2.0}  # manifests/examples/05-canary.yaml


def _sglang_rollout(testenv: Env, namespace: str, kube, sim_engine, **fault):
    """The stable SGLang revision serving, then the canary applied with traffic flowing; returns
    (old, new, engines) once the canary has left Starting."""
    cr = canary_cr(namespace, testenv.prometheus_url, runtime={"engine": "sglang"},
                   analysis={"prometheusAddress": testenv.prometheus_url, **EXAMPLE_ANALYSIS})
    apply(testenv, cr)
    old = wait_for_condition(testenv, namespace, NAME, "Ready", "True")["status"]["currentRevision"]
    engines = {old: sim_engine(namespace=namespace, deployment=NAME, revision=old, engine="sglang").url}
    cr["spec"]["model"]["name"] = "zai-org/GLM-4-9B-0414-v2"
    new = revision_of(cr)
    canary = sim_engine(namespace=namespace, deployment=NAME, revision=new, engine="sglang")
    if fault:
        canary.configure(**fault)
    engines[new] = canary.url
    return cr, old, new, engines


def _only_sglang_series(testenv: Env, namespace: str) -> None:
    mine = f'{{namespace="{namespace}",autoglm_deployment="{NAME}"}}'
    names = {s["__name__"] for s in prometheus_series(testenv.prometheus_url, mine)}
    assert any(n.startswith("sglang:") for n in names), names
    assert not any(n.startswith(("vllm:", "tgi_")) for n in names), names


def test_a_healthy_sglang_canary_is_promoted_on_sglang_series(testenv: Env, namespace: str, operator, kube,
                                                               sim_engine) -> None:
    cr, old, new, engines = _sglang_rollout(testenv, namespace, kube, sim_engine)
    with Traffic(kube, namespace, engines):
        time.sleep(3)
        apply(testenv, cr)
        wait_for("the SGLang canary promoted",
                 lambda: resource(testenv, namespace, NAME)["status"].get("currentRevision") == new, 120)
    _only_sglang_series(testenv, namespace)
    canary = wait_for_condition(testenv, namespace, NAME, "Ready", "True")["status"]["canary"]
    assert canary["phase"] == "Promoted"
    checks = {c["name"]: c for c in canary["analysis"]}
    assert set(checks) == {"successRate", "ttftP95"}, canary["analysis"]
    assert all(c["result"] == "Pass" and c["value"] is not None for c in checks.values()), canary["analysis"]
    assert live_route(kube, namespace) == ({new: 100}, 0)


def test_a_failing_sglang_canary_is_rolled_back_on_its_success_rate(testenv: Env, namespace: str, operator, kube,
                                                                    sim_engine) -> None:
    cr, old, new, engines = _sglang_rollout(testenv, namespace, kube, sim_engine, error_rate=0.5)
    with Traffic(kube, namespace, engines):
        time.sleep(2)
        apply(testenv, cr)
        rolled = wait_for_condition(testenv, namespace, NAME, "Ready", "False", "RolledBack", timeout=90)
    _only_sglang_series(testenv, namespace)
    assert rolled["status"]["currentRevision"] == old
    failing = [c for c in rolled["status"]["canary"]["analysis"] if c["result"] == "Fail"]
    # Judged on measured numbers (aborted requests), not on "no data".
    assert failing and failing[0]["name"] == "successRate" and failing[0]["value"] < 0.99, failing
    assert "successRate=" in condition(rolled, "Ready")["message"]


def test_a_tgi_ttft_bound_is_refused_with_the_reason(testenv: Env, namespace: str, operator) -> None:
    cr = canary_cr(namespace, testenv.prometheus_url, runtime={"engine": "tgi"},
                   analysis={"prometheusAddress": testenv.prometheus_url, **EXAMPLE_ANALYSIS})
    apply(testenv, cr)
    refused = wait_for_condition(testenv, namespace, NAME, "Ready", "False", timeout=60)
    message = condition(refused, "Ready")["message"]
    assert "ttftP95MaxSeconds: engine tgi publishes no time-to-first-token histogram" in message, message


def test_a_user_metric_with_one_series_per_pod_is_refused_not_judged_on_its_first(testenv: Env, namespace: str,
                                                                                  sim_engine) -> None:
    """Two engine processes of one revision (two pods) in the real Prometheus: without aggregation
    the query answers two series; the check fails naming them. Aggregated, it passes."""
    for _ in range(2):
        sim_engine(namespace=namespace, deployment=NAME, revision="new", engine="sglang")
    per_pod = f'sglang:token_usage{{namespace="{namespace}",autoglm_revision="{{{{revision}}}}"}}'
    cr = canary_cr(namespace, testenv.prometheus_url, runtime={"engine": "sglang"},
                   analysis={"prometheusAddress": testenv.prometheus_url, "metrics": [
                       {"name": "per-pod", "query": per_pod, "max": 0.95},
                       {"name": "worst-pod", "query": f"max({per_pod})", "max": 0.95}]})
    inst = parse_instance(cr)
    wait_for("both engines scraped", lambda: len(prometheus_series(
        testenv.prometheus_url, f'sglang:token_usage{{namespace="{namespace}"}}')) == 2, 30)
    checks = {c.name: c for c in PrometheusAnalyzer().run(testenv.prometheus_url, inst, inst.spec.rollout.analysis,
                                                          "new", "old", 5)}
    assert checks["per-pod"].result == "Fail" and checks["per-pod"].value is None, checks["per-pod"]
    assert checks["per-pod"].message.startswith("ambiguous answer: 2 series answered"), checks["per-pod"].message
    assert checks["worst-pod"].result == "Pass" and checks["worst-pod"].value == 0.0, checks["worst-pod"]
