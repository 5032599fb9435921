"""Dependencies failing under the running pipeline, on a dedicated Prometheus or Kafka broker so
other tests are not disturbed: Prometheus stopped (the collector backs off, says so in its
/metrics, and recovers); Kafka stopped for a while (the collector backs off and later publishes
every missed step, the predictor decays the floor to the reactive minimum on its own, and
forecasts are fresh again soon after Kafka returns), then restarted quickly (no crash, no
repeated write); and a predictor started on hours of backlog (it catches up before deciding, so
it never writes an old floor). Recovery times are measured and printed."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from pipeline_support import logged_writes, repeated_writes

from autoglm_operator.api.timestamps import parse_time
from autoglm_predictor.pipeline import records
from autoglm_testenv import config, kafka, procs, prometheus

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


# The predictor as in the daily-cycle test: 1 s steps and decisions, 2 s buckets, stale after 5 s.
HEARTBEAT = 5
PREDICTOR_FLAGS = ["--step-seconds=1", "--bucket-seconds=2", "--season-seconds=40", "--decision-seconds=1",
                   f"--heartbeat-seconds={HEARTBEAT}", "--stale-after-seconds=5", "--no-lstm"]


@pytest.fixture(scope="module")
def dedicated_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kafka.Broker]:
    """A broker of this module's own: stopping it leaves the shared one alone."""
    broker = kafka.Broker(config.binaries().kafka_libs, tmp_path_factory.mktemp("own-kafka"))
    yield broker
    broker.stop()


@pytest.fixture
def own_kafka(dedicated_broker: kafka.Broker) -> kafka.Broker:
    """The dedicated broker, running (a test that failed while it was stopped leaves it stopped)."""
    if not (dedicated_broker.pid and procs.alive(dedicated_broker.pid)):
        dedicated_broker.start()
    return dedicated_broker


def forecast_of(kube, namespace: str, name: str) -> dict:
    import kubernetes

    obj = kubernetes.client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "autoglm.io", "v1alpha1", namespace, "autoglmdeployments", name)
    return (obj.get("status") or {}).get("forecast") or {}


def fresh(forecast: dict, within: float = 3 * HEARTBEAT) -> bool:
    """A forecast written recently and without an error (stale decays carry one)."""
    return bool(forecast) and not forecast.get("error") and time.time() - parse_time(forecast["updatedAt"]).timestamp() < within


def hold_requests(url: str, count: int) -> None:
    """`count` requests that stay running for minutes: a steady load of `count` (running + waiting)."""
    def one() -> None:
        try:
            requests.post(f"{url}/v1/completions", json={"prompt": "hold", "max_tokens": 32768}, timeout=900)
        except requests.RequestException:  # the engine stops at the end of the test
            pass

    for _ in range(count):
        threading.Thread(target=one, daemon=True).start()


def steps_on_topic(bootstrap: str, topic: str, key: str) -> set[int]:
    """The `ts` of every record of `key` on the (one-partition) topic, read up to its end."""
    from kafka import KafkaConsumer, TopicPartition

    partition = TopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=10000)
    try:
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        end = consumer.end_offsets([partition], timeout_ms=10000)[partition]
        seen: set[int] = set()
        deadline = time.time() + 30
        while consumer.position(partition, timeout_ms=5000) < end and time.time() < deadline:
            for messages in consumer.poll(timeout_ms=1000).values():
                seen |= {records.decode(m.key, m.value, time.time()).ts for m in messages if m.key == key.encode()}
        return seen
    finally:
        consumer.close(autocommit=False, timeout_ms=5000)


