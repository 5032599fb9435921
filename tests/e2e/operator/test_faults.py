"""Faults (issue 9): the API server SIGKILLed while the operator works, the operator SIGKILLed at
random points of a canary rollout. Expected: the operator survives the API server's absence (no
exit, no crash loop), nothing decided is lost, repeated or rolled back (canary weights only move
forward), and everything converges within a time measured and printed here (docs/benchmarks.md).

The module runs its own environment (`testenv` is overridden below): killing an API server must
never disturb the session's, which other tests share. Steps last 3-4 s so the file stays short.
"""
from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from canary_support import NAME, Traffic, canary_cr, live_route, revision_of
from operator_support import apply, children, condition, example, gpu_quota, resource, wait_for, wait_for_condition

import autoglm_testenv
from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.reconcile.diff import object_key
from autoglm_operator.render.desired import desired_objects
from autoglm_operator.rollout.canary import ACTIVE
from autoglm_testenv import Env, procs
from autoglm_testenv.components import install_crds

# One worker runs the module (pytest-xdist --dist loadgroup), so it starts one environment of its own.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("operator-faults")]

NEW_MODEL = "zai-org/GLM-4-9B-0414-v2"
BATCH = 12  # new resources reconciled while the API server dies (12 GPUs: fits on the test cluster's GPU nodes)
OUTAGE_SECONDS = 6.0
# Measured on the 2-core machine: 11-13 s after an API server restart (kopf's 10 s handler retry),
# 0.3-1 s after an operator restart; the bound leaves room for a loaded machine.
RECOVERY_BOUND = 30.0
BASE_SEED = 9_2026  # operator kill points: random.Random(BASE_SEED + i), printed, so a failure replays
# What the environment serves: KEDA, Istio and KubeEdge CRDs are all installed.
SERVED = Capabilities(keda=True, istio=True, kubeedge=True)


@pytest.fixture(scope="module")
def testenv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A dedicated environment for this module, stopped at the end even when a test failed."""
    try:
        env = autoglm_testenv.up(tmp_path_factory.mktemp("faults-env"))
    except autoglm_testenv.TestenvError as exc:
        pytest.fail(f"the fault tests' environment could not start: {exc}", pytrace=False)
    try:
        yield env
    finally:
        autoglm_testenv.down(env)


@pytest.fixture(scope="module")
def kube(testenv: Env) -> Any:
    return testenv.api_client()


@pytest.fixture(scope="module")
def autoglm_crd(testenv: Env) -> None:
    """The CRDs, as the session fixture installs them; retried, since `kubectl wait` right after
    the apply can find no conditions yet on a fresh API server and fail."""
    procs.wait_until("the AutoGLMDeployment CRD established", lambda: install_crds(testenv) is None, 60)


@pytest.fixture(scope="module")
def restarts() -> list[float]:
    """Monotonic times the API server came back, until the controller manager is seen working again."""
    return []


@pytest.fixture(autouse=True)
def controller_manager_back(testenv: Env, restarts: list[float]) -> None:
    """After an API server restart, before the next test: wait until the controller manager works
    again (a new namespace gets its default ServiceAccount). Its watches come back with a client-go
    backoff of their own (13-59 s measured), which the next test's namespace must not run into.
    Waited for here rather than after the test, so the module's last outage costs nothing."""
    if not restarts:
        return
    probe = f"probe-{random.randrange(16**6):06x}"
    testenv.kubectl("create", "namespace", probe)
    wait_for("the controller manager back (a default ServiceAccount)", lambda: testenv.kubectl(
        "get", "sa", "default", "-n", probe, check=False).returncode == 0, 120)
    testenv.kubectl("delete", "namespace", probe, "--wait=false")
    print(f"controller manager working again {time.monotonic() - restarts[-1]:.1f}s after the API server restart")
    restarts.clear()


