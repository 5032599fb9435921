"""Stream-safe scale-in and switch-over (issue 18 item 3): long streaming generations survive a scale-in,
a promotion and a rollback, against the real API server, controller manager (ReplicaSets, garbage
collection), Prometheus and the operator.

kwok pods run nothing, so the termination runner (autoglm_testenv/termination.py) plays kubelet: it
runs each stopping pod's rendered preStop hook against that pod's metrics on its revision's simulated
engine and removes the pod when the hook returns, and kwok deletes it at the end of its grace period
otherwise (cold_start.py). The engine puts each stream on a serving pod and cuts the streams of a pod
removed while they run (`autoglm_testenv_streams_cut_total`). The load keeps STREAMS long streams
going (STREAM_SECONDS each) to whichever revision the live VirtualService routes them.

Two cases, the same steps: `drain-hook` (the operator as it is: the hook waits for the engine's
running and waiting gauges, the retirement for Prometheus) must cut nothing; `fixed-sleep` (the
preStop the operator rendered before, `sleep 5`, and a 5 s drainDelaySeconds, both shorter than the
streams) must cut streams, or the test could not tell the two apart. docs/benchmarks.md has the
numbers; `-s` prints them.
"""
from __future__ import annotations

import json
import random
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from canary_support import NAME, canary_cr, live_route, revision_of
from operator_support import apply, resource, wait_for, wait_for_condition

import autoglm_testenv
from autoglm_testenv import Env, cold_start, procs

pytestmark = pytest.mark.e2e

STREAMS = 8  # long streams kept going at all times
STREAM_SECONDS = (20, 30)  # each stream's decode time, drawn uniformly
DECODE_TOKENS_PER_S = 50  # the engines' (no batch slowdown, so a stream lasts exactly its tokens / 50)
FIXED_SLEEP = 5  # the baseline's preStop sleep and drainDelaySeconds
MODELS = ("zai-org/GLM-4-9B-0414", "zai-org/GLM-4-9B-0414-v2", "zai-org/GLM-4-9B-0414-v3")


