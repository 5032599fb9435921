"""A burst of generated hostile records (tests/strategies.py) on the real topic of a running predictor.

Valid one-second records keep the deployment's forecast alive while a few hundred hostile ones
arrive (any bytes, NaN, huge and negative numbers, wrong versions and types, other deployments,
truncated and deeply nested JSON). The predictor stays alive, counts every record it must refuse
as rejected, and the floor it writes stays a whole number >= 1 with a finite forecast. (The
daily-cycle test injects a fixed handful of hostile records into a full run; this one is wide.)
"""
from __future__ import annotations

import math
import threading
import time

import pytest
from strategies import examples, hostile_records

from autoglm_predictor.pipeline.records import LoadRecord, RecordError, decode, encode
from autoglm_testenv import procs

pytestmark = pytest.mark.e2e

BURST = 300
PREDICTOR_FLAGS = ["--step-seconds=1", "--bucket-seconds=2", "--season-seconds=40", "--decision-seconds=1",
                   "--heartbeat-seconds=5", "--stale-after-seconds=10", "--history-seconds=600", "--no-lstm"]


def _refused(key: bytes | None, value: bytes | None, deployment: str, now: float) -> bool:
    """What the predictor must reject: undecodable records and records for other deployments."""
    try:
        return decode(key, value, now).deployment != deployment
    except RecordError:
        return True


def test_a_burst_of_hostile_records_is_rejected_and_never_reaches_the_floor(testenv, kube, namespace,
                                                                            predictive_deployment, pipeline) -> None:
    import kubernetes
    from kafka import KafkaProducer

    name = predictive_deployment(per_replica=4.0, horizon_seconds=6)
    deployment, topic = f"{namespace}/{name}", f"autoglm.load.{namespace}"
    producer = KafkaProducer(bootstrap_servers=testenv.kafka_bootstrap)
    start = int(time.time())
    for ts in range(start - 120, start + 1):  # two minutes of history: load 6 to 10
        producer.send(topic, key=deployment.encode(), value=encode(LoadRecord(deployment, ts, 1, 6.0 + ts % 5)))
    producer.flush()
    stop = threading.Event()

    def collector() -> None:  # one valid record a second, like the collector
        while not stop.wait(1.0):
            ts = int(time.time())
            producer.send(topic, key=deployment.encode(), value=encode(LoadRecord(deployment, ts, 1, 6.0 + ts % 5)))

    feeder = threading.Thread(target=collector, daemon=True)
    feeder.start()
    try:
        predictor = pipeline("predictor", *PREDICTOR_FLAGS, AUTOGLM_KAFKA_TOPIC=topic)
        api = kubernetes.client.CustomObjectsApi(kube)

        def forecast() -> dict:
            cr = api.get_namespaced_custom_object("autoglm.io", "v1alpha1", namespace, "autoglmdeployments", name)
            return (cr.get("status") or {}).get("forecast") or {}

        procs.wait_until("a first forecast", lambda: bool(forecast()), 90, predictor.pid, predictor.log)
        before = predictor.metric("autoglm_predictor_records_rejected_total")
        burst = [(k, v if k is not None or v is not None else b"") for k, v in examples(hostile_records(deployment, start), BURST)]
        sent_at = time.time()
        for key, value in burst:
            producer.send(topic, key=key, value=value)
        producer.flush()
        must_reject = sum(_refused(key, value, deployment, sent_at) for key, value in burst)

        seen = []
        deadline = time.time() + 60
        while time.time() < deadline:
            seen.append(forecast())
            if predictor.metric("autoglm_predictor_records_rejected_total") - before >= must_reject and len(seen) > 20:
                break
            time.sleep(0.5)
    finally:
        stop.set()
        feeder.join(timeout=5)
        producer.close()

    rejected = predictor.metric("autoglm_predictor_records_rejected_total") - before
    print(f"hostile burst: {len(burst)} sent, {must_reject} to reject, {rejected:.0f} rejected")
    assert procs.alive(predictor.pid), procs.log_tail(predictor.log, 60)
    assert must_reject <= rejected <= len(burst), (must_reject, rejected, procs.log_tail(predictor.log, 60))
    floors = [f["recommendedMinReplicas"] for f in seen if f]
    predicted = [f.get("predicted") for f in seen if f and f.get("predicted") is not None]
    assert floors and all(isinstance(f, int) and 1 <= f <= 10 for f in floors), floors
    assert all(math.isfinite(p) and p >= 0 for p in predicted), predicted