@pytest.fixture
def api_server_outage(testenv: Env, restarts: list[float]) -> Callable[[], float]:
    """`outage()` SIGKILLs the API server, keeps it down for OUTAGE_SECONDS and starts it again
    (same port, etcd and keys); it returns the monotonic time /readyz answered again."""
    def outage() -> float:
        testenv.kill_apiserver()
        time.sleep(OUTAGE_SECONDS)
        testenv.start_apiserver()
        restarts.append(time.monotonic())
        return restarts[-1]

    return outage


class RouteLog:
    """The canary's share of the live VirtualService over time, (weight, mirror), 100 once promoted.

    Polled every 0.2 s; polls that fail (API server down) leave no entry."""

    def __init__(self, kube: Any, namespace: str, stable: str, canary: str) -> None:
        self.kube, self.namespace, self.stable, self.canary = kube, namespace, stable, canary
        self.states: list[tuple[float, tuple[int, int]]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> RouteLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)

    def current(self) -> tuple[int, int] | None:
        return self.states[-1][1] if self.states else None

    def poll_once(self) -> tuple[int, int] | None:
        try:
            weights, mirror = live_route(self.kube, self.namespace)
        except Exception:  # noqa: BLE001 - API server down, or the route is being rewritten
            return None
        state = (weights.get(self.canary, 0), mirror) if self.stable in weights else (100, 0)
        with self._lock:
            if state != self.current():
                self.states.append((time.monotonic(), state))
        return state

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(0.2)

    def progress_since(self, since: float) -> float | None:
        """Seconds from `since` to the first route change after it."""
        return next((t - since for t, _ in self.states if t > since), None)

    def assert_forward_only(self, steps: list[tuple[int, int]]) -> None:
        """Every state seen is a step of the rollout (or promotion) and none comes before one already seen."""
        order = [(0, 0), *steps, (100, 0)]
        seen = [state for _, state in self.states]
        unknown = [s for s in seen if s not in order]
        assert not unknown, f"route states outside the rollout {unknown}; seen {seen}"
        positions = [order.index(s) for s in seen]
        assert positions == sorted(positions), f"canary weights went backwards: {seen}"
        assert seen[-1] == (100, 0), f"never promoted: {seen}"


def _steps(cr: dict[str, Any]) -> list[tuple[int, int]]:
    return [(s.get("weight", 0), s.get("mirror", 0)) for s in cr["spec"]["rollout"]["steps"]]


def _events(testenv: Env, namespace: str) -> list[dict[str, Any]]:
    return testenv.kubectl_json("get", "events", "-n", namespace, "--field-selector",
                                f"involvedObject.kind=AutoGLMDeployment,involvedObject.name={NAME}")["items"]


def _assert_each_decision_once(testenv: Env, namespace: str, new: str) -> None:
    """Every step, and the promotion, decided (and announced) at most once; the rollout recorded once."""
    rollout = [(e["reason"], e["message"]) for e in _events(testenv, namespace)
               if e["reason"].startswith("Canary") and new in e["message"]]
    repeated = {key: n for key, n in Counter(rollout).items() if n > 1}
    assert not repeated, f"decisions announced more than once: {repeated}"
    # Not "exactly once": an operator killed right after recording a decision may not have posted
    # its Event yet (kopf posts them from a queue); the status history is the durable record.
    history = resource(testenv, namespace, NAME)["status"]["canary"]["history"]
    assert [(h["revision"], h["result"]) for h in history] == [(new, "Promoted")], history


def _assert_promoted_like_without_faults(testenv: Env, kube: Any, namespace: str, new: str) -> None:
    """The end state of a fault-free rollout (test_canary.py): the new revision alone."""
    cr = wait_for_condition(testenv, namespace, NAME, "Ready", "True", timeout=30)
    assert cr["status"]["currentRevision"] == new and cr["status"]["canary"]["phase"] == "Promoted"
    assert live_route(kube, namespace) == ({new: 100}, 0)
    wait_for("the old revision retired", lambda: {n for k, n in children(testenv, namespace, NAME)
                                                  if k == "Deployment"} == {f"{NAME}-{new}"}, 60)


