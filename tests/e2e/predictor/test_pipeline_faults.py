"""Dependencies failing under the running pipeline, on a dedicated Prometheus so other tests are
not disturbed: Prometheus stopped, the collector backs off, says so in its /metrics, and recovers."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from autoglm_testenv import config, procs, prometheus

pytestmark = pytest.mark.e2e


def wait(what: str, check: Callable[[], object], timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception:  # a component restarting: /metrics or the API briefly unreachable
            pass
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def test_prometheus_outage_makes_the_collector_back_off_and_recover(
        testenv, namespace, predictive_deployment, sim_engine, pipeline, tmp_path):
    binary = config.binaries().prometheus
    port = procs.free_port()
    root = tmp_path / "own-prometheus"
    (root / "logs").mkdir(parents=True)
    url = f"http://127.0.0.1:{port}"
    pid = [0]

    def start() -> Path:
        pid[0], targets = prometheus.start(binary, root, port)
        wait("the dedicated Prometheus", lambda: procs.http_ok(f"{url}/-/ready"), 30)
        return targets

    name = predictive_deployment(per_replica=1)
    engine = sim_engine(namespace=namespace, deployment=name)
    targets = start()
    try:
        # Scrape the same engine with the same identity labels as the shared Prometheus does.
        shared = engine.target_file.read_text()
        (targets / engine.target_file.name).write_text(shared)
        collector = pipeline("collector", "--step-seconds=1", "--rate-window=5s", "--backfill-seconds=0",
                             "--refresh-seconds=2", AUTOGLM_PROMETHEUS_URL=url,
                             AUTOGLM_KAFKA_TOPIC=f"autoglm.load.{namespace}")
        wait("records published", lambda: collector.metric("autoglm_collector_records_published_total") >= 3, 30)
        assert collector.metric("autoglm_collector_dependency_up", dependency="prometheus") == 1

        procs.stop(pid[0])
        pid[0] = 0
        wait("the collector reporting Prometheus down",
             lambda: collector.metric("autoglm_collector_dependency_up", dependency="prometheus") == 0, 20)
        failures = collector.metric("autoglm_collector_dependency_failures_total", dependency="prometheus")
        assert failures >= 1 and collector.metric("autoglm_collector_backoff_seconds") > 0
        time.sleep(8)
        # Backing off: a handful of attempts in 8 s (1, 2, 4 s ...), not one per step.
        assert collector.metric("autoglm_collector_dependency_failures_total", dependency="prometheus") - failures <= 4

        start()
        published = collector.metric("autoglm_collector_records_published_total")
        wait("the collector recovering",
             lambda: collector.metric("autoglm_collector_dependency_up", dependency="prometheus") == 1
             and collector.metric("autoglm_collector_records_published_total") > published, 60)
        assert collector.metric("autoglm_collector_backoff_seconds") == 0
    finally:
        if pid[0]:
            procs.stop(pid[0])
