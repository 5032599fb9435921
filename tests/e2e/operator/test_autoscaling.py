"""Autoscaling switched on and off: the replica count survives the hand-over between the operator
and the autoscaler, and the autoscaler object comes and goes with the setting."""
from __future__ import annotations

import pytest
from operator_support import apply, children, example, wait_for, wait_for_condition, wait_until_quiet, writes_by
from pipeline_support import PREDICTIVE

from autoglm_operator.api.forecast import STALENESS_WINDOW_SECONDS
from autoglm_operator.api.timestamps import from_epoch
from autoglm_testenv import Env

pytestmark = pytest.mark.e2e

NAME = "glm-chat"


def test_switching_autoscaling_on_keeps_the_running_replicas(testenv: Env, namespace: str, operator) -> None:
    """Without the hand-over, server-side apply would drop `replicas` and the Deployment fall to 1."""
    cr = example("01-minimal.yaml", namespace)
    cr["spec"]["replicas"] = 3
    apply(testenv, cr)
    rev = wait_for_condition(testenv, namespace, NAME, "Ready", "True")["status"]["currentRevision"]

    cr["spec"]["autoscaling"] = {"enabled": True, "minReplicas": 1, "maxReplicas": 8}
    apply(testenv, cr)
    wait_for("the ScaledObject", lambda: ("ScaledObject", NAME) in children(testenv, namespace, NAME), 30)
    wait_until_quiet(testenv, operator.user, quiet_seconds=3)
    deployment = testenv.kubectl_json("get", "deployment", f"{NAME}-{rev}", "-n", namespace, "--show-managed-fields")
    # KEDA's HPA cannot read this ScaledObject's Prometheus (the default address resolves nowhere
    # here), so it keeps the replicas; KEDA's fallback (currentReplicasIfHigher) keeps them too.
    assert deployment["spec"]["replicas"] == 3, "the hand-over kept the running replicas"
    managers = {e["manager"] for e in deployment["metadata"]["managedFields"] if "f:replicas" in e["fieldsV1"].get("f:spec", {})}
    assert "autoglm-operator" not in managers

    cr["spec"]["autoscaling"] = {"enabled": False}
    cr["spec"]["replicas"] = 2
    apply(testenv, cr)
    wait_for("the Deployment back at spec.replicas", lambda: testenv.kubectl_json(
        "get", "deployment", f"{NAME}-{rev}", "-n", namespace)["spec"]["replicas"] == 2, 30)
    assert ("ScaledObject", NAME) not in children(testenv, namespace, NAME)


# ---------------------------------------------------------------------------------------------
# Predictive floor: status.forecast (written here through the predictor's own actuation.write)
# raises the ScaledObject's minReplicaCount; the kill switch and a stale forecast drop it again.


def _predicted_column(testenv: Env, namespace: str) -> str:
    """The PREDICTED printer column as `kubectl get` shows it (computed by the API server; an empty
    cell is blank, so the cell is cut at the header's column positions)."""
    header, row = testenv.kubectl("get", "agd", NAME, "-n", namespace).stdout.splitlines()[:2]
    return row[header.index("PREDICTED"):header.index("AGE")].strip()


def _applied_events(testenv: Env, namespace: str) -> list[str]:
    items = testenv.kubectl_json("get", "events", "-n", namespace, "--field-selector",
                                 f"involvedObject.name={NAME},reason=Applied")["items"]
    return [e["message"] for e in sorted(items, key=lambda e: e.get("eventTime") or e["metadata"]["creationTimestamp"])]


def _min_replica_count(testenv: Env, namespace: str) -> int | None:
    found = children(testenv, namespace, NAME).get(("ScaledObject", NAME))
    return None if found is None else found["spec"]["minReplicaCount"]


@PREDICTIVE
def test_forecast_floor_kill_switch_and_staleness(testenv: Env, kube, namespace: str, operator) -> None:
    import time

    import kubernetes

    from autoglm_predictor.pipeline import actuation

    api = kubernetes.client.CustomObjectsApi(kube)

    def forecast(floor: int, age: float = 0.0) -> None:
        actuation.write(api, namespace, NAME, actuation.ForecastStatus(
            horizon_seconds=360, predicted=floor * 6.0, floor=floor,
            updated_at=from_epoch(time.time() - age), error=None))

    cr = example("01-minimal.yaml", namespace)
    cr["spec"]["autoscaling"] = {"enabled": True, "minReplicas": 1, "maxReplicas": 8, "target": {"perReplica": 6},
                                 "predictive": {"enabled": True, "maxFloor": 6}}
    apply(testenv, cr)
    wait_for("the ScaledObject at the reactive minimum", lambda: _min_replica_count(testenv, namespace) == 1, 30)
    so = children(testenv, namespace, NAME)[("ScaledObject", NAME)]
    assert f'autoglm_deployment="{NAME}"' in so["spec"]["triggers"][0]["metadata"]["query"], "the forecast's query"

    forecast(4)
    wait_for("the floor from the forecast", lambda: _min_replica_count(testenv, namespace) == 4, 10)
    status = wait_for("status.autoscaling", lambda: testenv.kubectl_json("get", "agd", NAME, "-n", namespace)["status"]
                      .get("autoscaling", {}).get("minReplicas") == 4 and
                      testenv.kubectl_json("get", "agd", NAME, "-n", namespace)["status"]["autoscaling"], 10)
    assert status == {"minReplicas": 4, "forecast": "Used", "predicted": 24.0}
    assert _predicted_column(testenv, namespace) == "24"
    forecast(9)
    wait_for("the floor capped at maxFloor", lambda: _min_replica_count(testenv, namespace) == 6, 10)

    # Heartbeats with an unchanged floor cause no write of the operator.
    since = wait_until_quiet(testenv, operator.user, quiet_seconds=3)
    for _ in range(3):
        forecast(9)
        time.sleep(1.5)
    assert not [w for w in writes_by(testenv, operator.user, since) if w["objectRef"].get("resource") == "scaledobjects"]

    # Kill switch: purely reactive at once, whatever the forecast says.
    cr["spec"]["autoscaling"]["predictive"]["enabled"] = False
    apply(testenv, cr)
    wait_for("the kill switch", lambda: _min_replica_count(testenv, namespace) == 1, 10)
    cr["spec"]["autoscaling"]["predictive"]["enabled"] = True
    apply(testenv, cr)
    wait_for("the floor back", lambda: _min_replica_count(testenv, namespace) == 6, 10)

    # A forecast 4 s short of the staleness window: kept, then dropped once it expires.
    forecast(3, age=STALENESS_WINDOW_SECONDS - 4)
    wait_for("the floor from the ageing forecast", lambda: _min_replica_count(testenv, namespace) == 3, 10)
    wait_for("the stale forecast ignored", lambda: _min_replica_count(testenv, namespace) == 1, 15)
    # The column no longer shows a forecast the floor does not follow (status.forecast still holds it).
    wait_for("PREDICTED cleared", lambda: _predicted_column(testenv, namespace) == "", 10)
    status = testenv.kubectl_json("get", "agd", NAME, "-n", namespace)["status"]
    assert status["autoscaling"] == {"minReplicas": 1, "forecast": "Stale"} and status["forecast"]["predicted"] == 18.0

    # Eight floor changes, not one Event for them: only the creation and, last, a change a human made.
    cr["spec"]["autoscaling"]["maxReplicas"] = 7
    apply(testenv, cr)
    events = wait_for("the Applied Event of the edit", lambda: (lambda found: found if len(found) >= 2 else None)(
        _applied_events(testenv, namespace)), 30)
    assert len(events) == 2 and "updated ScaledObject" in events[1], events
