"""`autoglm predictor`: Kafka consumer group -> per-deployment history -> forecast -> policy -> status.

Two threads, one lock. The *Kafka thread* (the caller of `run`) polls, ingests records into the
per-deployment histories, handles (re)assignments and commits offsets; it is the only thread
that touches the Kafka clients (they are not thread-safe). The *decision thread* wakes at least
once a second and, every `decision_seconds`, forecasts, decides and writes `status.forecast` for
every deployment it holds. It never calls Kafka, so while the broker is gone (kafka-python
blocks in `poll`/`commit` while the group coordinator is unknown) it keeps deciding: the
histories stop growing, the newest sample ages past `stale_after_seconds`, and the floor decays
to the reactive minimum with `status.forecast.error` saying why.

`self.lock` guards what both threads share: the `states` dict and each history's contents
(written by the Kafka thread, copied by the decision thread), `targets` (re-listed by both), the
last write per deployment (`written`) and the offset ledger. It is never held across a Kafka,
Kubernetes or forecasting call, so neither thread waits on the other's I/O; a decision works on
a copy of the history. Policy, model and write bookkeeping of a deployment belong to the
decision thread alone.

Delivery is at least once: a decision round snapshots the ingested positions when it starts,
and the Kafka thread commits a snapshot only after every write of that round succeeded
(`offsets.OffsetLedger`); a write that meets 404 is no failure: the deployment was deleted, and
it gets no decisions until a refresh lists it again (`Predictor.gone`). A restarted (or newly assigned) replica first re-reads
`history_seconds` of the topic to rebuild its history, deciding only once it has caught up with
the partition's end, so a replay neither leaves a gap nor writes an old floor. A partition that
comes back in a rebalance (a Kafka restart makes the group rejoin) keeps its in-memory history
and is read on from where it was. Samples are keyed by timestamp, so duplicates and reordering
are harmless. A record's side effects (rejected counter, dead letter, log line) happen on its
first reading only, in this process or an earlier one of the group (`offsets.OffsetLedger.effects`,
committed with the offsets): a replay rebuilds histories and repeats nothing else. Replicas split the partitions; a deployment's records (key = namespace/name) all
land in one partition, so one replica writes its status.
"""
from __future__ import annotations

import base64
import json
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd
from kubernetes.client import ApiException

from autoglm_predictor.forecast.calibration import DEFAULT_RATE, LiveCalibration
from autoglm_predictor.forecast.models import LADDER, DeploymentModel, ModelSettings, lstm_available
from autoglm_predictor.forecast.policy import PolicyConfig, PolicyInput, PolicyState, decide
from autoglm_operator.api.forecast import STALENESS_WINDOW
from autoglm_operator.api.timestamps import format_time, from_epoch
from autoglm_predictor.pipeline import actuation
from autoglm_predictor.pipeline import records
from autoglm_predictor.pipeline.actuation import ForecastStatus
from autoglm_predictor.pipeline.connections import KafkaSettings, ensure_topics, quiet_first_join
from autoglm_predictor.pipeline.history import History
from autoglm_predictor.pipeline.lead_time import DEFAULT_COLD_START_SECONDS, horizon_buckets, lead_time_seconds
from autoglm_predictor.pipeline.metrics import PredictorMetrics
from autoglm_predictor.pipeline.offsets import OffsetLedger, effects_from_metadata, effects_metadata, replay_start
from autoglm_predictor.pipeline.targets import Target, list_targets

log = logging.getLogger(__name__)
# kubernetes.client.ApiException.status when the object (or its namespace) does not exist (Kubernetes
# API conventions, "HTTP Status codes": 404 StatusNotFound).
NOT_FOUND = 404


@dataclass(frozen=True)
class PredictorSettings:
    group: str = "autoglm-predictor"
    collector_step_seconds: int = 15  # only for the lead time; histories use each record's own step
    decision_seconds: float = 15.0
    heartbeat_seconds: float = actuation.HEARTBEAT_SECONDS
    stale_after_seconds: float = 180.0  # newest sample older than this: decay to the reactive minimum
    refresh_seconds: float = 30.0
    history_seconds: int = 8 * 86400  # kept per deployment, and re-read from Kafka on assignment
    break_even_cold_start_seconds: float = 0.0  # faster-starting deployments get no floor (forecast/policy.py)
    # Online quantile tracking of the upper forecast (forecast/calibration.py, as the backtest), 0 = off.
    calibration_rate: float = DEFAULT_RATE
    models: ModelSettings = field(default_factory=ModelSettings)


