import logging
import math

import pytest

from autoglm_operator.api.queries import default_load_query
from autoglm_predictor.forecast.models import ModelSettings, choose
from autoglm_predictor.pipeline import actuation
from autoglm_operator.api.timestamps import from_epoch
from autoglm_predictor.pipeline.actuation import ForecastStatus, should_write, status_patch
from autoglm_predictor.pipeline.connections import FirstJoinCoordinatorAtDebug, KafkaSettings, SettingsError, from_environment
from autoglm_predictor.pipeline.history import History
from autoglm_predictor.pipeline.lead_time import DEFAULT_COLD_START_SECONDS, horizon_buckets, lead_time_seconds
from autoglm_predictor.pipeline.targets import target_from, targets_from
from autoglm_predictor.pipeline.predictor import no_samples_reason


def cr(predictive=None, status=None, **scaling):
    spec = {"autoscaling": {"enabled": True, **scaling}}
    if predictive is not None:
        spec["autoscaling"]["predictive"] = predictive
    return {"metadata": {"namespace": "ml", "name": "glm"}, "spec": spec, "status": status or {}}


def test_absent_or_disabled_predictive_is_not_a_target():
    assert target_from(cr()) is None
    assert target_from(cr({"enabled": False})) is None


def test_target_defaults_and_max_floor():
    target = target_from(cr({"enabled": True, "maxFloor": 3}, minReplicas=2, maxReplicas=10))
    assert (target.min_replicas, target.highest_floor, target.quantile) == (2, 3, 0.95)
    assert target.load_query == default_load_query("ml", "glm")
    assert 'autoglm_deployment="glm"' in target.load_query and "vllm:num_requests_waiting" in target.load_query


def test_a_malformed_object_is_skipped_not_fatal():
    assert list(targets_from([cr({"enabled": True, "quantile": 7}), cr({"enabled": True})])) == ["ml/glm"]


def test_lead_time_uses_the_measured_cold_start_of_the_current_revision():
    measured = target_from(cr({"enabled": True}, status={"currentRevision": "r2", "coldStartSeconds": {"r1": 900, "r2": 100}}))
    assert lead_time_seconds(measured, step_seconds=15, decision_seconds=15) == 100 + 15 + 15 + 15 + 15
    unmeasured = target_from(cr({"enabled": True}))
    assert lead_time_seconds(unmeasured, 15, 15) == DEFAULT_COLD_START_SECONDS + 60
    assert lead_time_seconds(target_from(cr({"enabled": True, "horizonSeconds": 42})), 15, 15) == 42
    assert horizon_buckets(61, 60) == 2


def test_history_dedupes_and_fills_gaps_only_with_values():
    history = History(step_seconds=10, keep_seconds=1000)
    assert history.add(100, None) and history.add(100, 4.0)
    assert not history.add(100, 5.0) and not history.add(100, None)
    history.add(130, 1.0)
    assert history.latest == (130, 1.0) and history.missing_steps() == 2


def test_history_buckets_are_complete_peaks():
    history = History(step_seconds=10, keep_seconds=10_000)
    for ts in range(110, 400, 10):
        history.add(ts, float(ts % 60))
    buckets = history.buckets(60)
    assert [int(t.timestamp()) for t in buckets.index] == [120, 180, 240, 300]
    assert list(buckets) == [50.0, 50.0, 50.0, 50.0]


def test_history_forgets_beyond_what_it_keeps():
    history = History(step_seconds=10, keep_seconds=100)
    for ts in range(0, 500, 10):
        history.add(ts, 1.0)
    assert len(history) == 11 and not history.add(0, 1.0)


def test_model_choice_grows_with_history():
    settings = ModelSettings(bucket_seconds=60, season_seconds=3600)
    assert choose(5, 5, settings, lstm_ok=True) is None
    assert choose(6, 5, settings, lstm_ok=True) == "persistence"
    assert choose(67, 5, settings, lstm_ok=True) == "persistence"  # 51 rows for 13 coefficients: too few
    assert choose(68, 5, settings, lstm_ok=True) == "linear-ar"
    assert choose(185, 5, settings, lstm_ok=False) == "linear-ar"
    assert choose(185, 5, settings, lstm_ok=True) == "lstm"


def status(floor=2, at=1000.0, error=None):
    return ForecastStatus(horizon_seconds=300, predicted=10.0, floor=floor, updated_at=from_epoch(at), error=error)


def test_writes_only_on_change_or_heartbeat():
    assert should_write(None, status())
    assert not should_write(status(), status(at=1030))
    assert should_write(status(), status(floor=3, at=1001))
    assert should_write(status(), status(at=1001, error="stale"))
    assert should_write(status(), status(at=1000 + actuation.HEARTBEAT_SECONDS))