def _stable_with_engine(testenv: Env, namespace: str, sim_engine: Any, **rollout: Any) -> tuple[dict, str, str, dict]:
    """A canary-enabled resource Ready on its first revision, and engines for it and the next one."""
    # Lenient bounds: these tests are about faults of the control plane, and a canary judged slow
    # on a loaded 2-core machine would roll back for reasons that are not theirs.
    analysis = {"prometheusAddress": testenv.prometheus_url, "successRateMin": 0.9, "ttftP95MaxSeconds": 5.0}
    cr = canary_cr(namespace, testenv.prometheus_url, analysis=analysis, failureLimit=3, **rollout)
    apply(testenv, cr)
    old = wait_for_condition(testenv, namespace, NAME, "Ready", "True")["status"]["currentRevision"]
    engines = {old: sim_engine(namespace=namespace, deployment=NAME, revision=old).url}
    cr["spec"]["model"]["name"] = NEW_MODEL
    new = revision_of(cr)
    engines[new] = sim_engine(namespace=namespace, deployment=NAME, revision=new).url
    return cr, old, new, engines


def _kill(process: Any) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    procs.wait_until(f"{process.name} to exit", lambda: not procs.alive(process.pid), 10)


def test_api_server_killed_while_a_batch_is_reconciled(testenv: Env, namespace: str, operator, api_server_outage) -> None:
    crs = []
    for i in range(BATCH):
        cr = example("01-minimal.yaml", namespace)
        cr["metadata"]["name"] = f"glm-{i}"
        crs.append(cr)
    testenv.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": crs}))
    pid = operator.pid

    def statuses() -> list[dict[str, Any]]:
        return [cr.get("status", {}) for cr in testenv.kubectl_json("get", "autoglmdeployments", "-n", namespace)["items"]]

    wait_for("the operator midway through the batch", lambda: any(s.get("observedGeneration") for s in statuses()), 30)
    reconciled = sum(1 for s in statuses() if s.get("observedGeneration"))
    restarted = api_server_outage()
    assert procs.alive(pid), "the operator exited while the API server was down"

    def all_ready() -> bool:
        items = testenv.kubectl_json("get", "autoglmdeployments", "-n", namespace)["items"]
        return len(items) == BATCH and all(
            any(c["type"] == "Ready" and c["status"] == "True" for c in cr.get("status", {}).get("conditions", []))
            for cr in items)

    wait_for(f"all {BATCH} resources Ready after the restart", all_ready, 120)
    converged = time.monotonic() - restarted
    assert converged < RECOVERY_BOUND, f"converged {converged:.1f}s after the restart"
    assert operator.pid == pid and procs.alive(pid), "the operator restarted or exited"
    assert procs.http_ok(f"http://127.0.0.1:{operator.health_port}/healthz")
    for cr in crs:
        name = cr["metadata"]["name"]
        want = {object_key(obj) for obj in desired_objects(cr, SERVED)}
        assert set(children(testenv, namespace, name)) == want, name
    print(f"API server down {OUTAGE_SECONDS:.0f}s with {reconciled}/{BATCH} resources reconciled: "
          f"all {BATCH} Ready {converged:.1f}s after the restart")


def _set_pods_ready(testenv: Env, namespace: str, revision: str, ready: bool) -> None:
    """Flip the Ready condition of a revision's pods, as the node lifecycle controller does for a
    node whose heartbeats lapse (kwok leaves a pod's status alone once it runs)."""
    status = "True" if ready else "False"
    for pod in testenv.kubectl_json("get", "pods", "-n", namespace, "-l", f"autoglm.io/revision={revision}")["items"]:
        testenv.kubectl("patch", "pod", pod["metadata"]["name"], "-n", namespace, "--subresource=status",
                        "--type=strategic", "-p", json.dumps({"status": {"conditions": [{"type": "Ready", "status": status}]}}))


