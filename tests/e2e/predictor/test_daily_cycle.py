"""A time-compressed daily cycle through the real pipeline: engine -> Prometheus -> collector ->
Kafka -> predictor -> status.forecast -> operator -> ScaledObject minReplicaCount in the API server.
The predictor is killed mid-run and restarted, and hostile records are injected, without breaking
the floor's lead; the operator (resyncing every 2 s) writes the ScaledObject only when the floor
changes, and the kill switch returns it to the reactive minimum at once."""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import pytest
import requests
from operator_support import audit_offset, writes_by
from pipeline_support import logged_writes, repeated_writes

from autoglm_operator.api.queries import default_load_query
from autoglm_operator.api.timestamps import parse_time
from autoglm_testenv.cluster import KEDA_USER

pytestmark = pytest.mark.e2e

DAY = 60.0  # real seconds per modelled day
DAYS = 4  # the linear AR answers on recent lags from ~68 buckets (day 3) and adds the season once its rows suffice (~90)
LEAD = 6  # spec.autoscaling.predictive.horizonSeconds
PER_REPLICA = 6.0  # the trough's upper-quantile forecast of its noisy load (peaks of 1-3 requests) stays under one replica
HEARTBEAT = 5.0
HOSTILE = [
    (b"NAMESPACE/glm", b'{"v":1,"deployment":"NAMESPACE/glm","ts":TS,"step":1,"load":1e300}'),
    (b"NAMESPACE/glm", b'{"v":1,"deployment":"NAMESPACE/glm","ts":TS,"step":1,"load":NaN}'),
    (b"NAMESPACE/glm", b'{"v":1,"deployment":"NAMESPACE/glm","ts":TS,"step":1,"load":-5}'),
    (b"NAMESPACE/glm", b'{"v":2,"deployment":"NAMESPACE/glm","ts":TS,"step":1,"load":1}'),
    (b"NAMESPACE/glm", b'{"v":1,"deployment":"NAMESPACE/gl'),
    (b"NAMESPACE/glm", b"\x00\xff garbage"),
    (b"NAMESPACE/ghost", b'{"v":1,"deployment":"NAMESPACE/ghost","ts":TS,"step":1,"load":3}'),
    (b"other/glm", b'{"v":1,"deployment":"NAMESPACE/glm","ts":TS,"step":1,"load":3}'),
    (None, b"[]"),
]


