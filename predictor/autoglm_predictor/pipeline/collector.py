"""`autoglm collector`: Prometheus -> Kafka, one record per predictive deployment per step.

Every step instant is published exactly once *or more* (never silently skipped): a deployment's
cursor only advances after Kafka acknowledged its records, and whatever fell behind during an
outage of Prometheus or Kafka is fetched afterwards with one range query per signal. Steps older
than the catch-up limit are counted and logged as dropped, never quietly lost.

A signal whose query answers several series (a user's `target.query` without aggregation, one
series per pod) is refused, not read from its first series (`api.queries.range_values`): its
steps are published as gaps, the refusal is logged once per deployment and signal with the
series named, and `autoglm_collector_ambiguous_answers_total{signal}` counts it.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from autoglm_operator.api.queries import AmbiguousAnswer, engine_queries, range_values
from autoglm_predictor.pipeline import records
from autoglm_predictor.pipeline.connections import KafkaSettings, PrometheusSettings, ensure_topics
from autoglm_predictor.pipeline.metrics import CollectorMetrics
from autoglm_predictor.pipeline.targets import Target, list_targets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectorSettings:
    step_seconds: int = 15
    settle_seconds: float = 1.0  # let the last scrape before an instant land in Prometheus
    max_catchup_steps: int = 3600  # one range query per signal; Prometheus allows 11,000 points
    backfill_seconds: int = 300  # re-published on start: duplicates are harmless, gaps are not
    refresh_seconds: float = 15.0  # how often the deployment list is re-read
    rate_window: str = "1m"


@dataclass(frozen=True)
class Plan:
    steps: list[int]
    dropped: int  # steps older than the catch-up limit


def plan_steps(cursor: int, now: float, step: int, settle: float, max_steps: int) -> Plan:
    """Step instants from `cursor` up to the last settled one, at most `max_steps` (newest kept)."""
    last = int((now - settle) // step * step)
    if cursor > last:
        return Plan([], 0)
    count = (last - cursor) // step + 1
    dropped = max(0, count - max_steps)
    return Plan(list(range(cursor + dropped * step, last + 1, step)), dropped)


def first_cursor(now: float, step: int, backfill_seconds: int) -> int:
    return int((now - backfill_seconds) // step * step)


class Backoff:
    """Exponential back-off between failed attempts; `reset` after a success."""

    def __init__(self, initial: float = 1.0, maximum: float = 30.0) -> None:
        self.initial, self.maximum, self.delay = initial, maximum, 0.0

    def failed(self) -> float:
        self.delay = min(self.maximum, self.delay * 2 if self.delay else self.initial)
        return self.delay

    def reset(self) -> None:
        self.delay = 0.0


def values_by_ts(result: list[dict[str, Any]]) -> dict[int, float]:
    """Prometheus range (matrix) result of a one-series query -> {ts: value}; NaN/Inf dropped.
    Raises AmbiguousAnswer when the query answered several series."""
    return {int(round(ts)): max(0.0, value) for ts, value in range_values(result) if math.isfinite(value)}


def build_records(target: Target, steps: list[int], step: int, signals: dict[str, dict[int, float]]) -> list[records.LoadRecord]:
    """One record per step; a step Prometheus had no sample for carries load=None (a visible gap)."""
    load = signals.get("load", {})
    return [records.LoadRecord(deployment=target.key, ts=ts, step=step, load=load.get(ts),
                               **{name: signals[name].get(ts) for name in records.OPTIONAL_FIELDS if name in signals})
            for ts in steps]


class DependencyDown(RuntimeError):
    def __init__(self, dependency: str, error: Exception) -> None:
        super().__init__(f"{dependency}: {error}")
        self.dependency = dependency


class Collector:
    def __init__(self, settings: CollectorSettings, prometheus: PrometheusSettings, kafka: KafkaSettings,
                 kube_api: Any, metrics: CollectorMetrics, clock: Callable[[], float] = time.time) -> None:
        self.settings, self.prometheus_settings, self.kafka_settings = settings, prometheus, kafka
        self.kube_api, self.metrics, self.clock = kube_api, metrics, clock
        self.prometheus = prometheus.client()
        self.producer: Any = None
        self.targets: dict[str, Target] = {}
        self.cursors: dict[str, int] = {}
        self.refreshed_at = -math.inf
        self.backoff = Backoff()
        self.refused: set[tuple[str, str]] = set()  # (deployment, signal) whose refusal was logged

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.cycle()
                self.backoff.reset()
                self.metrics.backoff.set(0)
                wait = self.settings.step_seconds - (self.clock() - self.settings.settle_seconds) % self.settings.step_seconds
            except DependencyDown as down:
                wait = self.backoff.failed()
                self.metrics.backoff.set(wait)
                log.warning("%s unreachable, retrying in %.0f s: %s", down.dependency, wait, down)
            stop.wait(wait)
        self._close_producer(timeout=5)

    def cycle(self) -> None:
        now = self.clock()
        if now - self.refreshed_at >= self.settings.refresh_seconds:
            self._refresh(now)
        oldest = min(self.cursors.values(), default=None)
        self.metrics.lag.set(0 if oldest is None else max(0.0, now - oldest))
        for key, target in self.targets.items():
            plan = plan_steps(self.cursors[key], now, self.settings.step_seconds, self.settings.settle_seconds,
                              self.settings.max_catchup_steps)
            if plan.dropped:
                log.error("%s: %d steps older than the catch-up limit were dropped", key, plan.dropped)
                self.metrics.dropped.inc(plan.dropped)
            if not plan.steps:
                continue
            batch = build_records(target, plan.steps, self.settings.step_seconds, self._query(target, plan.steps))
            self._publish(batch)
            if len(plan.steps) > 1:
                self.metrics.caught_up.inc(len(plan.steps) - 1)
            self.cursors[key] = plan.steps[-1] + self.settings.step_seconds

    def _refresh(self, now: float) -> None:
        try:
            self.targets = list_targets(self.kube_api)
        except Exception as error:  # keep collecting the deployments we know
            self._down("kubernetes", error, raise_=False)
            return
        self.metrics.up.labels("kubernetes").set(1)
        self.refreshed_at = now
        for key in self.targets:
            self.cursors.setdefault(key, first_cursor(now, self.settings.step_seconds, self.settings.backfill_seconds))
        # Cursors of deployments missing from one listing are kept: if they come back (a listing
        # glitch, a CRD being re-applied), the steps in between are caught up instead of lost.
        self.metrics.deployments.set(len(self.targets))

    def _query(self, target: Target, steps: list[int]) -> dict[str, dict[int, float]]:
        queries = {"load": target.load_query,
                   **engine_queries(target.namespace, target.name, target.engine, self.settings.rate_window)}
        start, end = (datetime.fromtimestamp(ts, timezone.utc) for ts in (steps[0], steps[-1]))
        signals = {}
        try:
            for name, query in queries.items():
                result = self.prometheus.custom_query_range(query, start_time=start, end_time=end,
                                                            step=f"{self.settings.step_seconds}s")
                try:
                    signals[name] = values_by_ts(result)
                except AmbiguousAnswer as ambiguous:
                    self._refuse(target.key, name, str(ambiguous))
        except Exception as error:
            self._down("prometheus", error)
        self.metrics.up.labels("prometheus").set(1)
        return signals

    def _refuse(self, key: str, signal: str, reason: str) -> None:
        """An answer of several series: its steps stay gaps; logged once per deployment and signal."""
        self.metrics.ambiguous.labels(signal).inc()
        if (key, signal) not in self.refused:
            self.refused.add((key, signal))
            log.error("%s: the %s query is refused, its steps are published as gaps: %s (further refusals are "
                      "only counted)", key, signal, reason)

    def _publish(self, batch: list[records.LoadRecord]) -> None:
        try:
            if self.producer is None:
                from kafka import KafkaProducer

                ensure_topics(self.kafka_settings, [self.kafka_settings.topic])  # (again after an outage)
                self.producer = KafkaProducer(acks="all", linger_ms=5, max_block_ms=5000, request_timeout_ms=5000,
                                              delivery_timeout_ms=10000, **self.kafka_settings.client_options())
            futures = [self.producer.send(self.kafka_settings.topic, key=r.key, value=records.encode(r)) for r in batch]
            self.producer.flush(timeout=15)
            for future in futures:
                future.get(timeout=0)
        except Exception as error:
            # A fresh producer next time: kafka-python's stayed stuck on a restarted broker, and the
            # records it still buffers are published again anyway (the cursor did not move).
            self._close_producer(timeout=0)
            self._down("kafka", error)
        self.metrics.up.labels("kafka").set(1)
        self.metrics.published.inc(len(batch))

    def _close_producer(self, timeout: float) -> None:
        producer, self.producer = self.producer, None
        if producer is None:
            return
        try:
            producer.close(timeout=timeout)
        except Exception as error:  # Kafka down: the unsent steps are published again (cursor, backfill)
            log.warning("closing the Kafka producer: %s", error)

    def _down(self, dependency: str, error: Exception, raise_: bool = True) -> None:
        self.metrics.up.labels(dependency).set(0)
        self.metrics.failures.labels(dependency).inc()
        if raise_:
            raise DependencyDown(dependency, error) from error
        log.warning("%s unreachable: %s", dependency, error)