def test_serving_pods_not_ready_for_a_while_keep_traffic_and_their_deployment(
        testenv: Env, namespace: str, operator) -> None:
    """The mechanism of a CI flake of test_revision.py: the serving revision's pod
    turned NotReady (a node flap on a loaded machine) while a GPU quota held the new revision back;
    the operator switched to the new revision and pruned the old Deployment, leaving nothing to serve."""
    gpu_quota(testenv, namespace, 1)
    cr = example("01-minimal.yaml", namespace)
    apply(testenv, cr)
    old = wait_for_condition(testenv, namespace, NAME, "Ready", "True")["status"]["currentRevision"]
    cr["spec"]["model"]["name"] = NEW_MODEL
    apply(testenv, cr)
    wait_for_condition(testenv, namespace, NAME, "Ready", "False", "RolloutInProgress")
    wait_for("the quota to hold the new pod back", lambda: any(
        "exceeded quota" in c.get("message", "") for d in testenv.kubectl_json("get", "deployments", "-n", namespace)["items"]
        for c in d["status"].get("conditions", [])), 30)

    _set_pods_ready(testenv, namespace, old, False)
    wait_for("the old Deployment without a Ready pod (or gone)", lambda: not children(testenv, namespace, NAME).get(
        ("Deployment", f"{NAME}-{old}"), {}).get("status", {}).get("readyReplicas"), 30)
    time.sleep(5)  # a few 2 s resyncs with nothing Ready anywhere
    deployments = {n for k, n in children(testenv, namespace, NAME) if k == "Deployment"}
    assert f"{NAME}-{old}" in deployments, "the Deployment of the serving model was pruned"
    assert resource(testenv, namespace, NAME)["status"]["currentRevision"] == old
    vs = children(testenv, namespace, NAME)[("VirtualService", NAME)]
    assert [r["destination"]["subset"] for r in vs["spec"]["http"][0]["route"]] == [old]

    _set_pods_ready(testenv, namespace, old, True)
    back = wait_for("the old revision Ready again", lambda: (lambda cr: cr if cr["status"].get("readyReplicas") == 1
                                                             else None)(resource(testenv, namespace, NAME)), 30)
    assert back["status"]["currentRevision"] == old
    assert condition(back, "Ready")["reason"] == "RolloutInProgress"


def _kill_right_after_a_route_write(testenv: Env, process: Any, timeout: float = 30) -> None:
    """SIGKILL the operator as soon as the audit log shows it wrote the VirtualService: mid-converge,
    after the children followed a decision and (unless it was recorded first) before its status write.
    The log is tailed every few milliseconds: a converge takes only tens of them."""
    deadline = time.monotonic() + timeout
    with open(testenv.audit_log, encoding="utf-8") as audit:
        audit.seek(0, os.SEEK_END)
        pending = ""
        while time.monotonic() < deadline:
            pending += audit.read()
            *lines, pending = pending.split("\n")
            for line in lines:
                if "virtualservices" in line and process.user in line:
                    entry = json.loads(line)
                    if entry["verb"] in ("patch", "create") and entry["user"]["username"] == process.user:
                        _kill(process)
                        return
            time.sleep(0.003)
    pytest.fail(f"no VirtualService write by the operator within {timeout:.0f}s")


def _recorded_route(canary: dict[str, Any] | None) -> tuple[int, int] | None:
    """(weight, mirror) that status.canary says the VirtualService has: 100 once promoted, 0 once
    rolled back or before any canary."""
    canary = canary or {}
    if canary.get("phase") == "Promoted":
        return (100, 0)
    return (canary.get("weight", 0), canary.get("mirror", 0)) if canary.get("phase") in ACTIVE else (0, 0)