# A day modelled in 60 s: the load's timing, its rate and so the quantile forecast follow the CPU,
# and the trough window the assertions read is a few seconds wide. Exclusive (no other e2e test beside
# it) so a neighbour's load cannot move the trough forecast across a replica boundary.
@pytest.mark.exclusive
def test_floor_leads_the_daily_surge_through_restart_and_hostile_records(
        testenv, kube, namespace, operator, predictive_deployment, sim_engine, pipeline, daily_cycle, tmp_path):
    import kubernetes
    from kafka import KafkaConsumer, KafkaProducer

    name = predictive_deployment(per_replica=PER_REPLICA, horizon_seconds=LEAD)
    engine = sim_engine(namespace=namespace, deployment=name, max_running=256)
    topic = f"autoglm.load.{namespace}"
    kafka_env = {"AUTOGLM_KAFKA_TOPIC": topic}
    predictor_flags = ["--step-seconds=1", "--bucket-seconds=2", f"--season-seconds={DAY:.0f}", "--decision-seconds=1",
                       f"--heartbeat-seconds={HEARTBEAT}", "--stale-after-seconds=5", "--history-seconds=600",
                       "--retrain-seconds=10", "--no-lstm"]
    collector = pipeline("collector", "--step-seconds=1", "--rate-window=5s", "--backfill-seconds=0",
                         "--refresh-seconds=2", **kafka_env)
    predictor = pipeline("predictor", *predictor_flags, log_name="predictor-1", **kafka_env)

    trace = tmp_path / "daily.csv"
    daily_cycle(DAYS).to_csv(trace, index_label="timestamp")
    speedup = 86400 / DAY
    loadgen = pipeline_process(tmp_path, [sys.executable, "-m", "autoglm_testenv.loadgen", "--trace", str(trace),
                                          "--target", engine.url, "--speedup", f"{speedup}",
                                          "--duration", f"{DAYS * DAY}", "--max-tokens", "16",
                                          "--scale", f"{DAY / 86400}"])  # the counts are per modelled 10 min
    started = time.time()
    api = kubernetes.client.CustomObjectsApi(kube)
    audit_start = audit_offset(testenv)
    floors: list[tuple[float, int, str | None, float | None]] = []
    answered: set[tuple[str | None, str]] = set()  # (forecaster, calibration kind) of fresh forecasts
    calibrations: list[str] = []  # status.forecast.calibration of fresh forecasts, in order
    scaled: list[tuple[float, int]] = []  # (time, ScaledObject minReplicaCount)
    restarted = False
    injected = False
    while time.time() - started < DAYS * DAY + 1:
        status = api.get_namespaced_custom_object("autoglm.io", "v1alpha1", namespace, "autoglmdeployments", name)
        forecast = (status.get("status") or {}).get("forecast")
        if forecast:
            floors.append((time.time(), forecast["recommendedMinReplicas"], forecast.get("error"),
                           forecast.get("predicted")))
            if forecast.get("error") is None and forecast.get("predicted") is not None:
                answered.add((forecast.get("forecaster"), str(forecast.get("calibration")).split(" ")[0]))
                calibrations.append(str(forecast.get("calibration")))
        scaled_object = scaled_object_of(api, namespace, name)
        if scaled_object:
            scaled.append((time.time(), scaled_object["spec"]["minReplicaCount"]))
        elapsed = time.time() - started
        if elapsed > 45 and not restarted:
            predictor.kill()  # SIGKILL: no graceful commit
            time.sleep(5)
            predictor = pipeline("predictor", *predictor_flags, log_name="predictor-2", **kafka_env)
            restarted = True
        if elapsed > 90 and not injected:
            producer = KafkaProducer(bootstrap_servers=testenv.kafka_bootstrap)
            ts = str(int(time.time())).encode()
            for key, value in HOSTILE:
                value = value.replace(b"NAMESPACE", namespace.encode()).replace(b"TS", ts)
                producer.send(topic, key=key.replace(b"NAMESPACE", namespace.encode()) if key else None, value=value)
            producer.flush()
            producer.close()
            injected = True
        time.sleep(0.25)
    loadgen.wait(timeout=60)

    # Demand as Prometheus saw it (the same query the collector runs).
    result = requests.get(f"{testenv.prometheus_url}/api/v1/query_range", params={
        "query": default_load_query(namespace, name), "start": started, "end": started + DAYS * DAY, "step": "1s"},
        timeout=10).json()["data"]["result"][0]["values"]
    demand = [(float(t), float(v)) for t, v in result]
    plot(tmp_path / "daily_cycle.png", started, demand, floors, scaled)
    (tmp_path / "daily_cycle.json").write_text(json.dumps({"started": started, "demand": demand, "floors": floors}))

    # 1. On the last day, the floor is at the reactive minimum in the trough and rises to what the
    #    surge needs at least one lead time before the surge arrives.
    day_start = started + (DAYS - 1) * DAY
    needed = [(t, math.ceil(v / PER_REPLICA)) for t, v in demand if t >= day_start]
    surge_level = 2
    surge = next(t for (t, n), (_, n2) in zip(needed, needed[1:]) if n >= surge_level and n2 >= surge_level)

    def floor_at(when: float) -> int:
        return [f for t, f, *_ in floors if t <= when][-1]

    # The forecast says who answered and how its quantile was calibrated (the backtest's tracker).
    # Live calibration is on by default (pipeline/predictor.py: PredictorSettings.calibration_rate).
    assert answered and {c for _, c in answered} == {"relative-quantile-tracking"}, answered
    assert {f for f, _ in answered} <= {"linear-ar", "persistence"} and any(f == "linear-ar" for f, _ in answered)

    trough = [f for t, f, *_ in floors if day_start <= t <= surge - 2 * LEAD]
    assert trough and min(trough) == 1, f"floor never back at the minimum in the trough: {trough}; calibration {calibrations[-3:]}"
    assert floor_at(surge - LEAD) >= surge_level, (
        f"surge at +{surge - day_start:.1f}s into the day needs {surge_level}, floor one lead time before was "
        f"{floor_at(surge - LEAD)}; see {tmp_path / 'daily_cycle.png'}")
    # ... and the operator carried it into the ScaledObject ahead of the surge (within a converge).
    def scaled_at(when: float) -> int:
        return [m for t, m in scaled if t <= when][-1]

    scaled_trough = [m for t, m in scaled if day_start <= t <= surge - 2 * LEAD]
    assert scaled_trough and min(scaled_trough) == 1, f"minReplicaCount never back at 1 in the trough: {scaled_trough}"
    assert scaled_at(surge - LEAD / 2) >= surge_level, f"minReplicaCount {scaled_at(surge - LEAD / 2)} half a lead before"

    # 2. The restarted predictor resumed from committed offsets: its history has no hole across the
    #    kill, and it did not repeat a write (same floor and error state) inside the heartbeat.
    assert predictor.metric("autoglm_predictor_history_missing_steps", deployment=f"{namespace}/{name}") == 0
    key = f"{namespace}/{name}"
    writes = logged_writes(tmp_path / "predictor-1.log", key) + logged_writes(predictor.log, key)
    assert not repeated_writes(writes, HEARTBEAT)
    assert collector.metric("autoglm_collector_dependency_up", dependency="kafka") == 1

    # 2b. One writer per field and no churn: the operator wrote the ScaledObject once to create it
    #     and at most once per floor change, over ~80 resyncs; the predictor never wrote it.
    so_writes = [w for w in writes_by(testenv, operator.user, audit_start)
                 if w["objectRef"].get("resource") == "scaledobjects"]
    transitions = sum(1 for (_, f1, _), (_, f2, _) in zip(writes, writes[1:]) if f1 != f2) + 1
    assert 2 <= len(so_writes) <= 1 + transitions, (len(so_writes), transitions)
    all_so_writers = {w["user"]["username"] for w in all_writes(testenv, audit_start)
                      if w["objectRef"].get("resource") == "scaledobjects" and w["objectRef"].get("namespace") == namespace}
    assert all_so_writers - {KEDA_USER} == {operator.user}, all_so_writers  # KEDA writes its status and finalizer

    # 3. Hostile records: counted, dead-lettered, and the predictor kept going without a bad floor.
    rejected = predictor.metric("autoglm_predictor_records_rejected_total")
    assert rejected >= len(HOSTILE), predictor.metrics()
    dead = KafkaConsumer(f"{topic}.dead-letter", bootstrap_servers=testenv.kafka_bootstrap,
                         auto_offset_reset="earliest", consumer_timeout_ms=5000)
    reasons = {json.loads(m.value)["reason"] for m in dead}
    dead.close()
    assert {"bad-load", "not-json", "wrong-version", "unknown-deployment", "key-mismatch"} <= reasons
    assert all(1 <= f <= 10 for _, f, *_ in floors)
    assert time.time() - parse_time(api.get_namespaced_custom_object(
        "autoglm.io", "v1alpha1", namespace, "autoglmdeployments", name)["status"]["forecast"]["updatedAt"]).timestamp() < 30

    # 4. Kill switch: predictive off returns the ScaledObject to the spec minimum at once.
    api.patch_namespaced_custom_object("autoglm.io", "v1alpha1", namespace, "autoglmdeployments", name,
                                       {"spec": {"autoscaling": {"predictive": {"enabled": False}, "minReplicas": 2}}})
    switched = time.time()
    while scaled_object_of(api, namespace, name)["spec"]["minReplicaCount"] != 2:
        assert time.time() - switched < 10, "kill switch not applied within 10 s"
        time.sleep(0.2)


