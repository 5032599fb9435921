"""The shipped Prometheus rules, checked by Prometheus' own promtool: the file is valid, every alert
fires on the faulty series and stays silent on the healthy ones (`promtool test rules`), and the
chart, the dashboard and docs/operations.md carry exactly what hack/gen_observability.py generates.

promtool comes with the Prometheus the local environment unpacks (`hack/build-tools.sh prometheus`);
when it is missing these tests fail with that instruction, they never skip.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import gen_observability as gen
from autoglm_testenv import config

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "autoglm-operator"
RULES = gen.RULES_FILE


def _tool(path: Path, how: str) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: {how}")
    return path


@pytest.fixture(scope="module")
def promtool() -> Path:
    return _tool(config.binaries().prometheus.parent / "promtool", "run `hack/build-tools.sh prometheus`")


@pytest.fixture(scope="module")
def helm() -> Path:
    return _tool(config.binaries().helm, "run `hack/build-tools.sh helm`")


def _shipped() -> dict[str, Any]:
    return yaml.safe_load(RULES.read_text())


def _alerts() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in _shipped()["groups"] for r in g["rules"] if "alert" in r}


# --- promtool test cases: per alert, faulty and healthy series side by side ----------------------
# (series, [(eval_time, labels of the alerts expected then)]); an empty list = must stay silent.
Case = tuple[dict[str, str], list[tuple[str, list[dict[str, str]]]]]


def _histogram(metric: str, labels: str, le_counts: dict[str, str]) -> dict[str, str]:
    return {f'{metric}_bucket{{{labels},le="{le}"}}': values for le, values in le_counts.items()}


PHASES = ("Starting", "Progressing", "Paused", "Promoted", "RolledBack", "Aborted")


def _condition(name: str, kind: str, status: str, reason: str, job: str = "operator") -> dict[str, str]:
    """The three `autoglm_deployment_condition` series of one condition held for an hour."""
    return {f'autoglm_deployment_condition{{job="{job}",namespace="ml",autoglm_deployment="{name}",type="{kind}",'
            f'status="{s}",reason="{reason}"}}': f"{int(s == status)}x60" for s in ("True", "False", "Unknown")}


def _bounds(name: str, low: str, high: str, job: str = "operator") -> dict[str, str]:
    """The autoscaling bounds the operator publishes for one resource: minimum applied, maximum."""
    labels = f'job="{job}",namespace="ml",autoglm_deployment="{name}"'
    return {f"autoglm_autoscaling_min_replicas{{{labels}}}": low, f"autoglm_autoscaling_max_replicas{{{labels}}}": high}


def _phases(name: str, per_minute: list[str], then: str = "") -> dict[str, str]:
    """`autoglm_canary_phase` of one resource: the phase of each minute, 1 on its series and 0 on the others."""
    return {f'autoglm_canary_phase{{job="operator",namespace="ml",autoglm_deployment="{name}",phase="{p}"}}':
            " ".join(str(int(now == p)) for now in per_minute) + (f" {then}" if then else "") for p in PHASES}


CASES: dict[str, Case] = {
    "AutoGLMReconcileErrors": (
        {'autoglm_operator_reconciles_total{job="bad",result="error"}': "0+2x40",
         'autoglm_operator_reconciles_total{job="bad",result="ok"}': "0+10x40",
         'autoglm_operator_reconciles_total{job="good",result="ok"}': "0+10x40"},
        [("8m", []), ("30m", [{"job": "bad"}])]),
    "AutoGLMReconcileSlow": (
        {**_histogram("autoglm_operator_reconcile_seconds", 'job="bad"', {"1": "0x40", "10": "0+10x40", "+Inf": "0+10x40"}),
         **_histogram("autoglm_operator_reconcile_seconds", 'job="good"', {"1": "0+10x40", "10": "0+10x40", "+Inf": "0+10x40"})},
        [("8m", []), ("30m", [{"job": "bad"}])]),
    "AutoGLMOperatorFighting": (
        {'autoglm_operator_writes_total{job="bad",verb="apply",kind="ScaledObject"}': "0+5x120",
         'autoglm_operator_reconciles_total{job="bad",result="ok"}': "0+5x120",
         'autoglm_operator_writes_total{job="good",verb="apply",kind="Deployment"}': "0+1x120",
         'autoglm_operator_reconciles_total{job="good",result="ok"}': "0+10x120"},
        [("50m", []), ("100m", [{"job": "bad", "kind": "ScaledObject"}])]),
    "AutoGLMCollectorDependencyDown": (
        {'autoglm_collector_dependency_up{job="c",dependency="kafka"}': "1 1 0x20",
         'autoglm_collector_dependency_up{job="c",dependency="prometheus"}': "1x22"},
        [("4m", []), ("10m", [{"job": "c", "dependency": "kafka"}])]),
    "AutoGLMCollectorLagging": (
        {'autoglm_collector_lag_seconds{job="late"}': "10 20 400x10", 'autoglm_collector_lag_seconds{job="ok"}': "5x12"},
        [("2m", []), ("5m", [{"job": "late"}])]),
    "AutoGLMForecastStale": (
        {'autoglm_predictor_forecast_stale{deployment="ml/a"}': "0 0 1x20",
         'autoglm_predictor_forecast_stale{deployment="ml/b"}': "0x22"},
        [("5m", []), ("15m", [{"deployment": "ml/a"}])]),
    "AutoGLMRecordsRejected": (
        {'autoglm_predictor_records_rejected_total{job="p",reason="schema"}': "0 0 0 3x25",
         'autoglm_predictor_records_consumed_total{job="p"}': "0+10x28",
         'autoglm_predictor_records_consumed_total{job="q"}': "0+10x28",
         # a counter born at its first increment (prometheus_client's labelled counters): the first record counts
         'autoglm_predictor_records_rejected_total{job="r",reason="undecodable"}': "_ _ _ _ _ _ 1x22",
         'autoglm_predictor_records_consumed_total{job="r"}': "0+10x28"},
        [("5m", [{"job": "p"}]), ("7m", [{"job": "p"}, {"job": "r"}]), ("25m", [])]),
    "AutoGLMDecisionSlow": (
        {**_histogram("autoglm_predictor_decision_latency_seconds", 'job="p"', {"1": "0x40", "10": "0+10x40", "+Inf": "0+10x40"}),
         **_histogram("autoglm_predictor_decision_latency_seconds", 'job="q"', {"1": "0+10x40", "10": "0+10x40", "+Inf": "0+10x40"})},
        [("8m", []), ("30m", [{"job": "p"}])]),
    "AutoGLMForecastRunaway": (
        {'autoglm_predictor_predicted_load{deployment="ml/a",horizon_seconds="60"}': "100x60",
         'vllm:num_requests_running{namespace="ml",autoglm_deployment="a",autoglm_revision="r1"}': "10x60",
         'vllm:num_requests_waiting{namespace="ml",autoglm_deployment="a",autoglm_revision="r1"}': "0x60",
         # an SGLang deployment whose forecast is sane: its own metric names answer
         'autoglm_predictor_predicted_load{deployment="ml/b",horizon_seconds="60"}': "12x60",
         'sglang:num_running_reqs{namespace="ml",autoglm_deployment="b",autoglm_revision="r1"}': "8x60",
         'sglang:num_queue_reqs{namespace="ml",autoglm_deployment="b",autoglm_revision="r1"}': "2x60"},
        [("10m", []), ("40m", [{"namespace": "ml", "autoglm_deployment": "a"}])]),
    "AutoGLMTTFTSLOAttainmentLow": (
        # vLLM deployment a: half of the requests within 1 s; SGLang deployment b: all of them
        {**_histogram("vllm:time_to_first_token_seconds", 'namespace="ml",autoglm_deployment="a",autoglm_revision="r1"',
                      {"1.0": "0+5x40", "+Inf": "0+10x40"}),
         'vllm:time_to_first_token_seconds_count{namespace="ml",autoglm_deployment="a",autoglm_revision="r1"}': "0+10x40",
         **_histogram("sglang:time_to_first_token_seconds", 'namespace="ml",autoglm_deployment="b",autoglm_revision="r1"',
                      {"1.0": "0+10x40", "+Inf": "0+10x40"}),
         'sglang:time_to_first_token_seconds_count{namespace="ml",autoglm_deployment="b",autoglm_revision="r1"}': "0+10x40"},
        [("10m", []), ("30m", [{"namespace": "ml", "autoglm_deployment": "a"}])]),
    "AutoGLMNotReadyPastStartupBudget": (
        # operator series: every condition type has a series per status, all with the current reason
        {**_condition("a", "Ready", "False", "Unschedulable"),  # no GPU for its pods: fires
         **_condition("b", "Ready", "True", "Serving"),
         **_condition("b", "Progressing", "True", "PodsStarting"),  # serves, 1 of 3 pods Ready: fires
         **_condition("c", "Ready", "False", "CanaryProgressing"),  # a long canary: judged by its analysis
         **_condition("d", "Ready", "False", "RolloutPaused"),  # paused on purpose
         **_condition("e", "Ready", "True", "Serving"), **_condition("e", "Progressing", "False", "Complete"),
         # a second operator replica (HA) publishing the same resource: still one alert
         **_condition("a", "Ready", "False", "Unschedulable", job="operator-2")},
        [("20m", []), ("45m", [{"namespace": "ml", "autoglm_deployment": "a"},
                               {"namespace": "ml", "autoglm_deployment": "b"}])]),
    "AutoGLMCanaryRolledBack": (
        {**_phases("a", ["Progressing"] * 5 + ["RolledBack"] * 10),
         **_phases("b", ["Progressing"] * 5 + ["Promoted"] * 10),
         **_phases("c", ["Progressing"] * 3 + ["Aborted"] * 12),  # a user's abort: no page
         # rolled back, then the spec went back to the stable revision: no canary, its series end (stale)
         **_phases("d", ["RolledBack"] * 3, then="stale")},
        [("2m", [{"namespace": "ml", "autoglm_deployment": "d"}]), ("4m", []),
         ("8m", [{"namespace": "ml", "autoglm_deployment": "a"}])]),
    "AutoGLMFloorPinnedAtMaximum": (
        {**_bounds("a", "5x60", "5x60"),  # the floor reached the maximum: fires
         **_bounds("a", "5x60", "5x60", job="operator-2"),  # a second operator replica (HA): still one alert
         **_bounds("b", "2x60", "5x60"),  # room to scale
         **_bounds("c", "5x20 3x40", "5x60"),  # pinned 20 minutes, then the forecast fell: shorter than `for`
         **_bounds("d", "4x60", "5x10 3x50")},  # maxReplicas lowered below the floor (before it is re-clamped)
        [("20m", []), ("45m", [{"namespace": "ml", "autoglm_deployment": "a"},
                               {"namespace": "ml", "autoglm_deployment": "d"}])]),
}

# Recording rules whose values matter beyond the alerts: load and serving pods for every engine's
# names, and the cold start per revision.
RECORDING_CASES: list[tuple[dict[str, str], str, str, list[dict[str, Any]]]] = [
    ({'vllm:num_requests_running{namespace="ml",autoglm_deployment="v",autoglm_revision="r1",pod="p1"}': "3x5",
      'vllm:num_requests_running{namespace="ml",autoglm_deployment="v",autoglm_revision="r1",pod="p2"}': "4x5",
      'vllm:num_requests_waiting{namespace="ml",autoglm_deployment="v",autoglm_revision="r1",pod="p1"}': "2x5",
      'vllm:num_requests_waiting{namespace="ml",autoglm_deployment="v",autoglm_revision="r1",pod="p2"}': "0x5",
      'sglang:num_running_reqs{namespace="ml",autoglm_deployment="s",pod="p3"}': "5x5",
      'sglang:num_queue_reqs{namespace="ml",autoglm_deployment="s",pod="p3"}': "1x5",
      'tgi_batch_current_size{namespace="ml",autoglm_deployment="t",pod="p4"}': "2x5",
      'tgi_queue_size{namespace="ml",autoglm_deployment="t",pod="p4"}': "7x5"},
     "3m", gen.LOAD,
     [{"labels": f'{gen.LOAD}{{namespace="ml",autoglm_deployment="{d}"}}', "value": v}
      for d, v in (("v", 9), ("s", 6), ("t", 9))]),
    ({'vllm:num_requests_running{namespace="ml",autoglm_deployment="v",pod="p1"}': "3x5",
      'vllm:num_requests_running{namespace="ml",autoglm_deployment="v",pod="p2"}': "4x5",
      'sglang:num_running_reqs{namespace="ml",autoglm_deployment="s",pod="p3"}': "5x5"},
     "3m", gen.SERVING_PODS,
     [{"labels": f'{gen.SERVING_PODS}{{namespace="ml",autoglm_deployment="{d}"}}', "value": v} for d, v in (("v", 2), ("s", 1))]),
    ({'kube_pod_created{namespace="ml",pod="a-r1-x"}': "1000x5",
      'kube_pod_status_ready_time{namespace="ml",pod="a-r1-x"}': "1240x5",
      'kube_pod_labels{namespace="ml",pod="a-r1-x",label_autoglm_io_instance="a",label_autoglm_io_revision="r1"}': "1x5",
      'kube_pod_created{namespace="ml",pod="unrelated"}': "1000x5",
      'kube_pod_status_ready_time{namespace="ml",pod="unrelated"}': "1010x5",
      'kube_pod_labels{namespace="ml",pod="unrelated"}': "1x5"},
     "3m", "autoglm:pod_cold_start_seconds",
     [{"labels": 'autoglm:pod_cold_start_seconds{namespace="ml",pod="a-r1-x",label_autoglm_io_instance="a",'
                 'label_autoglm_io_revision="r1"}', "value": 240}]),
]


def _annotations(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, str]:
    """The rule's annotations with `{{ $labels.x }}` filled in (the rules use no other template)."""
    out = {}
    for key, text in rule["annotations"].items():
        out[key] = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m[1]], text)
        assert "{{" not in out[key], f"{rule['alert']}: a template this test cannot expand: {text}"
    return out