@pytest.mark.parametrize("seed", range(3))
def test_operator_killed_at_random_points_of_a_rollout(
        testenv: Env, namespace: str, operator, kube, sim_engine, seed: int) -> None:
    rng = random.Random(BASE_SEED + seed)
    print(f"seed {BASE_SEED + seed}")
    cr, old, new, engines = _stable_with_engine(testenv, namespace, sim_engine, intervalSeconds=3)
    # 4 steps of 3 s plus start-up: kill at a random time, then right after the first route write
    # that follows another random time; down for up to 2 s each.
    kills = sorted(rng.uniform(0.5, 12.0) for _ in range(2))
    downs = [rng.uniform(0.0, 2.0) for _ in kills]
    resumed: list[float] = []
    with Traffic(kube, namespace, engines), RouteLog(kube, namespace, old, new) as log:
        time.sleep(2)
        apply(testenv, cr)
        applied = time.monotonic()
        for i, (at, down) in enumerate(zip(kills, downs)):
            time.sleep(max(0.0, applied + at - time.monotonic()))
            if i == 0:
                _kill(operator)
            else:
                _kill_right_after_a_route_write(testenv, operator)
            # What the killed operator acted on was recorded: the live route is never ahead of the status.
            # A decision is recorded before the children follow it, so a kill between the two leaves the
            # live route exactly one step behind the recorded one (the restarted operator applies it).
            live, canary = log.poll_once(), resource(testenv, namespace, NAME)["status"].get("canary")
            recorded = _recorded_route(canary)
            order = [(0, 0), *_steps(cr), (100, 0)]
            assert live == recorded or (live in order and recorded in order
                                        and order.index(recorded) - order.index(live) == 1), (
                f"the operator died with route {live} applied but {recorded} recorded: {canary}")
            time.sleep(down)
            operator.start()
            restarted = time.monotonic()
            wait_for("the restarted operator reconciling", lambda: operator.metric("autoglm_operator_reconciles_total") > 0, 30)
            resumed.append(time.monotonic() - restarted)
        wait_for("the canary promoted", lambda: log.current() == (100, 0), 90)
        took = log.states[-1][0] - applied
    assert took < 4 * 3 + RECOVERY_BOUND, f"the rollout took {took:.1f}s"
    log.assert_forward_only(_steps(cr))
    _assert_each_decision_once(testenv, namespace, new)
    _assert_promoted_like_without_faults(testenv, kube, namespace, new)
    print(f"seed {BASE_SEED + seed}: killed at {', '.join(f'{k:.1f}s' for k in kills)} (down "
          f"{', '.join(f'{d:.1f}s' for d in downs)}); reconciling again {', '.join(f'{r:.1f}s' for r in resumed)} "
          f"after each restart; promoted {took:.1f}s after the change; route {[s for _, s in log.states]}")


def test_api_server_killed_during_a_canary_step_continues_from_that_step(
        testenv: Env, namespace: str, operator, kube, sim_engine, api_server_outage) -> None:
    cr, old, new, engines = _stable_with_engine(testenv, namespace, sim_engine, intervalSeconds=4)
    pid = operator.pid
    with Traffic(kube, namespace, engines), RouteLog(kube, namespace, old, new) as log:
        time.sleep(2)  # stable traffic in Prometheus first
        apply(testenv, cr)
        wait_for("a weighted step", lambda: (log.current() or (0, 0))[0] >= 5, 60)
        held = log.current()
        restarted = api_server_outage()  # a reset to weight 0 on restart would show in the route log
        wait_for("the canary promoted", lambda: log.current() == (100, 0), 90)
        resumed = log.progress_since(restarted)
        promoted = log.states[-1][0] - restarted
    # Three more 4 s intervals (25, 50, promotion) were due at most; a stalled timer took a minute.
    assert promoted < 3 * 4 + RECOVERY_BOUND / 2, f"promoted {promoted:.1f}s after the restart"
    assert operator.pid == pid and procs.alive(pid), "the operator restarted or exited"
    log.assert_forward_only(_steps(cr))
    _assert_each_decision_once(testenv, namespace, new)
    _assert_promoted_like_without_faults(testenv, kube, namespace, new)
    print(f"API server down {OUTAGE_SECONDS:.0f}s at canary weight {held[0]}%: next step {resumed:.1f}s and "
          f"promotion {promoted:.1f}s after the restart; route {[s for _, s in log.states]}")
