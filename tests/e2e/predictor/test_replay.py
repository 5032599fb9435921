"""A predictor restarted on the same consumer group replays its history window from Kafka to
rebuild the histories; the records it rejected in an earlier life are read again too. Their side
effects (a dead-letter record each, the rejected counter, whose any increase is an alert) must
not happen again: once after a crash (SIGKILL, after the commit that followed the rejections)
and once after a clean stop. Issue 15, fault 11: 12 dead letters for 6 rejects in one run
(the seek back after the first poll), 18 after a restart.
"""
from __future__ import annotations

import time

import pytest
from pipeline_support import read_topic

from autoglm_predictor.pipeline.offsets import effects_from_metadata
from autoglm_predictor.pipeline.records import LoadRecord, encode
from autoglm_testenv import procs

pytestmark = pytest.mark.e2e

REJECTS = 6
PREDICTOR_FLAGS = ["--step-seconds=1", "--bucket-seconds=2", "--season-seconds=40", "--decision-seconds=1",
                   "--heartbeat-seconds=5", "--stale-after-seconds=30", "--history-seconds=600", "--no-lstm"]


def group_watermark(bootstrap: str, topic: str, group: str) -> int:
    """The side-effect watermark the group committed for partition 0 (the deployment's only one)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        committed = consumer.committed(TopicPartition(topic, 0), metadata=True)
        return -1 if committed is None else effects_from_metadata(committed.offset, committed.metadata) or -1
    finally:
        consumer.close()


def test_a_restarted_predictor_repeats_no_dead_letter_and_no_rejection(testenv, namespace, predictive_deployment,
                                                                       pipeline) -> None:
    from kafka import KafkaProducer

    name = predictive_deployment(per_replica=4.0)
    deployment, topic, group = f"{namespace}/{name}", f"autoglm.load.{namespace}", f"replay-{namespace}"
    producer = KafkaProducer(bootstrap_servers=testenv.kafka_bootstrap)
    start = int(time.time())
    for ts in range(start - 60, start + 1):
        producer.send(topic, key=deployment.encode(), value=encode(LoadRecord(deployment, ts, 1, 6.0)))
    for i in range(REJECTS):
        producer.send(topic, key=deployment.encode(), value=f"not json {i}".encode())
    producer.send(topic, key=deployment.encode(), value=encode(LoadRecord(deployment, start + 1, 1, 6.0)))
    producer.flush()
    producer.close()
    total = 61 + REJECTS + 1

    def run(label: str):
        predictor = pipeline("predictor", *PREDICTOR_FLAGS, f"--group={group}", log_name=f"predictor-{label}",
                             AUTOGLM_KAFKA_TOPIC=topic)
        procs.wait_until(f"{label}: every record read", lambda: predictor.metric(
            "autoglm_predictor_records_consumed_total") + predictor.metric(
            "autoglm_predictor_records_replayed_total") >= total, 90, predictor.pid, predictor.log)
        return predictor

    first = run("first")
    procs.wait_until("the rejections dead-lettered and committed",
                     lambda: group_watermark(testenv.kafka_bootstrap, topic, group) >= total, 60,
                     first.pid, first.log)
    assert first.metric("autoglm_predictor_records_rejected_total") == REJECTS, first.metrics()
    assert len(read_topic(testenv.kafka_bootstrap, f"{topic}.dead-letter")) == REJECTS
    first.kill()  # a crash: no final commit

    after_crash = run("after-crash")
    assert after_crash.metric("autoglm_predictor_records_rejected_total") == 0, after_crash.metrics()
    assert after_crash.metric("autoglm_predictor_records_consumed_total") == 0  # every record a replay
    assert len(read_topic(testenv.kafka_bootstrap, f"{topic}.dead-letter")) == REJECTS
    procs.stop(after_crash.pid)  # a clean stop: commits its watermark on the way out

    after_stop = run("after-stop")
    assert after_stop.metric("autoglm_predictor_records_rejected_total") == 0, after_stop.metrics()
    assert after_stop.metric("autoglm_predictor_records_consumed_total") == 0
    letters = read_topic(testenv.kafka_bootstrap, f"{topic}.dead-letter")
    assert len(letters) == REJECTS and len({d["offset"] for d in letters}) == REJECTS, letters
