"""The simulated engine's capacity follows the Ready pods of the Deployments the real HPA scales.

One engine process stands for all pods of one AutoGLMDeployment (kwok pods run nothing). This
small poller closes the loop: every `interval` seconds it sums `status.readyReplicas` of the
Deployments labelled `autoglm.io/instance=<name>` (every revision) and sets the engine's batch
slots to ready pods x slots per pod through the engine's POST /admin/config. With no Ready pod the
engine keeps one slot (a queue in front of nothing would not answer at all).

    python -m autoglm_testenv.capacity --namespace ns --name glm-chat --engine http://127.0.0.1:8000 --slots-per-pod 8

HPA mode reads a Pods metric per pod through the custom metrics API (custom_metrics.py), which
needs series labelled with the pod. With `--metrics-port` the poller also serves, on 127.0.0.1,
the engine's running requests divided evenly over the Ready pods, one series per Ready pod
labelled `namespace` and `pod` (`pod_series`), read from the engine at each scrape. The split is
the only stand-in: the HPA's average over the pods is the engine's total over the Ready pods, as
it would be for pods that share the load evenly.
"""
from __future__ import annotations

import argparse
import http.server
import sys
import threading
import time
from typing import Any

import requests
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

INSTANCE_LABEL = "autoglm.io/instance"


def ready_pods(deployments: list[Any]) -> int:
    """Ready replicas over `deployments` (kubernetes client V1Deployment objects)."""
    return sum(int((d.status.ready_replicas if d.status else 0) or 0) for d in deployments)


def slots(ready: int, slots_per_pod: int) -> int:
    """Batch slots for `ready` pods; at least one."""
    return max(1, ready * slots_per_pod)


def ready_pod_names(pods: list[Any]) -> list[str]:
    """Names of the pods (kubernetes client V1Pod objects) whose Ready condition is True, sorted."""
    return sorted(p.metadata.name for p in pods if any(
        c.type == "Ready" and c.status == "True" for c in ((p.status.conditions if p.status else None) or [])))


def engine_value(exposition: str, metric: str) -> float:
    """The sum of `metric`'s samples in a Prometheus text exposition (the engine's /metrics); 0 if absent."""
    return sum(s.value for family in text_string_to_metric_families(exposition) for s in family.samples
               if s.name == metric)


def pod_series(pods: list[str], total: float) -> dict[str, float]:
    """`total` split evenly over `pods` (no series when no pod is Ready: nothing serves)."""
    return {pod: total / len(pods) for pod in pods}


class PodMetrics:
    """A prometheus_client collector: at each scrape, the engine's `metric` over the Ready pods."""

    def __init__(self, core: Any, namespace: str, name: str, engine: str, metric: str) -> None:
        self.core, self.namespace, self.name, self.engine, self.metric = core, namespace, name, engine, metric

    def collect(self) -> list[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.metric, f"{self.metric} of the engine over the Ready pods",
                                   labels=["namespace", "pod"])
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"{INSTANCE_LABEL}={self.name}").items
        total = engine_value(requests.get(f"{self.engine}/metrics", timeout=5).text, self.metric)
        for pod, value in pod_series(ready_pod_names(pods), total).items():
            family.add_metric([self.namespace, pod], value)
        return [family]


def serve_pod_metrics(namespace: str, name: str, engine: str, metric: str, port: int) -> None:
    """Serve `PodMetrics` on 127.0.0.1:`port` from a background thread, always in the text format
    0.0.4 (as the engine does): prometheus_client's own server would answer Prometheus' OpenMetrics
    request with the name escaped (`vllm_num_requests_running`), not the engine's series name."""
    import kubernetes
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    kubernetes.config.load_kube_config()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PodMetrics(kubernetes.client.CoreV1Api(), namespace, name, engine, metric))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = generate_latest(registry)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass  # one line a second per scrape would bury the poller's own lines

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


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
    p.add_argument("--metrics-port", type=int, help="also serve the per-pod series on 127.0.0.1:PORT (HPA mode)")
    p.add_argument("--metric", default="vllm:num_requests_running",
                   help="the engine's series to split over the Ready pods (the HPA's Pods metric)")
    args = p.parse_args(argv)
    if args.slots_per_pod < 1 or args.interval <= 0:
        p.error("--slots-per-pod must be >= 1 and --interval > 0")
    if args.metrics_port is not None:
        serve_pod_metrics(args.namespace, args.name, args.engine, args.metric, args.metrics_port)
    try:
        follow(args.namespace, args.name, args.engine, args.slots_per_pod, args.interval)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
