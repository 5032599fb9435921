"""Helpers the pipeline e2e tests share: status writes read back from the predictor's log."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

# The collector and predictor list every predictive AutoGLMDeployment in the cluster
# (autoglm_predictor.pipeline.targets.list_targets): a running pipeline publishes the load of, and
# writes status.forecast into, every predictive deployment, also another test's. So the tests that
# run a pipeline (tests/e2e/conftest.py adds them) and the tests that own a predictive deployment
# form one xdist group: pytest-xdist's `--dist loadgroup` runs a group's tests one at a time.
PREDICTIVE = pytest.mark.xdist_group("predictive")

WRITE = re.compile(r"^(\S+ \S+) INFO autoglm_predictor.pipeline.predictor: (\S+): floor (\d+) \(predicted \S+ over \d+ s, (.*)\) in")


def logged_writes(log: Path, key: str) -> list[tuple[float, int, bool]]:
    """(time, floor, stale) per status write to deployment `key` ("namespace/name"), from the
    predictor's log (one line per write). A predictor serves every predictive deployment it can
    list, so on a shared cluster its log also holds writes to other tests' deployments."""
    out = []
    for line in log.read_text().splitlines():
        match = WRITE.match(line)
        if match and match[2] == key:
            when = time.mktime(time.strptime(match[1].split(",")[0], "%Y-%m-%d %H:%M:%S"))
            out.append((when, int(match[3]), not match[4].startswith("forecast peak")))
    return out


def repeated_writes(writes: list[tuple[float, int, bool]], heartbeat: float) -> list[tuple[float, float, int]]:
    """Writes that repeat the previous floor and error state inside the heartbeat: duplicates.
    (Log times are whole seconds, hence the one second of slack.)"""
    return [(t1, t2, f1) for (t1, f1, e1), (t2, f2, e2) in zip(writes, writes[1:])
            if f1 == f2 and e1 == e2 and t2 - t1 < heartbeat - 1]


def read_topic(bootstrap: str, topic: str) -> list[dict]:
    """Every JSON record on `topic` up to its end now (a topic still being written never ends, so
    reading until a quiet timeout would not either)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        out: list[dict] = []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for batch in consumer.poll(timeout_ms=1000).values():
                out += [json.loads(m.value) for m in batch if m.offset < ends[TopicPartition(topic, m.partition)]]
        return out
    finally:
        consumer.close()
