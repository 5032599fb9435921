"""Where Prometheus, Kafka and the API server are, and how to authenticate to them.

Settings come from the environment variables the Helm chart sets (AUTOGLM_*); CLI flags may
override the non-secret ones. Secrets are never flags (they would show in `ps`) and never in a
repr (they would show in logs).
"""
from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TOPIC = "autoglm.load.v1"
DEFAULT_PROMETHEUS_URL = "http://127.0.0.1:9090"
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")

log = logging.getLogger(__name__)


class SettingsError(ValueError):
    """An unusable connection setting (message names the variable)."""


@dataclass(frozen=True)
class PrometheusSettings:
    url: str
    token: str | None = field(default=None, repr=False)
    insecure_skip_verify: bool = False

    def client(self, timeout_seconds: float = 10.0) -> Any:
        """A PrometheusConnect without its own retries: the caller's back-off decides when to retry."""
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        return PrometheusConnect(url=self.url, headers=headers, disable_ssl=self.insecure_skip_verify,
                                 retry=Retry(total=0), timeout=timeout_seconds)


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap: str
    topic: str = DEFAULT_TOPIC
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise SettingsError(f"AUTOGLM_KAFKA_SECURITY_PROTOCOL must be one of {SECURITY_PROTOCOLS}, "
                                f"got {self.security_protocol!r}")
        if self.security_protocol.startswith("SASL") and not (self.sasl_mechanism and self.username and self.password):
            raise SettingsError(f"{self.security_protocol} needs AUTOGLM_KAFKA_SASL_MECHANISM, "
                                "AUTOGLM_KAFKA_USERNAME and AUTOGLM_KAFKA_PASSWORD")

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic}.dead-letter"

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments shared by kafka-python's producer, consumer and admin client."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap.split(","),
                                   "security_protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL"):
            options.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                           sasl_plain_password=self.password)
        if self.security_protocol.endswith("SSL") and self.ca_file:
            options["ssl_cafile"] = self.ca_file
        return options


class FirstJoinCoordinatorAtDebug(logging.Filter):
    """Makes kafka-python's "Marking the coordinator dead (node N) for group G: [Error 16]
    NotCoordinatorError." a DEBUG record until the consumer has joined its group once: a fresh
    consumer group asks a broker that is not (yet) its coordinator, and this is how the client
    moves on to the right one, every first start. After the join (`joined`, set by the consumer's
    rebalance listener, which kafka-python calls on each completed join) a coordinator loss is news
    and stays a WARNING, as does any other error. The join has to be told: kafka-python's own
    "Successfully joined group" is an INFO record, never made while its loggers are at WARNING.

    The record comes from kafka-python's `kafka.coordinator` logger (kafka/coordinator/base.py,
    kafka-python 3.0: `coordinator_dead` with args (coordinator_id, group_id, error)); a logger's
    filters see only its own records, so it is installed there, as rollout/analysis.py
    `QuietQueryRetries` is on urllib3's.
    """

    def __init__(self) -> None:
        super().__init__()
        self.joined = False

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if (not self.joined and record.levelno > logging.DEBUG and str(record.msg).startswith("Marking the coordinator dead")
                and len(args) == 3 and "NotCoordinatorError" in str(args[2])):
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


_COORDINATOR_LOGGER = logging.getLogger("kafka.coordinator")


def quiet_first_join() -> FirstJoinCoordinatorAtDebug:
    """`FirstJoinCoordinatorAtDebug` on kafka-python's coordinator logger, installed once; the
    caller sets its `joined` when the group has joined."""
    for installed in _COORDINATOR_LOGGER.filters:
        if isinstance(installed, FirstJoinCoordinatorAtDebug):
            return installed
    quiet = FirstJoinCoordinatorAtDebug()
    _COORDINATOR_LOGGER.addFilter(quiet)
    return quiet


