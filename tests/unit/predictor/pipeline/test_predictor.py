"""The decision thread's rounds (`Predictor.tick` / `decide`) against an in-memory API: which write
failures fail a round (and so hold back the offsets of every partition) and which do not."""
from __future__ import annotations

import logging
from typing import Any

from kubernetes.client import ApiException

from autoglm_predictor.forecast.models import DeploymentModel, ModelSettings
from autoglm_predictor.forecast.policy import PolicyState
from autoglm_predictor.pipeline.connections import KafkaSettings
from autoglm_predictor.pipeline.history import History
from autoglm_predictor.pipeline.metrics import PredictorMetrics
from autoglm_predictor.pipeline.predictor import DeploymentState, Predictor, PredictorSettings

KEYS = ("ml/kept", "ml/doomed")


class Api:
    """The predictor's two calls; a key in `failing` gets that HTTP status on its status write, as
    the kubernetes client raises it, and a key failing with 404 is deleted: no longer listed."""

    def __init__(self) -> None:
        self.failing: dict[str, int] = {}
        self.writes: list[str] = []  # keys, one per write attempt

    def list_cluster_custom_object(self, *_: Any) -> dict[str, Any]:
        return {"items": [{"metadata": {"namespace": key.split("/")[0], "name": key.split("/")[1]},
                           "spec": {"autoscaling": {"enabled": True, "predictive": {"enabled": True}}}}
                          for key in KEYS if self.failing.get(key) != 404]}

    def patch_namespaced_custom_object_status(self, group, version, namespace, plural, name, body, **_: Any) -> None:
        key = f"{namespace}/{name}"
        self.writes.append(key)
        if key in self.failing:
            raise ApiException(status=self.failing[key], reason="test")


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def running(heartbeat_seconds: float) -> tuple[Predictor, Api, Clock]:
    """A predictor holding both deployments on partition p0 (caught up), one round per second."""
    api, clock = Api(), Clock()
    settings = PredictorSettings(decision_seconds=1, refresh_seconds=30, heartbeat_seconds=heartbeat_seconds,
                                 models=ModelSettings(lstm=False))
    predictor = Predictor(settings, KafkaSettings(bootstrap="unused:9092"), api, PredictorMetrics(), clock)
    predictor.refresh()
    for key in KEYS:
        predictor.states[key] = DeploymentState(
            target=predictor.targets[key], partition="p0", history=History(15, settings.history_seconds),
            model=DeploymentModel(settings.models, None, name=key), policy=PolicyState(1))
    predictor.ledger.assigned({"p0": 0}, {"p0": 10})
    predictor.ledger.ingested({"p0": 10})
    round_at(predictor, clock, 0, 10)
    assert sorted(api.writes) == sorted(KEYS)  # the first decision of each is written
    api.writes.clear()
    return predictor, api, clock


def round_at(predictor: Predictor, clock: Clock, seconds: float, offset: int) -> None:
    """One more decision round `seconds` later, after records up to `offset` were ingested."""
    clock.now += seconds
    predictor.ledger.ingested({"p0": offset})
    predictor.tick()


def writes_total(predictor: Predictor, result: str) -> float | None:
    return predictor.metrics.registry.get_sample_value("autoglm_predictor_status_writes_total", {"result": result})


def floor_exported(predictor: Predictor, key: str) -> float | None:
    return predictor.metrics.registry.get_sample_value("autoglm_predictor_recommended_min_replicas",
                                                       {"deployment": key})


def deployment_series(predictor: Predictor, key: str) -> list[str]:
    return [sample.name for family in predictor.metrics.registry.collect() for sample in family.samples
            if sample.labels.get("deployment") == key]


def test_a_deleted_deployment_is_dropped_at_its_404_and_the_round_still_commits(caplog):
    predictor, api, clock = running(heartbeat_seconds=1)  # every round writes every deployment
    api.failing["ml/doomed"] = 404  # deleted (or its namespace) just after the refresh
    with caplog.at_level(logging.INFO, logger="autoglm_predictor.pipeline.predictor"):
        for second in range(1, 29):  # a round every second, no refresh before 30 s
            round_at(predictor, clock, 1, 10 + second)
    assert api.writes.count("ml/doomed") == 1 and api.writes.count("ml/kept") == 28
    assert predictor.ledger.to_commit(["p0"]) == {"p0": (38, 0)}  # no round failed
    assert [(r.levelno, r.getMessage()) for r in caplog.records if "ml/doomed" in r.getMessage()] == [
        (logging.INFO, "ml/doomed: gone (404 on status write); no more decisions until it is listed again")]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert writes_total(predictor, "gone") == 1 and writes_total(predictor, "error") is None
    assert "ml/doomed" in predictor.states  # its history stays, as for a deployment a refresh no longer lists
    assert deployment_series(predictor, "ml/doomed") == [] and floor_exported(predictor, "ml/kept") == 1

    del api.failing["ml/doomed"]  # re-created under the same name
    round_at(predictor, clock, 2, 40)  # the refresh 30 s after the last lists it again
    assert api.writes.count("ml/doomed") == 2 and floor_exported(predictor, "ml/doomed") == 1


def test_a_deployment_a_refresh_no_longer_lists_stops_being_exported():
    """Deleted (or predictive turned off) between two refreshes, without a status write meeting it."""
    predictor, api, clock = running(heartbeat_seconds=60)
    assert deployment_series(predictor, "ml/doomed")  # floor, stale, missing steps, forecaster, ...
    api.failing["ml/doomed"] = 404  # no longer listed; never written again, so no 404 is met
    round_at(predictor, clock, 30, 11)  # the round that refreshes
    assert api.writes == [] and deployment_series(predictor, "ml/doomed") == []
    assert floor_exported(predictor, "ml/kept") == 1


def test_a_re_created_deployment_is_written_at_its_first_decision():
    """What was written went with the deleted object: the new one must not wait for a heartbeat."""
    predictor, api, clock = running(heartbeat_seconds=60)  # both wrote floor 1
    api.failing["ml/doomed"] = 404
    predictor.states["ml/doomed"].policy = PolicyState(5)  # a new floor (5 decaying to 3) meets the 404
    round_at(predictor, clock, 1, 11)
    assert api.writes == ["ml/doomed"]
    del api.failing["ml/doomed"]
    round_at(predictor, clock, 29, 12)  # listed again; floor 1 as written 30 s ago, to the old object
    assert api.writes == ["ml/doomed", "ml/doomed"]


def test_any_other_write_failure_still_fails_the_round():
    predictor, api, clock = running(heartbeat_seconds=1)
    api.failing["ml/doomed"] = 500
    round_at(predictor, clock, 1, 11)
    round_at(predictor, clock, 1, 12)
    assert api.writes.count("ml/doomed") == 2  # retried every round
    assert predictor.ledger.to_commit(["p0"]) == {"p0": (10, 0)}  # only the round before the failures
    assert "ml/doomed" in predictor.targets and writes_total(predictor, "error") == 2
    del api.failing["ml/doomed"]
    round_at(predictor, clock, 1, 13)
    assert predictor.ledger.to_commit(["p0"]) == {"p0": (13, 0)}