def test_kafka_outage_decays_to_reactive_then_recovers_and_survives_a_quick_restart(
        kube, namespace, predictive_deployment, sim_engine, pipeline, own_kafka):
    name = predictive_deployment(per_replica=2)
    engine = sim_engine(namespace=namespace, deployment=name)
    hold_requests(engine.url, 6)
    key, topic = f"{namespace}/{name}", f"autoglm.load.{namespace}"
    env = {"AUTOGLM_KAFKA_BOOTSTRAP": own_kafka.bootstrap, "AUTOGLM_KAFKA_TOPIC": topic}
    collector = pipeline("collector", "--step-seconds=1", "--rate-window=5s", "--backfill-seconds=0",
                         "--refresh-seconds=2", **env)
    predictor = pipeline("predictor", *PREDICTOR_FLAGS, "--history-seconds=600", **env)
    # The load is 6 at 2 per replica: 3 replicas (more while the upper quantile still carries the ramp).
    wait("a fresh forecast above minReplicas",
         lambda: fresh(f := forecast_of(kube, namespace, name)) and f["recommendedMinReplicas"] >= 2, 90)

    # (a) Kafka gone for a while.
    own_kafka.stop()
    stopped = time.time()
    # Samples stop: stale after 5 s, then the floor falls 2 replicas per 1 s decision.
    wait("the predictor decaying the floor to minReplicas with the reason in status.forecast.error",
         lambda: (f := forecast_of(kube, namespace, name)).get("error") and f["recommendedMinReplicas"] == 1, 20)
    decayed = time.time() - stopped
    wait("the collector reporting Kafka down",  # its producer's delivery timeout is 10 s
         lambda: collector.metric("autoglm_collector_dependency_up", dependency="kafka") == 0, 40)
    detected = time.time() - stopped
    assert "no load samples since" in forecast_of(kube, namespace, name)["error"]
    failures = collector.metric("autoglm_collector_dependency_failures_total", dependency="kafka")
    assert collector.metric("autoglm_collector_backoff_seconds") > 0
    time.sleep(max(0.0, 25 - (time.time() - stopped)))
    # Backing off (and each attempt waits for the producer's delivery timeout): a few attempts, not one per step.
    assert collector.metric("autoglm_collector_dependency_failures_total", dependency="kafka") - failures <= 4

    own_kafka.start()
    back = time.time()  # the broker answers metadata requests again
    wait("the collector publishing again",
         lambda: collector.metric("autoglm_collector_dependency_up", dependency="kafka") == 1, 60)
    collector_back = time.time() - back
    wait("a fresh forecast again", lambda: fresh(f := forecast_of(kube, namespace, name), within=2)
         and f["recommendedMinReplicas"] >= 2, 90)
    recovered = time.time() - back
    assert collector.metric("autoglm_collector_steps_caught_up_total") >= 10
    print(f"\nKafka outage of {back - stopped:.0f} s: floor at minReplicas (stale) after {decayed:.1f} s, collector "
          f"reporting Kafka down after {detected:.1f} s; once the broker answered again: collector publishing in "
          f"{collector_back:.1f} s, fresh forecast above minReplicas in {recovered:.1f} s")

    # (b) A quick restart under the running pipeline.
    own_kafka.stop()
    restarted = time.time()
    own_kafka.start()
    broker_restart = time.time() - restarted
    answered = time.time()
    wait("a fresh forecast written after the quick restart", lambda: fresh(f := forecast_of(kube, namespace, name))
         and parse_time(f["updatedAt"]).timestamp() >= int(answered), 90)
    print(f"quick Kafka restart (broker down {broker_restart:.1f} s): fresh forecast again "
          f"{time.time() - answered:.1f} s after the broker answered")
    time.sleep(2)  # the collector's last catch-up lands

    # Neither process crashed; every step instant is on the topic; no write repeated inside the heartbeat.
    assert procs.alive(collector.pid) and procs.alive(predictor.pid)
    assert "decision round failed" not in predictor.log.read_text()
    steps = steps_on_topic(own_kafka.bootstrap, topic, key)
    missing = sorted(set(range(min(steps), max(steps) + 1)) - steps)
    assert not missing, f"{len(missing)} step instants never published, e.g. {missing[:5]}"
    writes = logged_writes(predictor.log, key)
    assert not repeated_writes(writes, HEARTBEAT), writes
    assert predictor.metric("autoglm_predictor_status_writes_total", result="error") == 0


def test_backlog_is_caught_up_before_the_first_decision(namespace, predictive_deployment, pipeline, own_kafka):
    from kafka import KafkaProducer

    name = predictive_deployment(per_replica=2)
    key, topic = f"{namespace}/{name}", f"autoglm.load.{namespace}.backlog"
    hours, recent = 3, 60
    producer = KafkaProducer(bootstrap_servers=own_kafka.bootstrap, linger_ms=20, batch_size=256 * 1024)

    def send(ts: int, load: float) -> None:
        record = records.LoadRecord(deployment=key, ts=ts, step=1, load=load)
        producer.send(topic, key=record.key, value=records.encode(record))

    # Hours of a busy load (it would need the maximum floor, 10) ending a minute ago, then quiet (floor 1).
    now = int(time.time())
    for ts in range(now - hours * 3600, now + 1):
        send(ts, 19.0 if ts < now - recent else 1.0)
    producer.flush()
    backlog = hours * 3600 + 1
    stop = threading.Event()

    def live() -> None:  # the collector's part from here on: one quiet sample per second
        last = now
        while not stop.wait(0.2):
            for ts in range(last + 1, int(time.time()) + 1):
                send(ts, 1.0)
                last = ts
            producer.flush()

    feeder = threading.Thread(target=live, daemon=True)
    feeder.start()
    try:
        started = time.time()
        predictor = pipeline("predictor", *PREDICTOR_FLAGS, f"--history-seconds={hours * 3600 + 600}",
                             AUTOGLM_KAFKA_BOOTSTRAP=own_kafka.bootstrap, AUTOGLM_KAFKA_TOPIC=topic)
        # This predictor's own first write, from its log. Not status.forecast.updatedAt: every
        # predictor in the cluster lists every predictive deployment, so one of another test
        # running beside this one (its collector publishes this deployment's load too) may write
        # there first, seconds before this one has caught up.
        wait("the predictor's first decision", lambda: logged_writes(predictor.log, key), 90)
        first = time.time() - started
        consumed = predictor.metric("autoglm_predictor_records_consumed_total")
        # A heartbeat later (the floor holds at 1), decided on the live samples after the backlog.
        wait("the predictor's heartbeat write", lambda: len(logged_writes(predictor.log, key)) >= 2, 3 * HEARTBEAT)
    finally:
        stop.set()
        feeder.join(timeout=5)
        producer.close()
    print(f"\nbacklog of {backlog} records ({hours} h at 1 s): first decision {first:.1f} s after the predictor "
          f"started (process start, replay and catch-up included)")
    assert consumed >= backlog
    # Every write is a fresh decision on the newest samples: no stale decay from replaying old
    # samples, and never the busy hours' floor. (A write is logged once the API server accepted it.)
    writes = logged_writes(predictor.log, key)
    assert all(floor == 1 and not stale for _, floor, stale in writes), writes
    assert predictor.metric("autoglm_predictor_status_writes_total", result="error") == 0
