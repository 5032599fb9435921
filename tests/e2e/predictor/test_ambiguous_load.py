"""A load query without aggregation against the real Prometheus: two engine processes of one
deployment (two pods) make `target.query` answer two series. The collector refuses the answer
instead of publishing whichever series Prometheus lists first (issue 15 fault 10): the steps
reach Kafka as gaps (load null), the refusal is counted per signal, and the engine context
queries, which aggregate, still publish their numbers."""
from __future__ import annotations

import time

import pytest
from canary_support import prometheus_series
from pipeline_support import read_topic

from autoglm_testenv import procs

pytestmark = pytest.mark.e2e


def test_a_load_query_answering_one_series_per_pod_is_published_as_gaps(testenv, namespace, predictive_deployment,
                                                                       sim_engine, pipeline) -> None:
    per_pod = f'vllm:num_requests_running{{namespace="{namespace}",autoglm_deployment="glm"}}'
    name = predictive_deployment(query=per_pod)
    for revision in ("r1", "r2"):
        sim_engine(namespace=namespace, deployment=name, revision=revision)
    procs.wait_until("both pods scraped", lambda: len(prometheus_series(testenv.prometheus_url, per_pod)) == 2, 30)
    both = time.time() + 1  # steps from here on see two series
    topic = f"autoglm.load.{namespace}"
    collector = pipeline("collector", "--step-seconds=1", "--rate-window=5s", "--backfill-seconds=0",
                         "--refresh-seconds=2", AUTOGLM_KAFKA_TOPIC=topic)
    procs.wait_until("a refusal counted", lambda: collector.metric("autoglm_collector_ambiguous_answers_total",
                                                                   signal="load") >= 3, 60,
                     collector.pid, collector.log)
    # (A collector lists every predictive deployment it may read: other tests' records share nothing but the topic name pattern.)
    published = [r for r in read_topic(testenv.kafka_bootstrap, topic) if r["deployment"] == f"{namespace}/{name}" and r["ts"] >= both]
    assert published and all(r["load"] is None for r in published), published[:3]
    assert any(r.get("ready_replicas") == 2 for r in published), published[-3:]
    assert collector.metric("autoglm_collector_dependency_up", dependency="prometheus") == 1
    assert sum('the load query is refused' in line for line in collector.log.read_text().splitlines()) == 1