@dataclass
class DeploymentState:
    target: Target
    partition: Any
    history: History
    model: DeploymentModel
    policy: PolicyState
    used_sample: int | None = None  # ts of the newest sample the last written decision saw
    pending_check: tuple[Any, float] | None = None  # (bucket start, median forecast) to score later
    calibration: LiveCalibration | None = None  # online quantile tracking of the upper forecast (as the backtest)
    answered: tuple[str, str] | None = None  # (forecaster, calibration) behind the newest forecast


def policy_config(target: Target, stale_after_seconds: float, lead_seconds: float,
                  break_even_cold_start_seconds: float = 0.0) -> PolicyConfig:
    """perReplica is already the load one replica serves at the SLO, so utilisation is 1.

    The floor falls only once the need has stayed lower for one lead time (the policy's scale-down
    window): a forecast swinging bucket to bucket then holds the floor instead of flipping it, and
    on the NASA backtest the linear-AR floor had 34% fewer SLO-violation minutes for 3.8% more
    GPU-hours and 40% fewer scale events (docs/forecasting.md#scaling-policy).
    """
    return PolicyConfig(capacity_per_replica=target.per_replica, target_utilisation=1.0,
                        min_replicas=target.min_replicas, max_replicas=max(1, target.highest_floor),
                        stale_after_seconds=stale_after_seconds, scale_down_window_seconds=lead_seconds,
                        cold_start_seconds=DEFAULT_COLD_START_SECONDS if target.cold_start_seconds is None
                        else target.cold_start_seconds,
                        break_even_cold_start_seconds=break_even_cold_start_seconds)


def restored_policy(target: Target, written: ForecastStatus | None, now: float) -> PolicyState:
    """A restarted predictor continues from the floor it last wrote if that is still fresh."""
    if written is None or written.error is not None or from_epoch(now) - written.updated_at > STALENESS_WINDOW:
        return PolicyState(target.min_replicas)
    return PolicyState(written.floor)


def no_samples_reason(newest_sample: float, now: float, started_at: float, stale_after_seconds: float) -> str:
    """Why there is no forecast when the newest sample (epoch seconds) is older than stale-after.

    Within one stale-after period of the predictor's start the collector may simply not have
    published yet (`make demo` starts both at once, and the history replayed from Kafka ends where
    the previous run stopped), so that is not yet blamed on a dependency. After it, the samples
    really stopped: the collector, Prometheus or Kafka is down (tests/e2e/predictor/test_faults.py).
    The floor decays alike in both cases; only the words differ.
    """
    since = format_time(from_epoch(newest_sample))
    if now - started_at <= stale_after_seconds:
        return f"no load samples since {since} yet: waiting for the collector's first step after start"
    return f"no load samples since {since} (collector, Prometheus or Kafka down?)"


def newest(*statuses: ForecastStatus | None) -> ForecastStatus | None:
    """The latest of what this process wrote and what the API server listed (either may lag)."""
    known = [s for s in statuses if s is not None]
    return max(known, key=lambda s: s.updated_at, default=None)


def dead_letter(reason: str, error: str, message: Any) -> bytes:
    """The rejected record, base64 so any bytes survive, with where it came from."""
    value = message.value or b""
    return json.dumps({"reason": reason, "error": error[:300], "topic": message.topic,
                       "partition": message.partition, "offset": message.offset,
                       "key": base64.b64encode(message.key or b"").decode(),
                       "value": base64.b64encode(value[:records.MAX_RECORD_BYTES]).decode()}).encode()


