"""Canary rollouts against the real API server (real Istio, Gateway API and InferencePool CRDs) and the
real Prometheus, which scrapes one simulated engine per revision labelled like the PodMonitor
relabelling of docs/rollouts.md. The full canary, the rollback and the restart run on every
traffic provider (`provider`: a VirtualService, an HTTPRoute to Services, an HTTPRoute to InferencePools).

Steps last 5 s here (intervalSeconds) so the whole file runs in a few minutes.
"""
from __future__ import annotations

import json
import time

import pytest
from canary_support import NAME, PROVIDERS, ROUTE_API, RouteVersions, Traffic, canary_cr, live_route, revision_of
from operator_support import (
    apply, audit_offset, children, condition, describe, gpu_quota, resource, wait_for, wait_for_condition, writes_by,
)

from autoglm_testenv import Env

pytestmark = pytest.mark.e2e

NEW_MODEL = "zai-org/GLM-4-9B-0414-v2"


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    return request.param


def _deployments(testenv: Env, namespace: str) -> set[str]:
    """The engine Deployments (not the inference-pool provider's endpoint pickers, <name>-<revision>-epp)."""
    return {name for kind, name in children(testenv, namespace, NAME) if kind == "Deployment" and not name.endswith("-epp")}


def _deployment_uid(testenv: Env, namespace: str, name: str) -> str | None:
    found = testenv.kubectl("get", "deployment", name, "-n", namespace, "-o", "jsonpath={.metadata.uid}", check=False)
    return found.stdout.strip() or None if found.returncode == 0 else None


def _canary(testenv: Env, namespace: str) -> dict:
    return resource(testenv, namespace, NAME).get("status", {}).get("canary", {})


def _start(testenv, namespace, kube, sim_engine, provider="istio", **rollout):
    """A stable revision serving with its engine; returns (cr, old revision, engines map)."""
    cr = canary_cr(namespace, testenv.prometheus_url, provider=provider, **rollout)
    apply(testenv, cr)
    old = wait_for_condition(testenv, namespace, NAME, "Ready", "True")["status"]["currentRevision"]
    assert old == revision_of(cr)
    engines = {old: sim_engine(namespace=namespace, deployment=NAME, revision=old).url}
    return cr, old, engines


def _new_revision(cr, sim_engine, engines, namespace, model=NEW_MODEL, **settings):
    cr["spec"]["model"]["name"] = model
    new = revision_of(cr)
    engine = sim_engine(namespace=namespace, deployment=NAME, revision=new, **settings)
    engines[new] = engine.url
    return new, engine


def test_healthy_canary_walks_mirror_5_25_50_then_promotes_and_retires_the_old_revision(
        testenv: Env, namespace: str, operator, kube, sim_engine, provider) -> None:
    cr, old, engines = _start(testenv, namespace, kube, sim_engine, provider)
    new, _ = _new_revision(cr, sim_engine, engines, namespace)
    old_uid = testenv.kubectl_json("get", "deployment", f"{NAME}-{old}", "-n", namespace)["metadata"]["uid"]
    seen: list[tuple[int, int]] = []
    offset = audit_offset(testenv)
    with RouteVersions(kube, namespace, provider) as versions, Traffic(kube, namespace, engines, provider=provider):
        time.sleep(3)  # stable traffic in Prometheus first
        apply(testenv, cr)
        started = time.monotonic()

        def promoted() -> bool:
            weights, mirror = live_route(kube, namespace, provider)
            state = (weights[new], mirror) if new in weights and old in weights else None
            if state and (not seen or seen[-1] != state):
                seen.append(state)
            return resource(testenv, namespace, NAME)["status"].get("currentRevision") == new

        wait_for("the canary promoted", promoted, 90)
        took = time.monotonic() - started
        # The promotion is recorded in the status before the route follows it (a decision is never lost
        # to a crash in between), so the route is waited for, not read at once (and seen by `versions`).
        wait_for("the route follows the promotion", lambda: live_route(kube, namespace, provider) == ({new: 100}, 0), 15)
    assert [s for s in seen if s != (0, 0)] == [(0, 50), (5, 0), (25, 0), (50, 0)], (seen, _canary(testenv, namespace))
    _every_write_sums_to_100(testenv, operator, offset, versions, provider)
    cr_now = wait_for_condition(testenv, namespace, NAME, "Ready", "True")
    canary = cr_now["status"]["canary"]
    assert canary["phase"] == "Promoted" and canary["history"][0]["result"] == "Promoted"
    assert (cr_now["status"]["phase"], canary.get("traffic")) == ("Ready", "Promoted"), "the Phase and Canary columns"
    assert {c["name"] for c in canary["analysis"]} >= {"successRate", "ttftP95"}
    assert all(c["result"] == "Pass" for c in canary["analysis"]), canary["analysis"]
    # The canary's Deployment became stable (never re-created); the old one drains, then goes.
    assert f"{NAME}-{new}" in _deployments(testenv, namespace)
    wait_for("the old revision retired after the drain delay", lambda: _deployments(testenv, namespace) == {f"{NAME}-{new}"}, 90)
    events = testenv.kubectl_json("get", "events", "-n", namespace, "--field-selector",
                                  f"involvedObject.kind=AutoGLMDeployment,involvedObject.name={NAME}")["items"]
    reasons = [e["reason"] for e in events]
    assert "CanaryPromoted" in reasons and reasons.count("CanaryStep") >= 4, reasons
    print(f"rollout of 4 steps x 5 s took {took:.1f}s; old uid {old_uid}")


