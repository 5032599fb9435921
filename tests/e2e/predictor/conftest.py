"""Fixtures for the predictive-pipeline e2e tests: a predictive AutoGLMDeployment, the collector
and predictor as real subprocesses (`autoglm collector|predictor`), their /metrics, and a
time-compressed daily cycle derived from the NASA trace."""
from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

import autoglm_testenv
from autoglm_predictor.traces import NASA_PER_MINUTE
from autoglm_testenv import components, procs

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def predictive_deployment(testenv: autoglm_testenv.Env, autoglm_crd: None, namespace: str) -> Callable[..., str]:
    def create(name: str = "glm", per_replica: float = 8, min_replicas: int = 1, max_replicas: int = 10,
               horizon_seconds: int = 6, query: str = "") -> str:
        obj = {"apiVersion": "autoglm.io/v1alpha1", "kind": "AutoGLMDeployment",
               "metadata": {"name": name, "namespace": namespace},
               "spec": {"model": {"name": "zai-org/AutoGLM-Phone-9B"},
                        "autoscaling": {"enabled": True, "minReplicas": min_replicas, "maxReplicas": max_replicas,
                                        "target": {"perReplica": per_replica, **({"query": query} if query else {})},
                                        "predictive": {"enabled": True, "quantile": 0.95,
                                                       "horizonSeconds": horizon_seconds}}}}
        testenv.kubectl("apply", "-f", "-", input=json.dumps(obj))
        return name

    return create


@dataclass
class Component:
    name: str
    pid: int
    log: Path
    metrics_port: int

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def metric(self, name: str, **labels: str) -> float:
        return sum(v for (n, ls), v in self.metrics().items() if n == name and set(labels.items()) <= set(ls))

    def kill(self) -> None:
        os.killpg(self.pid, signal.SIGKILL)
        procs.wait_until(f"{self.name} gone", lambda: not procs.alive(self.pid), 10)


@pytest.fixture
def pipeline(testenv: autoglm_testenv.Env, namespace: str, tmp_path: Path) -> Iterator[Callable[..., Component]]:
    """Factory: run `autoglm collector|predictor` against the environment, each under the Helm
    chart's ServiceAccount and RBAC for it (so a missing permission fails here); all stopped afterwards."""
    started: list[Component] = []
    release = f"pipe-{uuid.uuid4().hex[:6]}"
    identities = components.chart_identities(testenv, release, namespace, [namespace], tmp_path)

    def start(command: str, *flags: str, log_name: str | None = None, **env: str) -> Component:
        port = procs.free_port()
        name = log_name or command
        argv = [sys.executable, "-m", "autoglm_operator.cli.main", command, f"--metrics-port={port}", *flags]
        variables = {"KUBECONFIG": str(identities[command].kubeconfig), "AUTOGLM_PROMETHEUS_URL": testenv.prometheus_url,
                     "AUTOGLM_KAFKA_BOOTSTRAP": testenv.kafka_bootstrap, **env}
        pid = procs.start(name, argv, tmp_path, variables)
        component = Component(name, pid, tmp_path / f"{name}.log", port)
        procs.wait_until(f"{name} /metrics", lambda: procs.http_ok(f"http://127.0.0.1:{port}/metrics"), 60,
                         pid, component.log)
        started.append(component)
        return component

    yield start
    for component in started:
        procs.stop(component.pid)
    testenv.kubectl("delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={release}",
                    "--wait=false", check=False)


@pytest.fixture
def daily_cycle() -> Callable[..., pd.Series]:
    return make_daily_cycle


def make_daily_cycle(days: int, step: str = "10min", trough: float = 2.0, peak: float = 30.0) -> pd.Series:
    """A smooth day shaped like NASA's mean hour-of-day traffic, sharpened (cubed) so the morning
    ramp is a surge; requests per `step`, repeated for `days` days."""
    nasa = pd.read_csv(NASA_PER_MINUTE, parse_dates=["timestamp"]).set_index("timestamp")["requests"]
    minutes = int(pd.Timedelta(step).total_seconds() // 60)
    by_step = nasa.groupby((nasa.index.hour * 60 + nasa.index.minute) // minutes).mean()
    shape = ((by_step - by_step.min()) / (by_step.max() - by_step.min())).to_numpy() ** 3
    per_second = trough + (peak - trough) * np.tile(shape, days)
    index = pd.date_range("1995-07-01", periods=len(per_second), freq=step)
    return pd.Series(per_second * pd.Timedelta(step).total_seconds(), index=index, name="requests")