class Predictor:
    def __init__(self, settings: PredictorSettings, kafka: KafkaSettings, kube_api: Any, metrics: PredictorMetrics,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings, self.kafka_settings, self.kube_api = settings, kafka, kube_api
        self.metrics, self.clock = metrics, clock
        self.started_at = clock()
        self.lock = threading.Lock()
        self.targets: dict[str, Target] = {}
        self.dropped: set[str] = set()  # no longer listed since the last round: their series go (`tick`)
        self.states: dict[str, DeploymentState] = {}
        self.written: dict[str, ForecastStatus] = {}  # last status.forecast written, kept across rebalances
        self.ledger = OffsetLedger()
        self.refreshed_at = -math.inf
        self.round_at = -math.inf
        self.logged_reasons: set[str] = set()
        use_lstm = settings.models.lstm and lstm_available()
        self.trainer = ThreadPoolExecutor(1, thread_name_prefix="lstm-training") if use_lstm else None
        self.consumer: Any = None
        self.producer: Any = None
        self.assigned: set[Any] | None = None  # newly assigned partitions, not yet rewound
        self.effects_pending = False  # side effects (dead letters) since the last commit

    # --- Kafka thread -------------------------------------------------------------------------
    def connect(self) -> None:
        from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer

        predictor = self
        first_join = quiet_first_join()

        class Rebalance(ConsumerRebalanceListener):
            """Called by kafka-python during `poll` (it must not block): note the change, act after the poll."""

            def on_partitions_revoked(self, revoked: Any) -> None:
                """Nothing yet: if the partitions come back (a Kafka restart), their history is kept."""

            def on_partitions_assigned(self, assigned: Any) -> None:
                first_join.joined = True  # from now on a lost coordinator is news
                predictor.assigned = set(assigned)

        options = self.kafka_settings.client_options()
        ensure_topics(self.kafka_settings, [self.kafka_settings.topic, self.kafka_settings.dead_letter_topic])
        # kafka-python 3 defaults to a 45 s session (KIP-735): a crashed replica's partitions would
        # sit unowned that long, floors unchanged. 10 s moves them promptly (broker minimum is 6 s).
        self.consumer = KafkaConsumer(group_id=self.settings.group, enable_auto_commit=False,
                                      auto_offset_reset="earliest", max_poll_records=2000,
                                      session_timeout_ms=10000, heartbeat_interval_ms=3000, **options)
        # Partitions known before the first group join, else kafka-python's assignor finds no
        # metadata yet, warns "No partition metadata for topic" and the group rebalances once more.
        self.consumer.partitions_for_topic(self.kafka_settings.topic)
        self.consumer.subscribe([self.kafka_settings.topic], listener=Rebalance())
        self.producer = KafkaProducer(acks="all", max_block_ms=2000, **options)

    def _rewind(self, assigned: set[Any]) -> None:
        """Continue held partitions where they end; re-read the history window of new ones (no gap)."""
        with self.lock:
            held = {tp: self.ledger.fed[tp] for tp in assigned if tp in self.ledger.fed}
        starts: dict[Any, int] = {}
        ends: dict[Any, int] = {}
        effects: dict[Any, int | None] = {}
        if assigned:
            ends = self.consumer.end_offsets(list(assigned))
            since = int((self.clock() - self.settings.history_seconds) * 1000)
            lookback = self.consumer.offsets_for_times({tp: since for tp in assigned})
            for tp in assigned:
                group = self.consumer.committed(tp, metadata=True)
                committed = None if group is None else group.offset
                effects[tp] = effects_from_metadata(committed, None if group is None else group.metadata)
                if tp in held:
                    committed = None
                found = lookback.get(tp)
                starts[tp] = replay_start(held.get(tp), None if found is None else found.offset, committed, ends[tp])
                self.consumer.seek(tp, starts[tp])
                log.info("assigned %s: reading from offset %d (%s, end %d)", tp, starts[tp],
                         f"held up to {held[tp]}" if tp in held else f"committed {committed}", ends[tp])
        with self.lock:
            self.states = {key: s for key, s in self.states.items() if s.partition in assigned}
            self.ledger.assigned(starts, ends, effects)

    def run(self, stop: threading.Event) -> None:
        """The Kafka loop on the calling thread, decisions on their own thread, until `stop`."""
        from kafka.errors import KafkaError

        self.connect()
        halt = threading.Event()
        decisions = threading.Thread(target=self._decide_loop, args=(halt,), name="decisions", daemon=True)
        decisions.start()
        try:
            while not stop.is_set():
                try:
                    self.consume()
                except KafkaError as error:  # the broker went away mid-call (e.g. restarting): retry, never exit
                    log.warning("Kafka call failed, retrying: %s", error)
                    stop.wait(1)
        finally:
            halt.set()
            decisions.join(timeout=30)
            try:
                self._commit_decided(final=True)  # the side-effect watermark too: a restart repeats none
                self.consumer.close(autocommit=False, timeout_ms=5000)
                self.producer.close(timeout=5)
            except KafkaError as error:  # Kafka down at shutdown: uncommitted records are read again later
                log.warning("closing the Kafka clients: %s", error)
            if self.trainer is not None:
                self.trainer.shutdown(wait=False, cancel_futures=True)

    def consume(self) -> None:
        """One poll: rewind new assignments, ingest, then commit what finished rounds decided."""
        batches = self.consumer.poll(timeout_ms=500)
        pending = self.assigned
        if pending is not None:
            # Records polled before the seek come again: duplicates, harmless. If the rewind fails,
            # the assignment stays pending and the next poll's records are re-read after it.
            self._rewind(pending)
            if self.assigned is pending:  # (kafka-python may call the listener from its network thread)
                self.assigned = None
        for messages in batches.values():
            for message in messages:
                self.ingest(message)
        try:
            assignment = self.consumer.assignment()
            positions = {tp: self.consumer.position(tp, timeout_ms=1000) for tp in assignment}
        except Exception as error:  # a rebalance or an outage in between: next poll
            log.debug("positions unavailable: %s", error)
            return
        with self.lock:
            self.ledger.ingested(positions)
        self._commit_decided()

    def _commit_decided(self, final: bool = False) -> None:
        """Commit what finished rounds decided, with the side-effect watermark as metadata; also the
        watermark alone after side effects (or when stopping), once the dead letters are delivered."""
        from kafka.structs import OffsetAndMetadata

        effects_too = final or self.effects_pending
        with self.lock:
            commits = self.ledger.to_commit(self.consumer.assignment(), effects_too)
        if not commits:
            return
        try:
            if effects_too:
                self.producer.flush(timeout=5)  # the watermark may only claim delivered dead letters
            self.consumer.commit({tp: OffsetAndMetadata(offset, effects_metadata(effects), -1)
                                  for tp, (offset, effects) in commits.items()})
        except Exception as error:  # Kafka down or a rebalance: the records are re-read later, harmlessly
            log.warning("offset commit failed (records will be re-read): %s", error)
            return
        with self.lock:
            self.ledger.was_committed(commits)
        if effects_too:
            self.effects_pending = False

    def ingest(self, message: Any) -> None:
        """Add the record to its deployment's history; count and dead-letter it on its first reading only."""
        from kafka import TopicPartition

        with self.lock:
            first = self.ledger.first_reading(TopicPartition(message.topic, message.partition), message.offset)
        (self.metrics.consumed if first else self.metrics.replayed).inc()
        try:
            record = records.decode(message.key, message.value, self.clock())
            state = self._state(record, message)
        except records.RecordError as error:
            if first:
                self.reject(error.reason, str(error), message)
            return
        with self.lock:
            added = state.history.add(record.ts, record.load)
        if first and not added:
            self.metrics.duplicates.inc()

    def _state(self, record: records.LoadRecord, message: Any) -> DeploymentState:
        """The deployment's state, created on its first record (only this thread adds states)."""
        key = record.deployment
        state = self.states.get(key)
        if state is not None:
            return state
        target = self.targets.get(key)
        if target is None and self.clock() - self.refreshed_at > 2:
            self.refresh()  # a deployment created since the last refresh
            target = self.targets.get(key)
        if target is None:
            raise records.RecordError("unknown-deployment", f"{key} is not a predictive AutoGLMDeployment")
        from kafka import TopicPartition

        with self.lock:
            written = self.written[key] = newest(self.written.get(key), ForecastStatus.from_status(target.forecast))
            state = DeploymentState(target=target, partition=TopicPartition(message.topic, message.partition),
                                    history=History(record.step, self.settings.history_seconds),
                                    model=DeploymentModel(self.settings.models, self.trainer, name=key),
                                    policy=restored_policy(target, written, self.clock()))
            self.states[key] = state
        return state

    def reject(self, reason: str, error: str, message: Any) -> None:
        self.effects_pending = True
        self.metrics.rejected.labels(reason).inc()
        if reason not in self.logged_reasons:  # once per reason: a flood must not flood the log
            self.logged_reasons.add(reason)
            log.warning("rejected record %s[%d]@%d key=%r: %s (further %s rejections are only counted)",
                        message.topic, message.partition, message.offset, (message.key or b"")[:80], error, reason)
        try:
            self.producer.send(self.kafka_settings.dead_letter_topic, key=message.key,
                               value=dead_letter(reason, error, message))
        except Exception as failure:
            log.warning("dead-letter publish failed: %s", failure)

    # --- both threads -------------------------------------------------------------------------
    def refresh(self) -> None:
        try:
            targets = list_targets(self.kube_api)
        except Exception as error:
            log.warning("listing AutoGLMDeployments failed: %s", error)
            return
        with self.lock:
            self.dropped |= self.targets.keys() - targets.keys()
            self.targets = targets
            self.refreshed_at = self.clock()
            for key, state in self.states.items():
                # A deployment no longer listed (or `gone`) keeps its history but gets no
                # decisions (`tick` decides only for targets); listed again, they resume.
                if key in targets:
                    state.target = targets[key]

    # --- decision thread ----------------------------------------------------------------------
    def _decide_loop(self, halt: threading.Event) -> None:
        while not halt.wait(min(1.0, self.settings.decision_seconds)):
            try:
                self.tick()
            except Exception:  # a bug in one round must not end the decisions for good
                log.exception("decision round failed")

    def tick(self) -> None:
        """A decision round for every held deployment, once per `decision_seconds`, once caught up."""
        now = self.clock()
        if now - self.refreshed_at >= self.settings.refresh_seconds:
            self.refresh()
        with self.lock:  # only this thread sets per-deployment series, so none comes back after this
            dropped, self.dropped = self.dropped - self.targets.keys(), set()
        for key in dropped:
            self.metrics.forget(key)
        if now - self.round_at < self.settings.decision_seconds:
            return
        with self.lock:
            if not self.ledger.ready():
                return
            snapshot = self.ledger.round_started()
            due = [(key, state) for key, state in self.states.items() if key in self.targets]
        self.round_at = now
        failed = False
        for key, state in due:
            failed |= not self.decide(key, state, now)
        if not failed:
            with self.lock:
                self.ledger.round_written(snapshot)

    def decide(self, key: str, state: DeploymentState, now: float) -> bool:
        """One decision for one deployment; False when its status write failed. A 404 is no
        failure: the deployment is `gone`, and the round's offsets may be committed."""
        started = time.perf_counter()
        with self.lock:
            if self.states.get(key) is not state:  # its partition moved away meanwhile
                return True
            target, history, written = state.target, state.history.copy(), self.written.get(key)
        lead = lead_time_seconds(target, self.settings.collector_step_seconds, self.settings.decision_seconds)
        forecast, error, sample_ts = self.forecast(key, state, history, lead, now)
        config = policy_config(target, self.settings.stale_after_seconds, lead,
                               self.settings.break_even_cold_start_seconds)
        decision, state.policy = decide(config, state.policy, PolicyInput(
            now_seconds=now, forecast=forecast, forecast_seconds=sample_ts,
            observed_load=history.latest[1] if history.latest else None))
        predicted = max(forecast) if forecast else None
        forecaster, calibration = state.answered if forecast and state.answered else (None, None)
        status = ForecastStatus(horizon_seconds=lead, predicted=predicted,
                                floor=decision.min_replicas, updated_at=from_epoch(now),
                                error=(error or decision.reason) if decision.stale else None,
                                forecaster=forecaster, calibration=calibration)
        self.metrics.floor.labels(key).set(decision.min_replicas)
        self.metrics.stale.labels(key).set(int(decision.stale))
        self.metrics.missing_steps.labels(key).set(history.missing_steps())
        if predicted is not None:
            self.metrics.predicted.labels(key, str(lead)).set(predicted)
        if not actuation.should_write(written, status, self.settings.heartbeat_seconds):
            return True
        try:
            actuation.write(self.kube_api, target.namespace, target.name, status)
        except Exception as failure:
            if isinstance(failure, ApiException) and failure.status == NOT_FOUND:
                self.gone(key)
                return True
            self.metrics.writes.labels("error").inc()
            log.warning("%s: writing status.forecast failed: %s", key, failure)
            return False
        self.metrics.writes.labels("ok").inc()
        if sample_ts is not None and sample_ts != state.used_sample:
            self.metrics.decision_latency.observe(max(0.0, self.clock() - sample_ts))
            state.used_sample = sample_ts
        with self.lock:
            self.written[key] = status
        log.info("%s: floor %d (predicted %s over %d s, %s) in %.0f ms", key, decision.min_replicas,
                 "-" if predicted is None else f"{predicted:.1f}", lead, status.error or decision.reason,
                 1000 * (time.perf_counter() - started))
        return True

    def gone(self, key: str) -> None:
        """The status write met 404: the deployment or its namespace was deleted since the last
        refresh. Dropped from the targets as a refresh that no longer lists it would, at once, so
        no decision round writes (or warns, or holds back every partition's offsets) for it until
        a refresh lists it again. What this process last wrote went with the object, so a
        re-created one is written at its first decision."""
        with self.lock:
            self.targets.pop(key, None)
            self.written.pop(key, None)
        self.metrics.forget(key)
        self.metrics.writes.labels("gone").inc()
        log.info("%s: gone (404 on status write); no more decisions until it is listed again", key)

    def forecast(self, key: str, state: DeploymentState, history: History, lead: int,
                 now: float) -> tuple[list[float], str | None, float | None]:
        """(upper-quantile forecast over the lead time, why there is none, newest sample time)."""
        latest = history.latest
        if latest is None:
            return [], "no load samples received yet", None
        sample_ts = latest[0]
        if now - sample_ts > self.settings.stale_after_seconds:
            reason = no_samples_reason(sample_ts, now, self.started_at, self.settings.stale_after_seconds)
            return [], reason, sample_ts
        bucket = self.settings.models.bucket_seconds
        buckets = history.buckets(bucket)
        self._score(key, state, buckets)
        quantiles = tuple(sorted({0.5, state.target.quantile}))
        try:
            # The forecast starts where the complete buckets end, up to a bucket plus a step before now.
            reach = lead + bucket + history.step
            result = state.model.forecast(buckets, horizon_buckets(reach, bucket), quantiles, now)
        except ValueError as error:
            return [], f"forecaster failed: {error}", sample_ts
        if result is None:
            return [], f"warming up: {len(buckets)} buckets of history", sample_ts
        values, fitted = result
        self.metrics.model_age.labels(key, fitted.kind).set(now - fitted.fitted_at)
        for kind in LADDER:
            self.metrics.forecaster.labels(key, kind).set(int(kind == fitted.kind))
        upper = values[:, quantiles.index(state.target.quantile)]
        if not all(math.isfinite(x) for x in upper):
            return [], f"{fitted.kind} produced a non-finite forecast", sample_ts
        if self.settings.calibration_rate > 0:
            if state.calibration is None or state.calibration.quantile != state.target.quantile:
                state.calibration = LiveCalibration(state.target.quantile, self.settings.calibration_rate)
            upper = state.calibration.apply(buckets, upper, values[:, quantiles.index(0.5)], bucket)
            state.answered = (fitted.kind, state.calibration.describe())
        else:
            state.answered = (fitted.kind, "none")
        state.pending_check = (buckets.index[-1] + pd.Timedelta(seconds=bucket), float(values[0, 0]))
        return [float(x) for x in upper], None, sample_ts

    def _score(self, key: str, state: DeploymentState, buckets: Any) -> None:
        if state.pending_check is None:
            return
        when, predicted = state.pending_check
        if when in buckets.index and math.isfinite(buckets[when]):
            self.metrics.forecast_error.labels(key).set(abs(buckets[when] - predicted))
            state.pending_check = None