@pytest.mark.parametrize("fault", [{"extra_ttft_seconds": 2.5}, {"error_rate": 0.5}], ids=["slow", "failing"])
def test_bad_canary_is_rolled_back_within_failure_limit_intervals(
        testenv: Env, namespace: str, operator, kube, sim_engine, fault, provider) -> None:
    cr, old, engines = _start(testenv, namespace, kube, sim_engine, provider, drainDelaySeconds=3)
    new, engine = _new_revision(cr, sim_engine, engines, namespace)
    engine.configure(**fault)
    stable_before = testenv.kubectl_json("get", "deployment", f"{NAME}-{old}", "-n", namespace)
    offset = audit_offset(testenv)
    with RouteVersions(kube, namespace, provider) as versions, Traffic(kube, namespace, engines, provider=provider):
        time.sleep(2)
        apply(testenv, cr)
        wait_for("canary progressing", lambda: _canary(testenv, namespace).get("phase") == "Progressing", 30)
        started = time.monotonic()
        rolled = wait_for_condition(testenv, namespace, NAME, "Ready", "False", "RolledBack", timeout=60)
        took = time.monotonic() - started
    # failureLimit 2 x 5 s intervals, plus the no-data grace of a young step and a resync's slack.
    assert took < 5 * 2 + 10, took
    check = "ttftP95" if "extra_ttft_seconds" in fault else "successRate"
    ready = condition(rolled, "Ready")
    assert check + "=" in ready["message"], ready
    assert condition(rolled, "Degraded")["status"] == "True" and condition(rolled, "Degraded")["reason"] == "RolledBack"
    assert rolled["status"]["phase"] == "Degraded" and rolled["status"]["currentRevision"] == old
    weights, mirror = live_route(kube, namespace, provider)
    # The canary's 0% route may already be gone: drainDelaySeconds is only 3 s here.
    assert weights in ({old: 100, new: 0}, {old: 100}) and mirror == 0
    failing = [c for c in rolled["status"]["canary"]["analysis"] if c["result"] == "Fail"]
    assert failing and failing[0]["name"] == check and failing[0]["value"] is not None
    stable_after = testenv.kubectl_json("get", "deployment", f"{NAME}-{old}", "-n", namespace)
    assert stable_after["metadata"]["generation"] == stable_before["metadata"]["generation"], "stable untouched"
    wait_for("the canary retired", lambda: _deployments(testenv, namespace) == {f"{NAME}-{old}"}, 90)
    assert live_route(kube, namespace, provider) == ({old: 100}, 0)
    _every_write_sums_to_100(testenv, operator, offset, versions, provider)


def _every_write_sums_to_100(testenv: Env, operator, offset: int, versions: RouteVersions, provider: str) -> None:
    """Every route version the watch saw has weights summing to 100, and the watch saw at least as
    many versions as the operator's route writes the audit log recorded since `offset`."""
    plural = ROUTE_API[provider][2]
    route_writes = [w for w in describe(writes_by(testenv, operator.user, offset)) if w.startswith(("patch", "create")) and
                    w.endswith(f" {plural}/{NAME}")]
    assert route_writes and len(versions.versions) >= len(route_writes), (route_writes, versions.versions)
    assert not versions.broken(), versions.broken()


