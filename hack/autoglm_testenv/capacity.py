"""The simulated engine's capacity follows the Ready pods of the Deployments the real HPA scales.

One engine process stands for all pods of one AutoGLMDeployment (kwok pods run nothing). This
small poller closes the loop: every `interval` seconds it sums `status.readyReplicas` of the
Deployments labelled `autoglm.io/instance=<name>` (every revision) and sets the engine's batch
slots to ready pods x slots per pod through the engine's POST /admin/config. With no Ready pod the
engine keeps one slot (a queue in front of nothing would not answer at all).

    python -m autoglm_testenv.capacity --namespace ns --name glm-chat --engine http://127.0.0.1:8000 --slots-per-pod 8
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import requests

INSTANCE_LABEL = "autoglm.io/instance"


def ready_pods(deployments: list[Any]) -> int:
    """Ready replicas over `deployments` (kubernetes client V1Deployment objects)."""
    return sum(int((d.status.ready_replicas if d.status else 0) or 0) for d in deployments)


def slots(ready: int, slots_per_pod: int) -> int:
    """Batch slots for `ready` pods; at least one."""
    return max(1, ready * slots_per_pod)


def follow(namespace: str, name: str, engine: str, slots_per_pod: int, interval: float) -> None:
    """Poll and configure until killed; only changes are posted."""
    import kubernetes

    kubernetes.config.load_kube_config()
    apps = kubernetes.client.AppsV1Api()
    posted = -1
    while True:
        try:
            found = apps.list_namespaced_deployment(namespace, label_selector=f"{INSTANCE_LABEL}={name}").items
            wanted = slots(ready_pods(found), slots_per_pod)
            if wanted != posted:
                requests.post(f"{engine}/admin/config", json={"max_running": wanted}, timeout=5).raise_for_status()
                print(f"{time.strftime('%H:%M:%S')} {ready_pods(found)} ready pod(s): {wanted} slot(s)", flush=True)
                posted = wanted
        except (requests.RequestException, kubernetes.client.ApiException, OSError) as exc:
            print(f"capacity: {exc}; retrying", file=sys.stderr, flush=True)
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autoglm_testenv.capacity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--namespace", required=True)
    p.add_argument("--name", required=True, help="the AutoGLMDeployment")
    p.add_argument("--engine", required=True, help="the simulated engine's base URL")
    p.add_argument("--slots-per-pod", type=int, required=True, help="batch slots one Ready pod brings")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    args = p.parse_args(argv)
    if args.slots_per_pod < 1 or args.interval <= 0:
        p.error("--slots-per-pod must be >= 1 and --interval > 0")
    try:
        follow(args.namespace, args.name, args.engine, args.slots_per_pod, args.interval)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
