"""First start on topics that do not exist yet: the collector and the predictor create them
(connections.ensure_topics), whichever starts first, and neither logs a Kafka warning or error.
Before, the first client to name a missing topic relied on the broker's auto-creation and
kafka-python logged "Topic ... not found in cluster metadata" at ERROR on every first start, and
the predictor's first group join warned "No partition metadata for topic" (issue 13)."""
from __future__ import annotations

import re

import pytest

from autoglm_testenv import procs

pytestmark = pytest.mark.e2e

# The pipeline's log format: "<date> <time> LEVEL logger: message" (predictor/autoglm_predictor/cli/commands.py).
KAFKA_NOISE = re.compile(r" (WARNING|ERROR|CRITICAL) kafka[.\w]*: ")
FLAGS = {"collector": ["--step-seconds=1", "--backfill-seconds=0", "--refresh-seconds=2"],
         "predictor": ["--step-seconds=1", "--decision-seconds=1", "--no-lstm"]}


@pytest.mark.parametrize("first", ["collector", "predictor"])
def test_first_start_creates_the_topics_without_kafka_warnings(testenv, namespace, predictive_deployment, pipeline,
                                                               first):
    from kafka import KafkaAdminClient

    topic = f"autoglm.load.{namespace}"
    admin = KafkaAdminClient(bootstrap_servers=testenv.kafka_bootstrap)
    try:
        assert not {topic, f"{topic}.dead-letter"} & set(admin.list_topics())
        predictive_deployment()
        started = {}
        for name in sorted(FLAGS, key=lambda name: name != first):
            started[name] = pipeline(name, *FLAGS[name], AUTOGLM_KAFKA_TOPIC=topic)
            if name == "collector":  # it has used the topic before the predictor starts, or after it
                collector = started[name]
                procs.wait_until("records published", lambda: collector.metric(
                    "autoglm_collector_records_published_total") >= 1, 60, collector.pid, collector.log)
        predictor = started["predictor"]
        procs.wait_until("records consumed", lambda: predictor.metric(
            "autoglm_predictor_records_consumed_total") >= 3, 60, predictor.pid, predictor.log)
        assert {topic, f"{topic}.dead-letter"} <= set(admin.list_topics())
    finally:
        admin.close()
    for component in started.values():
        noise = [line for line in component.log.read_text().splitlines() if KAFKA_NOISE.search(line)]
        assert not noise, f"{component.name}:\n" + "\n".join(noise)
    assert f"created Kafka topics {topic}" in started[first].log.read_text()
