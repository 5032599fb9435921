"""Predictor benchmarks against a real Kafka broker (not tests): `python -m autoglm_predictor.pipeline.bench`.

1. Ingest throughput: the predictor's poll + decode + validate + history path against a raw
   kafka-python consumer reading the same topic in the same run (records/s and the ratio).
2. Decision latency, sample time -> status written, p50/p99: a producer publishes one record per
   deployment per step in real time while the predictor decides every step (heartbeat = step, so
   every decision is written); the status write goes to an in-process fake API, so the number is
   the pipeline's own latency without the API server round trip.
3. Memory: the process's peak RSS with `--deployments` deployments, each with `--history-samples`
   samples ingested and decided (linear AR forecasts; LSTM off).
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import threading
import time
import uuid
from typing import Any

from autoglm_predictor.forecast.models import ModelSettings
from autoglm_predictor.pipeline import records
from autoglm_predictor.pipeline.connections import KafkaSettings
from autoglm_predictor.pipeline.metrics import PredictorMetrics
from autoglm_predictor.pipeline.predictor import Predictor, PredictorSettings


class FakeApi:
    """The two calls the predictor makes; writes are timed against the newest published sample."""

    def __init__(self, namespace: str, names: list[str], per_replica: float = 2.0) -> None:
        self.items = [{"metadata": {"namespace": namespace, "name": n},
                       "spec": {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 20,
                                                "target": {"perReplica": per_replica},
                                                "predictive": {"enabled": True, "horizonSeconds": 2}}},
                       "status": {}} for n in names]
        self.newest: dict[str, int] = {}
        self.latencies: list[float] = []
        self.record_latency = False

    def list_cluster_custom_object(self, *_: Any) -> dict[str, Any]:
        return {"items": self.items}

    def patch_namespaced_custom_object_status(self, group, version, namespace, plural, name, body, **_: Any) -> None:
        newest = self.newest.get(f"{namespace}/{name}")
        if self.record_latency and newest is not None:
            self.latencies.append(time.time() - newest)


def produce(bootstrap: str, topic: str, keys: list[str], samples: int, start_ts: int, step: int) -> int:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024, acks=1)
    sent = 0
    for i in range(samples):
        ts = start_ts + i * step
        for key in keys:
            load = 10 + 8 * math.sin(2 * math.pi * i / 240) + (hash(key) % 5)
            record = records.LoadRecord(deployment=key, ts=ts, step=step, load=round(load, 3))
            producer.send(topic, key=record.key, value=records.encode(record))
            sent += 1
    producer.flush()
    producer.close()
    return sent


def raw_consume(bootstrap: str, topic: str, total: int) -> float:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
                             auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=2000)
    seen, started = 0, None
    while seen < total:
        for messages in consumer.poll(timeout_ms=500).values():
            started = started or time.perf_counter()
            seen += len(messages)
    elapsed = time.perf_counter() - started
    consumer.close()
    return total / elapsed


def predictor_for(bootstrap: str, topic: str, api: FakeApi, **settings: Any) -> Predictor:
    base = dict(group=f"bench-{uuid.uuid4().hex[:6]}", collector_step_seconds=1, decision_seconds=3600,
                stale_after_seconds=3600, refresh_seconds=3600, history_seconds=30 * 86400,
                models=ModelSettings(lstm=False))
    base.update(settings)
    return Predictor(PredictorSettings(**base), KafkaSettings(bootstrap=bootstrap, topic=topic), api, PredictorMetrics())


def predictor_ingest(predictor: Predictor, total: int) -> float:
    """records/s through poll + ingest (decode, validate, history), decisions held back."""
    predictor.connect()
    seen, started = 0, None
    while seen < total:
        batches = predictor.consumer.poll(timeout_ms=500)
        if predictor.assigned is not None:
            assigned, predictor.assigned = predictor.assigned, None
            predictor._rewind(assigned)
            continue  # re-read from the rewound position
        for messages in batches.values():
            started = started or time.perf_counter()
            for message in messages:
                predictor.ingest(message)
            seen += len(messages)
    return total / (time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoglm_predictor.pipeline.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--kafka-bootstrap", required=True)
    parser.add_argument("--deployments", type=int, default=500)
    parser.add_argument("--history-samples", type=int, default=240, help="samples per deployment for ingest/memory")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    from kafka.admin import KafkaAdminClient, NewTopic

    run = uuid.uuid4().hex[:6]
    topic = f"autoglm.bench.{run}"
    admin = KafkaAdminClient(bootstrap_servers=args.kafka_bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    names = [f"glm-{i:04d}" for i in range(args.deployments)]
    keys = [f"bench/{n}" for n in names]
    api = FakeApi("bench", names)
    step = 15
    start_ts = int(time.time()) - args.history_samples * step - 60
    start_ts -= start_ts % step
    total = produce(args.kafka_bootstrap, topic, keys, args.history_samples, start_ts, step)

    raw = raw_consume(args.kafka_bootstrap, topic, total)
    predictor = predictor_for(args.kafka_bootstrap, topic, api)
    ours = predictor_ingest(predictor, total)
    decide_started = time.perf_counter()
    predictor.refresh()
    now = time.time()
    for key, state in predictor.states.items():
        predictor.decide(key, state, now)
    decide_all = time.perf_counter() - decide_started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    predictor.consumer.close(autocommit=False)
    predictor.producer.close(timeout=5)

    # Decision latency: a fresh topic, real-time samples every second, decisions every second.
    live_topic = f"{topic}.live"
    admin.create_topics([NewTopic(live_topic, num_partitions=1, replication_factor=1)])
    live_keys = keys[: min(len(keys), 100)]
    live_api = FakeApi("bench", names[: len(live_keys)])
    live = predictor_for(args.kafka_bootstrap, live_topic, live_api, decision_seconds=1.0, heartbeat_seconds=1.0,
                         stale_after_seconds=30.0, refresh_seconds=3600)
    stop = threading.Event()
    thread = threading.Thread(target=live.run, args=(stop,), daemon=True)
    thread.start()
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=args.kafka_bootstrap, linger_ms=5, acks=1)
    ended = time.time() + args.latency_seconds
    warmup = time.time() + 5
    while time.time() < ended:
        ts = int(time.time())
        for i, key in enumerate(live_keys):
            record = records.LoadRecord(deployment=key, ts=ts, step=1, load=float(5 + (ts + i) % 7))
            producer.send(live_topic, key=record.key, value=records.encode(record))
        producer.flush()
        for key in live_keys:
            live_api.newest[key] = ts
        live_api.record_latency = time.time() > warmup
        time.sleep(max(0.0, ts + 1 - time.time()))
    stop.set()
    thread.join(timeout=10)
    producer.close()
    admin.delete_topics([topic, live_topic])
    admin.close()

    result = {
        "records": total, "deployments": args.deployments,
        "raw_kafka_python_records_per_second": round(raw), "predictor_ingest_records_per_second": round(ours),
        "predictor_to_raw_ratio": round(ours / raw, 3),
        "decide_all_deployments_seconds": round(decide_all, 3),
        "peak_rss_mb": round(rss_mb, 1),
        "decision_latency_deployments": len(live_keys),
        "decision_latency_samples": len(live_api.latencies),
        "decision_latency_p50_seconds": round(percentile(live_api.latencies, 0.5), 3) if live_api.latencies else None,
        "decision_latency_p99_seconds": round(percentile(live_api.latencies, 0.99), 3) if live_api.latencies else None,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