def promtool_tests() -> dict[str, Any]:
    """The `promtool test rules` file: one test group per alert, plus the recording-rule checks."""
    alerts = _alerts()
    groups = []
    for name, (series, evaluations) in CASES.items():
        rule = alerts[name]
        expected = [{"eval_time": at,
                     "alertname": name,
                     "exp_alerts": [{"exp_labels": {**labels, **rule["labels"]},
                                     "exp_annotations": _annotations(rule, labels)} for labels in fired]}
                    for at, fired in evaluations]
        groups.append({"name": name, "interval": "1m",
                       "input_series": [{"series": s, "values": v} for s, v in series.items()],
                       "alert_rule_test": expected})
    for series, at, expr, samples in RECORDING_CASES:
        groups.append({"name": f"record {expr}", "interval": "1m",
                       "input_series": [{"series": s, "values": v} for s, v in series.items()],
                       "promql_expr_test": [{"expr": expr, "eval_time": at, "exp_samples": samples}]})
    return {"rule_files": [RULES.name], "evaluation_interval": "1m", "tests": groups}


def test_generated_files_are_current() -> None:
    """Rules, dashboard and the docs table match their definitions (and thus the engine profiles)."""
    result = subprocess.run([sys.executable, str(REPO / "hack" / "gen_observability.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_promtool_check_rules(promtool: Path) -> None:
    result = subprocess.run([str(promtool), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in _shipped()["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_every_alert_fires_and_stays_silent_in_a_case() -> None:
    """A rule without both cases is untested: this fails when an alert is added without them."""
    assert set(CASES) == set(_alerts())
    for name, (_, evaluations) in CASES.items():
        assert any(fired for _, fired in evaluations), f"{name}: no case where it fires"
        assert any(not fired for _, fired in evaluations), f"{name}: no case where it stays silent"


def test_promtool_test_rules(promtool: Path, tmp_path: Path) -> None:
    (tmp_path / RULES.name).write_text(RULES.read_text())
    tests = tmp_path / "autoglm-rules.test.yaml"
    tests.write_text(yaml.safe_dump(promtool_tests(), sort_keys=False, width=1000))
    result = subprocess.run([str(promtool), "test", "rules", str(tests)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules_can_fail(promtool: Path, tmp_path: Path) -> None:
    """The harness catches a wrong expectation (a silent case claimed to fire)."""
    tests = promtool_tests()
    tests["tests"] = [g for g in tests["tests"] if g["name"] == "AutoGLMForecastStale"]
    tests["tests"][0]["alert_rule_test"][0]["exp_alerts"] = [{"exp_labels": {"deployment": "ml/a", "severity": "warning"}}]
    (tmp_path / RULES.name).write_text(RULES.read_text())
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run([str(promtool), "test", "rules", "t.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0 and "AutoGLMForecastStale" in result.stdout + result.stderr


def test_docs_table_lists_every_shipped_alert_with_a_runbook() -> None:
    text = (REPO / "docs" / "operations.md").read_text()
    table = text[text.index(gen.BEGIN):text.index(gen.END)]
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `(\w+)` \|.*\| ([^|]+) \|$", table, re.M)}
    assert set(rows) == set(_alerts())
    assert all(len(runbook.strip()) > 20 for runbook in rows.values())


def _helm_template(helm: Path, *args: str) -> list[dict[str, Any]]:
    out = subprocess.run([str(helm), "template", "t", str(CHART), "-n", "monitoring", *args],
                         capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_chart_renders_a_prometheus_rule_only_where_the_crd_is_served(helm: Path) -> None:
    with_crd = _helm_template(helm, "--api-versions", "monitoring.coreos.com/v1/PrometheusRule",
                              "--set", "prometheusRule.labels.release=kube-prometheus-stack")
    rules = [d for d in with_crd if d["kind"] == "PrometheusRule"]
    assert len(rules) == 1 and rules[0]["spec"] == _shipped()
    assert rules[0]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert not [d for d in _helm_template(helm) if d["kind"] == "PrometheusRule"]
    off = _helm_template(helm, "--api-versions", "monitoring.coreos.com/v1/PrometheusRule", "--set", "prometheusRule.enabled=false")
    assert not [d for d in off if d["kind"] == "PrometheusRule"]


def test_chart_ships_the_plain_rule_file_and_the_dashboard_configmaps(helm: Path) -> None:
    docs = _helm_template(helm, "--set", "prometheusRule.configMap=true", "--set", "grafanaDashboard.enabled=true")
    maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    assert yaml.safe_load(maps["t-autoglm-prometheus-rules"]["data"]["autoglm-rules.yaml"]) == _shipped()
    dashboard = maps["t-autoglm-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["autoglm-dashboard.json"]) == json.loads(gen.DASHBOARD_FILE.read_text())
    assert not [d for d in _helm_template(helm) if d["kind"] == "ConfigMap" and "dashboard" in d["metadata"]["name"]]


def test_dashboard_has_the_variables_and_engine_aware_queries() -> None:
    board = json.loads(gen.DASHBOARD_FILE.read_text())
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource", "namespace", "deployment"]
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p.get("targets", []))
    from autoglm_operator.api.engines import PROFILES
    for engine, profile in PROFILES.items():
        assert profile.running_metric in exprs and profile.waiting_metric in exprs, engine
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_follows_the_dashboard_linters_main_rules() -> None:
    """grafana/dashboard-linter cannot be installed here (the Go module proxy refuses it), so its
    main rules are checked directly: a datasource variable that every panel and target uses, rate
    windows from `$__rate_interval`, a unit per panel, panels inside the 24-column grid."""
    board = json.loads(gen.DASHBOARD_FILE.read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for panel in board["panels"]:
        assert 0 <= panel["gridPos"]["x"] and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            for window in re.findall(r"rate\([^\[]*\[([^\]]+)\]", target["expr"]):
                assert window == "$__rate_interval", f"{panel['title']}: rate window {window}"