def test_canary_that_never_gets_ready_rolls_back_when_its_startup_budget_ends(
        testenv: Env, namespace: str, operator, kube, sim_engine) -> None:
    cr, old, _ = _start(testenv, namespace, kube, sim_engine, startupBudgetSeconds=12)
    cr["spec"]["resources"] = {"gpu": {"product": "NVIDIA-B300-NOT-IN-THIS-CLUSTER"}}
    apply(testenv, cr)
    start = time.monotonic()
    wait_for("canary starting", lambda: _canary(testenv, namespace).get("phase") == "Starting", 20)
    time.sleep(7)
    assert _canary(testenv, namespace)["phase"] == "Starting", "rolled back before the startup budget ended"
    rolled = wait_for_condition(testenv, namespace, NAME, "Ready", "False", "RolledBack", timeout=30)
    assert time.monotonic() - start >= 11
    assert "startupBudget" in condition(rolled, "Ready")["message"]
    assert live_route(kube, namespace)[0] == {old: 100, revision_of(cr): 0} or live_route(kube, namespace)[0] == {old: 100}


def test_operator_restart_mid_rollout_keeps_weights_and_the_step_timer(
        testenv: Env, namespace: str, operator, kube, sim_engine, provider) -> None:
    # 20 s: stopping, 4 s down and starting again take ~10 s on a loaded 2-core machine, and the
    # restarted operator converges at once; a 10 s step could end legitimately before the check.
    cr, old, engines = _start(testenv, namespace, kube, sim_engine, provider, intervalSeconds=20)
    new, _ = _new_revision(cr, sim_engine, engines, namespace)
    with Traffic(kube, namespace, engines, provider=provider):
        time.sleep(2)
        apply(testenv, cr)
        wait_for("step 2 (weight 5)", lambda: _canary(testenv, namespace).get("weight") == 5, 60)
        operator.stop()
        before = _canary(testenv, namespace)
        route_before = live_route(kube, namespace, provider)
        time.sleep(4)
        offset = audit_offset(testenv)
        operator.start()
        time.sleep(2)
        after = _canary(testenv, namespace)
        assert live_route(kube, namespace, provider) == route_before, "weights reset by the restart"
        assert after["stepStartedAt"] == before["stepStartedAt"] and after["step"] == before["step"]
        wait_for("next step", lambda: _canary(testenv, namespace).get("weight") == 25, 30)
        moved_at = time.time()
        wait_for("promoted", lambda: resource(testenv, namespace, NAME)["status"].get("currentRevision") == new, 90)
    started = time.mktime(time.strptime(before["stepStartedAt"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    # The step ended ~interval after its recorded start, not a full interval after the restart.
    assert moved_at - started < 20 + 6, (moved_at - started)

    def route_writes() -> list[str]:
        return [w for w in describe(writes_by(testenv, operator.user, offset))
                if w.startswith(f"patch {ROUTE_API[provider][2]}/")]

    # The API server logs a request at ResponseComplete, after answering it, so the promotion's
    # route write can reach the audit log after the status that shows the promotion (2 of 3 once).
    wait_for("the promotion's route write in the audit log", lambda: len(route_writes()) >= 3, 15)
    writes = describe(writes_by(testenv, operator.user, offset))
    assert len(route_writes()) == 3, writes  # 25, 50, promoted: nothing replayed
    assert not any(w.startswith(("create deployments", "patch deployments")) for w in writes), writes


def test_pause_holds_resume_continues_promote_and_abort_are_idempotent(
        testenv: Env, namespace: str, operator, kube, sim_engine) -> None:
    cr, old, engines = _start(testenv, namespace, kube, sim_engine, intervalSeconds=3)
    new, _ = _new_revision(cr, sim_engine, engines, namespace)
    with Traffic(kube, namespace, engines):
        time.sleep(2)
        apply(testenv, cr)
        wait_for("weight 5", lambda: _canary(testenv, namespace).get("weight") == 5, 40)
        testenv.kubectl("patch", "autoglmdeployment", NAME, "-n", namespace, "--type=merge",
                        "-p", json.dumps({"spec": {"rollout": {"paused": True}}}))
        paused = wait_for("Paused phase", lambda: (lambda cr: cr if cr["status"].get("phase") == "Paused" else None)(
            resource(testenv, namespace, NAME)), 15)
        assert condition(paused, "Progressing")["reason"] == "RolloutPaused"
        held = live_route(kube, namespace)
        for _ in range(4):  # several intervals
            time.sleep(2.5)
            assert live_route(kube, namespace) == held
        testenv.kubectl("patch", "autoglmdeployment", NAME, "-n", namespace, "--type=merge",
                        "-p", json.dumps({"spec": {"rollout": {"paused": False}}}))
        wait_for("resumed to weight 25", lambda: _canary(testenv, namespace).get("weight") == 25, 20)

        testenv.kubectl("annotate", "--overwrite", "autoglmdeployment", NAME, "-n", namespace,
                        "autoglm.io/rollout-action=promote:1")
        wait_for("promoted", lambda: resource(testenv, namespace, NAME)["status"].get("currentRevision") == new, 20)
        assert live_route(kube, namespace) == ({new: 100}, 0)
        testenv.kubectl("annotate", "--overwrite", "autoglmdeployment", NAME, "-n", namespace,
                        "autoglm.io/rollout-action=promote:2")
        wait_for("second promote consumed", lambda: _canary(testenv, namespace).get("lastAction") == "promote:2", 20)
        assert resource(testenv, namespace, NAME)["status"]["currentRevision"] == new
        assert live_route(kube, namespace) == ({new: 100}, 0)

        newer, _ = _new_revision(cr, sim_engine, engines, namespace, model="zai-org/GLM-4-9B-0414-v3")
        apply(testenv, cr)
        wait_for("newer canary progressing", lambda: _canary(testenv, namespace).get("revision") == newer
                 and _canary(testenv, namespace).get("phase") == "Progressing", 30)
        testenv.kubectl("annotate", "--overwrite", "autoglmdeployment", NAME, "-n", namespace,
                        "autoglm.io/rollout-action=abort:1")
        aborted = wait_for_condition(testenv, namespace, NAME, "Ready", "False", "Aborted", timeout=20)
        assert aborted["status"]["currentRevision"] == new
        assert live_route(kube, namespace) == ({new: 100, newer: 0}, 0)
        testenv.kubectl("annotate", "--overwrite", "autoglmdeployment", NAME, "-n", namespace,
                        "autoglm.io/rollout-action=abort:2")
        wait_for("second abort consumed", lambda: _canary(testenv, namespace).get("lastAction") == "abort:2", 20)
        assert _canary(testenv, namespace)["phase"] == "Aborted"


def test_a_rolled_back_canary_comes_back_as_a_new_attempt_after_a_revert_and_the_same_spec_again(
        testenv: Env, namespace: str, operator, kube, sim_engine) -> None:
    """Issue 15, fault 9: the canary's GPUs are missing (a quota of one GPU, the stable revision's), it
    rolls back; a GitOps revert to the stable spec; the quota raised; the same canary spec applied
    again must start a new attempt (a new Deployment, CanaryStarted), not show the old RolledBack."""
    gpu_quota(testenv, namespace, 1)
    cr, old, _ = _start(testenv, namespace, kube, sim_engine, startupBudgetSeconds=8)
    stable_spec = json.loads(json.dumps(cr))
    new, _ = _new_revision(cr, sim_engine, {}, namespace)
    apply(testenv, cr)
    wait_for_condition(testenv, namespace, NAME, "Ready", "False", "RolledBack", timeout=45)
    first = testenv.kubectl_json("get", "deployment", f"{NAME}-{new}", "-n", namespace)["metadata"]["uid"]

    apply(testenv, stable_spec)  # the revert
    reverted = wait_for_condition(testenv, namespace, NAME, "Ready", "True", timeout=45)
    assert reverted["status"]["canary"]["history"][0]["result"] == "RolledBack"
    wait_for("the failed canary's Deployment drained away", lambda: _deployments(testenv, namespace) == {f"{NAME}-{old}"}, 45)

    gpu_quota(testenv, namespace, 2)  # the cause fixed
    apply(testenv, cr)  # the same canary spec again
    wait_for("a new attempt of the same canary", lambda: _canary(testenv, namespace).get("phase") in ("Starting", "Progressing")
             and _canary(testenv, namespace).get("revision") == new, 30)
    second = wait_for("the canary's Deployment again", lambda: _deployment_uid(testenv, namespace, f"{NAME}-{new}"), 30)
    assert second != first
    started = testenv.kubectl_json("get", "events", "-n", namespace, "--field-selector",
                                   f"involvedObject.name={NAME},reason=CanaryStarted")["items"]
    assert len(started) == 2, [e["message"] for e in started]
    wait_for("the new attempt past its startup", lambda: _canary(testenv, namespace).get("phase") == "Progressing", 45)