def test_patch_touches_only_status_forecast_and_round_trips():
    patch = status_patch(status(error="no samples"))
    assert list(patch) == ["status"] and list(patch["status"]) == ["forecast"]
    assert patch["status"]["forecast"]["updatedAt"] == "1970-01-01T00:16:40Z"
    assert ForecastStatus.from_status(patch["status"]["forecast"]) == status(error="no samples")
    assert status_patch(status())["status"]["forecast"]["error"] is None  # merge patch: deletes the key


def test_forecast_status_refuses_nan():
    with pytest.raises(ValueError):
        ForecastStatus(horizon_seconds=1, predicted=math.nan, floor=1, updated_at=from_epoch(0), error=None)


class Args:
    prometheus_url = kafka_bootstrap = kafka_topic = None


def test_settings_from_environment_keep_secrets_out_of_repr():
    prometheus, kafka = from_environment(Args(), {
        "AUTOGLM_PROMETHEUS_TOKEN": "s3cret", "AUTOGLM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "AUTOGLM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "AUTOGLM_KAFKA_USERNAME": "u",
        "AUTOGLM_KAFKA_PASSWORD": "p4ss", "AUTOGLM_KAFKA_CA_FILE": "/ca.crt"})
    assert "s3cret" not in repr(prometheus) and "p4ss" not in repr(kafka)
    options = kafka.client_options()
    assert options["sasl_plain_password"] == "p4ss" and options["ssl_cafile"] == "/ca.crt"
    assert kafka.topic == "autoglm.load.v1" and kafka.dead_letter_topic == "autoglm.load.v1.dead-letter"


def test_sasl_without_credentials_is_refused():
    with pytest.raises(SettingsError):
        KafkaSettings(bootstrap="k:9092", security_protocol="SASL_PLAINTEXT")


def test_live_policy_backs_off_below_the_break_even_cold_start_and_status_says_who_answered():
    from autoglm_predictor.forecast.policy import PolicyInput, PolicyState, decide
    from autoglm_predictor.pipeline.predictor import policy_config

    fast = target_from(cr({"enabled": True}, status={"currentRevision": "r", "coldStartSeconds": {"r": 20}}, maxReplicas=8))
    slow = target_from(cr({"enabled": True}, maxReplicas=8))  # unmeasured: the default cold start
    inputs = PolicyInput(now_seconds=100, forecast=[500.0], forecast_seconds=100)
    assert decide(policy_config(fast, 180, 60, 60.0), PolicyState(1), inputs)[0].min_replicas == 1
    assert decide(policy_config(slow, 180, 60, 60.0), PolicyState(1), inputs)[0].min_replicas > 1
    answered = ForecastStatus(horizon_seconds=60, predicted=5.0, floor=2, updated_at=from_epoch(0), error=None,
                              forecaster="linear-ar", calibration="quantile-tracking q0.95 rate 0.05")
    wire = status_patch(answered)["status"]["forecast"]
    assert (wire["forecaster"], wire["calibration"]) == ("linear-ar", "quantile-tracking q0.95 rate 0.05")
    assert ForecastStatus.from_status(wire) == answered


def test_old_samples_blame_a_dependency_only_after_a_stale_after_period_since_start():
    started, newest = 10_000.0, 9_000.0  # the history replayed from Kafka ends before the start
    early = no_samples_reason(newest, now=started + 60, started_at=started, stale_after_seconds=180)
    late = no_samples_reason(newest, now=started + 181, started_at=started, stale_after_seconds=180)
    assert "waiting for the collector" in early and "down?" not in early
    assert late.startswith("no load samples since") and "(collector, Prometheus or Kafka down?)" in late


def test_a_fresh_groups_not_coordinator_is_debug_but_a_later_coordinator_loss_warns(caplog):
    from kafka.errors import NotCoordinatorError, RequestTimedOutError

    logger = logging.getLogger("test.kafka.coordinator")  # the filter as on kafka-python's logger
    quiet = FirstJoinCoordinatorAtDebug()
    logger.addFilter(quiet)
    dead = "Marking the coordinator dead (node %s) for group %s: %s."
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.warning(dead, 1, "g", NotCoordinatorError())
        logger.warning(dead, 1, "g", RequestTimedOutError())
        quiet.joined = True  # the rebalance listener, on the first completed join
        logger.warning(dead, 1, "g", NotCoordinatorError())
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == ["Marking the coordinator dead (node 1) for group g: [Error 7] RequestTimedOutError.",
                      "Marking the coordinator dead (node 1) for group g: [Error 16] NotCoordinatorError."]
