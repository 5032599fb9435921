"""Kubelet's part in stopping a pod, played for kwok pods (which run no container, so no preStop hook).

Kubernetes stops a pod thus (kubelet "Pod termination"): the deletion sets its deletionTimestamp
to now + terminationGracePeriodSeconds; the endpoints drop it at once (it serves no new request);
kubelet runs the container's preStop hook, sends SIGTERM when the hook returns (the engine then
stops, and whatever it still served is cut), and SIGKILL at the deletionTimestamp if the hook is
still running. Here:

- the simulated engines (engine.py, one per revision) are told each revision's pods every
  `interval` seconds (POST /admin/pods): serving = Ready and not terminating, present = not yet
  removed. A terminating pod takes no new request; a pod removed has its requests cut.
- for each terminating pod of a namespace that opted in (cold_start.TERMINATION_ANNOTATION, which
  also makes kwok wait for the deletionTimestamp instead of deleting at once), the runner runs the
  pod's own rendered preStop command, with only the engine URL rewritten to that pod's metrics on
  its revision's engine (`/pods/<pod>/metrics`), and deletes the pod (grace 0, as kubelet does once
  the containers stopped) when the hook returns or at the deletionTimestamp, whichever comes first.
- `--prestop-sleep N` runs `sleep N` instead of the rendered hook: the preStop the operator rendered
  before the drain hook (`sleep runtime.drainSeconds`), for the baseline of the streams benchmark.

    python -m autoglm_testenv.termination --namespace ns --name glm-chat --engine REV=URL [--engine ...]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any

import requests

from autoglm_operator.api.engines import PORT
from autoglm_operator.api.labels import REVISION_LABEL
from autoglm_testenv.capacity import INSTANCE_LABEL, ready_pod_names
from autoglm_testenv.cold_start import TERMINATION_ANNOTATION

HOOK_URL = f"http://127.0.0.1:{PORT}/metrics"  # where the rendered hook asks its engine (render/workload.py)


def pod_sets(pods: list[Any], revision: str) -> tuple[list[str], list[str]]:
    """(serving, present) pod names of `revision` among `pods` (kubernetes client V1Pod objects):
    present = every pod still listed; serving = Ready ones without a deletionTimestamp. Sorted."""
    mine = [p for p in pods if (p.metadata.labels or {}).get(REVISION_LABEL) == revision]
    serving = ready_pod_names([p for p in mine if p.metadata.deletion_timestamp is None])
    return serving, sorted(p.metadata.name for p in mine)


def hook_command(pod: Any, engine: str, prestop_sleep: float | None) -> list[str] | None:
    """The command to run for the pod's preStop hook: its engine container's exec hook with HOOK_URL
    pointed at the pod's own metrics on `engine`; `sleep prestop_sleep` instead when given; None
    when the pod has no hook (kubelet then sends SIGTERM at once)."""
    if prestop_sleep is not None:
        return ["sleep", f"{prestop_sleep:g}"]
    for container in pod.spec.containers:
        hook = container.lifecycle.pre_stop if container.lifecycle else None
        if hook is not None and hook._exec is not None:
            return [f"{engine}/pods/{pod.metadata.name}/metrics" if arg == HOOK_URL else arg for arg in hook._exec.command]
    return None


def seconds_left(pod: Any, now: datetime) -> float:
    """Seconds until the pod's deletionTimestamp (kubelet's SIGKILL); 0 when it passed."""
    return max(0.0, (pod.metadata.deletion_timestamp - now).total_seconds())


def opted_in(pod: Any) -> bool:
    return TERMINATION_ANNOTATION in (pod.metadata.annotations or {})


def stop(core: Any, pod: Any, engines: dict[str, str], prestop_sleep: float | None) -> None:
    """Run the hook, then remove the pod; one line on what happened."""
    import kubernetes

    name, started = pod.metadata.name, time.monotonic()
    engine = engines.get((pod.metadata.labels or {}).get(REVISION_LABEL, ""))
    command = hook_command(pod, engine, prestop_sleep) if engine else None
    outcome = "no hook"
    if command:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=seconds_left(pod, datetime.now(timezone.utc)))
            outcome = (done.stdout.strip() or f"exit {done.returncode}")
        except subprocess.TimeoutExpired:
            outcome = "grace period over (SIGKILL)"
    try:
        core.delete_namespaced_pod(name, pod.metadata.namespace, grace_period_seconds=0,
                                   body=kubernetes.client.V1DeleteOptions(grace_period_seconds=0,
                                                                          preconditions={"uid": pod.metadata.uid}))
    except kubernetes.client.ApiException as exc:
        if exc.status not in (404, 409):
            raise
    print(f"{time.strftime('%H:%M:%S')} pod {name} stopped after {time.monotonic() - started:.1f}s: {outcome}", flush=True)


def follow(namespace: str, name: str, engines: dict[str, str], prestop_sleep: float | None, interval: float) -> None:
    """Tell the engines their pods and stop terminating pods until killed."""
    import kubernetes

    kubernetes.config.load_kube_config()
    core = kubernetes.client.CoreV1Api()
    posted: dict[str, tuple[list[str], list[str]]] = {}
    stopping: set[str] = set()
    while True:
        try:
            pods = core.list_namespaced_pod(namespace, label_selector=f"{INSTANCE_LABEL}={name}").items
            for revision, url in engines.items():
                sets = pod_sets(pods, revision)
                if sets != posted.get(revision):
                    requests.post(f"{url}/admin/pods", json={"serving": sets[0], "present": sets[1]},
                                  timeout=5).raise_for_status()
                    posted[revision] = sets
            for pod in pods:
                if pod.metadata.deletion_timestamp and opted_in(pod) and pod.metadata.uid not in stopping:
                    stopping.add(pod.metadata.uid)
                    threading.Thread(target=stop, args=(core, pod, engines, prestop_sleep), daemon=True).start()
        except (requests.RequestException, kubernetes.client.ApiException, OSError) as exc:
            print(f"{time.strftime('%H:%M:%S')} poll failed: {exc}", flush=True)
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autoglm_testenv.termination", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--namespace", required=True)
    p.add_argument("--name", required=True, help="the AutoGLMDeployment")
    p.add_argument("--engine", action="append", required=True, metavar="REVISION=URL",
                   help="the simulated engine of a revision (repeat per revision)")
    p.add_argument("--prestop-sleep", type=float, help="run `sleep N` instead of the rendered hook (baseline)")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    args = p.parse_args(argv)
    engines = dict(e.split("=", 1) for e in args.engine)
    try:
        follow(args.namespace, args.name, engines, args.prestop_sleep, args.interval)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