class StreamLoad:
    """STREAMS workers, each streaming one long generation after another to the revision the live route
    picks (by its weights), from the first byte to `data: [DONE]`; counts the streams that ended well
    and those that broke (the client's view of a cut)."""

    def __init__(self, kube: Any, namespace: str, engines: dict[str, str]) -> None:
        self.kube, self.namespace, self.engines = kube, namespace, engines
        self.completed = self.broken = self.refused = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(STREAMS)]

    def __enter__(self) -> StreamLoad:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(STREAM_SECONDS[1] + 30)

    def _count(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                weights, _ = live_route(self.kube, self.namespace)
            except Exception:  # noqa: BLE001 - the route is being written: ask again
                time.sleep(0.2)
                continue
            revision = random.choices(list(weights), weights=list(weights.values()))[0]
            tokens = int(random.uniform(*STREAM_SECONDS) * DECODE_TOKENS_PER_S)
            body = {"prompt": "tell me a long story", "max_tokens": tokens, "stream": True}
            try:
                with requests.post(f"{self.engines[revision]}/v1/completions", json=body, stream=True,
                                   timeout=(5, 30)) as answer:
                    if answer.status_code != 200:  # no serving pod at that instant: the router would retry
                        self._count("refused")
                        time.sleep(0.2)
                        continue
                    last = b""
                    for line in answer.iter_lines():
                        last = line or last
                self._count("completed" if last == b"data: [DONE]" else "broken")
            except requests.RequestException:
                self._count("broken")


def _engine_pods(engine: str) -> dict[str, Any]:
    """The pods the engine serves on and its requests in flight per pod (none before the runner told it)."""
    return requests.get(f"{engine}/admin/pods", timeout=5).json() or {"serving": [], "inFlight": {}}


def _in_flight(engine: str) -> dict[str, int]:
    return _engine_pods(engine)["inFlight"]


def _cut(engine: str) -> float:
    text = requests.get(f"{engine}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("autoglm_testenv_streams_cut_total"))


def _pods(testenv: Env, namespace: str, revision: str) -> list[str]:
    found = testenv.kubectl_json("get", "pods", "-n", namespace, "-l", f"autoglm.io/revision={revision}")
    return [p["metadata"]["name"] for p in found["items"]]


def _act(testenv: Env, namespace: str, action: str) -> None:
    testenv.kubectl("annotate", "--overwrite", "autoglmdeployment", NAME, "-n", namespace,
                    f"autoglm.io/rollout-action={action}:{uuid.uuid4().hex[:6]}")


def _switch(testenv: Env, namespace: str, cr: dict[str, Any], model: str, engines: dict[str, str], stable: str,
            canary: str, action: str, retired: str) -> None:
    """Start a canary of `model` (its one step: 50%), wait until both revisions stream, then `action`
    it (promote or abort) and wait until the revision that lost its traffic is retired, pods and all."""
    cr["spec"]["model"]["name"] = model
    apply(testenv, cr)
    wait_for("streams on both revisions", lambda: sum(_in_flight(engines[canary]).values()) >= 2
             and sum(_in_flight(engines[stable]).values()) >= 2, 120)
    _act(testenv, namespace, action)
    wait_for(f"revision {retired} retired and its pod stopped", lambda: not _pods(testenv, namespace, retired)
             and resource(testenv, namespace, NAME)["status"].get("currentRevision") == (canary if action == "promote" else stable),
             150)


@pytest.fixture
def kubelet_termination(testenv: Env, namespace: str) -> None:
    """The namespace's pods stop the kubelet way (cold_start.py); refuses an environment started before that existed."""
    kwok_config = Path(testenv.root) / "kwok.yaml"
    assert cold_start.GRACEFUL_DELETE_STAGE in kwok_config.read_text(), (
        "this test environment's kwok deletes every pod at once: it was started before "
        "cold_start.GRACEFUL_DELETE_STAGE existed; run with AUTOGLM_TESTENV_REUSE=0 or restart the environment")
    testenv.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": cold_start.policy()}))
    testenv.kubectl("patch", "namespace", namespace, "--type=merge", "-p", json.dumps(cold_start.termination_patch()))


@pytest.mark.parametrize("mode", ["drain-hook", "fixed-sleep"])
def test_long_streams_survive_scale_in_promotion_and_rollback(
        testenv: Env, namespace: str, operator, kube, sim_engine, kubelet_termination, tmp_path: Path, mode: str) -> None:
    baseline = mode == "fixed-sleep"
    drain = {"drainDelaySeconds": FIXED_SLEEP} if baseline else {"drainDelaySeconds": 60}
    cr = canary_cr(namespace, testenv.prometheus_url, model=MODELS[0],
                   runtime={"drainSeconds": FIXED_SLEEP} if baseline else None,
                   steps=[{"weight": 50}], intervalSeconds=3600, **drain)
    cr["spec"]["replicas"] = 3
    cr["spec"]["traffic"] = {"timeoutSeconds": 60}  # the drain budget: longer than any stream
    revisions = []
    for model in MODELS:
        cr["spec"]["model"]["name"] = model
        revisions.append(revision_of(cr))
    stable, promoted, rolled_back = revisions
    engines = {rev: sim_engine(namespace=namespace, deployment=NAME, revision=rev, max_running=64, batch_slowdown=0,
                               decode_tokens_per_s=DECODE_TOKENS_PER_S).url for rev in revisions}
    runner = [sys.executable, "-m", "autoglm_testenv.termination", "--namespace", namespace, "--name", NAME,
              *(arg for rev, url in engines.items() for arg in ("--engine", f"{rev}={url}")),
              *(["--prestop-sleep", str(FIXED_SLEEP)] if baseline else [])]
    hack = str(Path(autoglm_testenv.__file__).parent.parent)
    runner_pid = procs.start("termination", runner, tmp_path, {"KUBECONFIG": str(testenv.kubeconfig), "PYTHONPATH": hack})
    started = time.monotonic()
    try:
        cr["spec"]["model"]["name"] = MODELS[0]
        apply(testenv, cr)
        wait_for_condition(testenv, namespace, NAME, "Ready", "True")
        wait_for("the engine knows the 3 serving pods", lambda: len(_engine_pods(engines[stable])["serving"]) == 3, 60)
        with StreamLoad(kube, namespace, engines) as load:
            wait_for("every stream under way on the 3 pods",
                     lambda: sum(_in_flight(engines[stable]).values()) == STREAMS
                     and all(_in_flight(engines[stable]).values()), 60)

            # 1. Scale in 3 -> 1 while every pod streams.
            testenv.kubectl("patch", "autoglmdeployment", NAME, "-n", namespace, "--type=merge",
                            "-p", json.dumps({"spec": {"replicas": 1}}))
            wait_for("two pods stopped", lambda: len(_pods(testenv, namespace, stable)) == 1, 120)

            # 2. A canary at 50%, promoted by the user while both revisions stream: the old stable retires.
            cr["spec"]["replicas"] = 1
            _switch(testenv, namespace, cr, MODELS[1], engines, stable, promoted, "promote", retired=stable)
            # 3. Another canary at 50%, rolled back (aborted) by the user while both stream: the canary retires.
            _switch(testenv, namespace, cr, MODELS[2], engines, promoted, rolled_back, "abort", retired=rolled_back)
        cut = sum(_cut(url) for url in engines.values())
        retired = [e["message"] for e in testenv.kubectl_json("get", "events", "-n", namespace, "--field-selector",
                                                              f"involvedObject.name={NAME},reason=RevisionRetired")["items"]]
        print(f"\nstreams [{mode}]: {load.completed} completed, {load.broken} broken at the client, {cut:g} cut by a "
              f"stopping pod, {load.refused} refused; {time.monotonic() - started:.0f}s")
    finally:
        # The pods go through the runner too: without it kwok would hold them (and their GPUs) until
        # their grace period ends, into the next tests.
        testenv.kubectl("delete", "autoglmdeployment", NAME, "-n", namespace, "--wait=false", check=False)
        wait_for("every pod stopped", lambda: not testenv.kubectl_json("get", "pods", "-n", namespace)["items"], 120)
        procs.stop(runner_pid)
        print(f"--- termination runner log ---\n{procs.log_tail(tmp_path / 'termination.log', 60)}")
    if baseline:
        assert cut > 0 and load.broken > 0, "the fixed sleep is shorter than the streams: it must cut some"
    else:
        assert cut == 0 and load.broken == 0, f"{cut:g} streams cut, {load.broken} broken"
        assert load.completed >= STREAMS
        assert len(retired) == 2 and all("drained" in m for m in retired), retired