def scaled_object_of(api, namespace: str, name: str) -> dict | None:
    import kubernetes

    try:
        return api.get_namespaced_custom_object("keda.sh", "v1alpha1", namespace, "scaledobjects", name)
    except kubernetes.client.ApiException as error:
        if error.status == 404:
            return None
        raise


def all_writes(testenv, since: int) -> list[dict]:
    with open(testenv.audit_log, encoding="utf-8") as log:
        log.seek(since)
        entries = [json.loads(line) for line in log if line.strip()]
    return [e for e in entries if e.get("stage") == "ResponseComplete"
            and e["verb"] in {"create", "update", "patch", "delete"}]


def pipeline_process(log_dir: Path, argv: list[str]):
    import os
    import subprocess

    import autoglm_testenv

    env = {**os.environ, "PYTHONPATH": str(Path(autoglm_testenv.__file__).parent.parent)}
    return subprocess.Popen(argv, stdout=open(log_dir / "loadgen.log", "wb"), stderr=subprocess.STDOUT, env=env)


def plot(path: Path, started: float, demand, floors, scaled=()) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(11, 4))
    axis.plot([t - started for t, _ in demand], [v / PER_REPLICA for _, v in demand], label="demand / perReplica")
    axis.plot([t - started for t, *_, p in floors if p is not None],
              [p / PER_REPLICA for *_, p in floors if p is not None], label="status.forecast.predicted / perReplica")
    axis.step([t - started for t, *_ in floors], [f for _, f, *_ in floors], where="post",
              label="status.forecast.recommendedMinReplicas")
    if scaled:
        axis.step([t - started for t, _ in scaled], [m for _, m in scaled], where="post", ls="--",
                  label="ScaledObject minReplicaCount")
    for day in range(1, DAYS):
        axis.axvline(day * DAY, color="grey", lw=0.5)
    axis.set_xlabel("seconds (one modelled day = %.0f s)" % DAY)
    axis.set_ylabel("replicas")
    axis.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
