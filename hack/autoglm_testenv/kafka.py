"""A single-node Apache Kafka 4 broker in KRaft mode, from the Maven Central jars in the cache."""
from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

from autoglm_testenv import procs

LOG4J2 = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="out" target="SYSTEM_OUT"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console></Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="out"/></Root>
    <Logger name="kafka.server.KafkaRaftServer" level="INFO"/></Loggers>
</Configuration>
"""


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise procs.TestenvError("java not found: Kafka needs Java 17+ (Debian: apt-get install openjdk-17-jre-headless)")
    return java


def server_properties(root: Path, port: int, controller_port: int) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={root / 'kafka-data'}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "num.network.threads=2",
            "num.io.threads=2",
            "auto.create.topics.enable=true",
            "",
        ]
    )


def start(libs: Path, root: Path, port: int, controller_port: int) -> int:
    """Format the storage unless it already is (a restart keeps its data) and start the broker."""
    conf = root / "kafka"
    conf.mkdir(parents=True, exist_ok=True)
    props = conf / "server.properties"
    props.write_text(server_properties(root, port, controller_port))
    log4j = conf / "log4j2.xml"
    log4j.write_text(LOG4J2)
    java = _java()
    classpath = f"{libs}/*"
    jvm = ["-Xms256m", "-Xmx512m", f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath]
    if not (root / "kafka-data" / "meta.properties").exists():
        fmt = subprocess.run(
            [java, *jvm, "kafka.tools.StorageTool", "format", "-t", str(uuid.uuid4()), "-c", str(props), "--ignore-formatted"],
            capture_output=True,
            text=True,
        )
        if fmt.returncode != 0:
            raise procs.TestenvError(f"kafka: formatting the storage failed:\n{fmt.stdout}{fmt.stderr}")
    return procs.start("kafka", [java, *jvm, "kafka.Kafka", str(props)], root / "logs")


def broker_ready(bootstrap: str) -> bool:
    """True once the broker answers metadata requests (a port alone opens before that)."""
    from kafka import KafkaAdminClient  # the venv's kafka-python; imported late so `down` needs none

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        admin.list_topics()
        return True
    finally:
        admin.close()


class Broker:
    """A broker of a test's own, for fault tests that stop and restart Kafka without disturbing the
    shared one: `stop` and `start` again keep its ports and data (a restart, not a new cluster)."""

    def __init__(self, libs: Path, root: Path) -> None:
        self.libs, self.root = libs, root
        self.port, self.controller_port = procs.free_port(), procs.free_port()
        self.pid = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> None:
        self.pid = start(self.libs, self.root, self.port, self.controller_port)
        procs.wait_until("the dedicated Kafka broker", lambda: broker_ready(self.bootstrap), timeout, self.pid,
                         self.root / "logs" / "kafka.log")

    def stop(self) -> None:
        if self.pid:
            procs.stop(self.pid)
            self.pid = 0