def ensure_topics(kafka: KafkaSettings, topics: Sequence[str], timeout_seconds: float = 10.0) -> list[str]:
    """Create those of `topics` that do not exist yet, wait until they have leaders, and return them.

    Why: a producer or consumer naming a missing topic relies on the broker's auto-creation (off
    in many production clusters), and until the topic exists kafka-python logs "Topic ... not
    found in cluster metadata" at ERROR on each metadata refresh. New topics get the broker's
    default partition count and replication factor (-1: KIP-464, Kafka 2.4+); a topic another
    replica created meanwhile (TopicAlreadyExistsError) counts as present.
    Raises kafka.errors.KafkaError: Kafka unreachable, topics without leaders after
    `timeout_seconds`, or a topic this client may not create (TopicAuthorizationFailedError,
    PolicyViolationError: create it beforehand, or grant this client CREATE on it).
    """
    from kafka import KafkaAdminClient
    from kafka.errors import NoError, TopicAlreadyExistsError, for_code

    timeout_ms = int(timeout_seconds * 1000)
    admin = KafkaAdminClient(request_timeout_ms=timeout_ms, **kafka.client_options())
    try:
        missing = sorted(set(topics) - set(admin.list_topics()))
        if not missing:
            return []
        response = admin.create_topics(missing, timeout_ms=timeout_ms, raise_errors=False)
        created = []
        for result in response["topics"]:
            error = for_code(result["error_code"])
            if error not in (NoError, TopicAlreadyExistsError):
                raise error(f"creating Kafka topic {result['name']}: {result.get('error_message') or error.description}")
            if error is NoError:
                created.append(result["name"])
        admin.wait_for_topics(missing, timeout_ms=timeout_ms)
    finally:
        admin.close()
    if created:
        log.info("created Kafka topics %s (broker default partitions and replication)", ", ".join(created))
    return created


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prometheus-url", default=None, help="overrides AUTOGLM_PROMETHEUS_URL")
    parser.add_argument("--kafka-bootstrap", default=None, help="overrides AUTOGLM_KAFKA_BOOTSTRAP")
    parser.add_argument("--kafka-topic", default=None, help=f"overrides AUTOGLM_KAFKA_TOPIC (default: {DEFAULT_TOPIC})")


def from_environment(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> tuple[PrometheusSettings, KafkaSettings]:
    def get(name: str) -> str | None:
        return environ.get(f"AUTOGLM_{name}") or None

    skip = (get("PROMETHEUS_INSECURE_SKIP_VERIFY") or "false").lower()
    if skip not in ("true", "false", "1", "0"):
        raise SettingsError(f"AUTOGLM_PROMETHEUS_INSECURE_SKIP_VERIFY must be true or false, got {skip!r}")
    prometheus = PrometheusSettings(url=args.prometheus_url or get("PROMETHEUS_URL") or DEFAULT_PROMETHEUS_URL,
                                    token=get("PROMETHEUS_TOKEN"), insecure_skip_verify=skip in ("true", "1"))
    kafka = KafkaSettings(bootstrap=args.kafka_bootstrap or get("KAFKA_BOOTSTRAP") or DEFAULT_KAFKA_BOOTSTRAP,
                          topic=args.kafka_topic or get("KAFKA_TOPIC") or DEFAULT_TOPIC,
                          security_protocol=get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT",
                          sasl_mechanism=get("KAFKA_SASL_MECHANISM"), username=get("KAFKA_USERNAME"),
                          password=get("KAFKA_PASSWORD"), ca_file=get("KAFKA_CA_FILE"))
    return prometheus, kafka


def kubernetes_api() -> Any:
    """CustomObjectsApi from the in-cluster service account, else KUBECONFIG / ~/.kube/config, whose
    requests have a deadline (a hung API server must not stop the decision thread for good)."""
    import kubernetes

    from autoglm_operator.api.kube_client import api_client

    return kubernetes.client.CustomObjectsApi(api_client())
