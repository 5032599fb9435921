"""`make demo`: the whole product on the local environment, with time running 60x faster.

The operator, collector and predictor run under the Helm chart's ServiceAccounts; an
AutoGLMDeployment is applied; a simulated engine stands for its pods and the NASA trace is replayed
against it (one trace minute per second). The environment has no KEDA controller, so the demo
plays KEDA's part: it scales the serving Deployment to ceil(load / perReplica), never below the
ScaledObject's minReplicaCount (the floor the operator renders from the predictor's forecast), and
a pod serves only after a (compressed) cold start. It prints a live summary and ends with a
markdown report and a PNG plot of demand, forecast and capacity.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
import yaml

from autoglm_predictor import sample_traces
from autoglm_predictor.queries import default_load_query
from autoglm_predictor.series import load_trace
from autoglm_testenv import components, config, loadgen, procs
from autoglm_testenv.env import Env, up_shared

CR_FILE = config.HACK_DIR / "demo" / "glm-chat.yaml"
SLOTS_PER_POD = 8


@dataclass
class Sample:
    t: float  # real seconds since the replay started
    trace_time: str
    demand: float  # requests per second offered
    load: float  # running + waiting requests (the autoscaling signal)
    serving_pods: int  # pods past their cold start
    replicas: int  # pods asked for
    floor: int  # ScaledObject minReplicaCount
    predicted: float | None
    recommended: int | None


def step(n: int, total: int, text: str) -> None:
    print(f"[{n}/{total}] {text}", flush=True)


class Cluster:
    """The few reads and writes the demo's KEDA stand-in needs (admin client; the product's own
    processes run under their chart identities)."""

    def __init__(self, env: Env, namespace: str, name: str) -> None:
        from kubernetes import client

        api = env.api_client()
        self.apps, self.core, self.custom = client.AppsV1Api(api), client.CoreV1Api(api), client.CustomObjectsApi(api)
        self.namespace, self.name = namespace, name

    def scaled_object(self) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object("keda.sh", "v1alpha1", self.namespace, "scaledobjects", self.name)

    def resource(self) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object("autoglm.io", "v1alpha1", self.namespace, "autoglmdeployments",
                                                        self.name)

    def replicas(self, deployment: str) -> int:
        return int(self.apps.read_namespaced_deployment_scale(deployment, self.namespace).spec.replicas or 0)

    def scale(self, deployment: str, replicas: int) -> None:
        self.apps.patch_namespaced_deployment_scale(deployment, self.namespace, {"spec": {"replicas": replicas}})

    def serving_pods(self, deployment: str, cold_start: float) -> int:
        """Running pods of `deployment` older than the cold start: kwok makes pods Ready at once."""
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"autoglm.io/instance={self.name}").items
        now = datetime.now(timezone.utc)
        return sum(
            1 for pod in pods
            if pod.metadata.name.startswith(deployment + "-") and pod.metadata.deletion_timestamp is None
            and pod.status.phase == "Running" and (now - pod.metadata.creation_timestamp).total_seconds() >= cold_start
        )


def prometheus_value(url: str, query: str) -> float:
    resp = requests.get(f"{url}/api/v1/query", params={"query": query}, timeout=5)
    result = resp.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def run(args: argparse.Namespace) -> int:
    total = 7
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    step(1, total, "local environment (Kubernetes 1.34 + kwok nodes, Kafka, Prometheus)")
    env = up_shared()
    print(f"      ready after {time.monotonic() - t0:.0f}s; kubeconfig {env.kubeconfig}")

    cr = yaml.safe_load(CR_FILE.read_text())
    namespace, name = cr["metadata"]["namespace"], cr["metadata"]["name"]
    per_replica = float(cr["spec"]["autoscaling"]["target"]["perReplica"])
    max_replicas = int(cr["spec"]["autoscaling"]["maxReplicas"])
    logs = Path(tempfile.mkdtemp(prefix="autoglm-demo-"))
    pids: list[int] = []
    try:
        step(2, total, "CRDs, and the chart's ServiceAccounts + RBAC for operator, collector, predictor")
        components.install_crds(env)
        env.kubectl("create", "namespace", namespace, check=False)
        ids = components.chart_identities(env, "autoglm", "autoglm-system", [namespace], logs)

        step(3, total, f"operator, collector, predictor started (logs in {logs})")
        pipeline = {"AUTOGLM_PROMETHEUS_URL": env.prometheus_url, "AUTOGLM_KAFKA_BOOTSTRAP": env.kafka_bootstrap,
                    "AUTOGLM_KAFKA_TOPIC": f"autoglm.demo.{int(time.time())}"}
        pids.append(components.start_autoglm("operator", ["operator", f"--namespace={namespace}", "--resync-seconds=5",
                                                          "--metrics-port=0", "--health-port=0", "--log-format=plain"],
                                             ids["operator"], logs))
        pids.append(components.start_autoglm("collector", ["collector", "--step-seconds=1", "--metrics-port=0",
                                                           "--refresh-seconds=5"], ids["collector"], logs, pipeline))
        pids.append(components.start_autoglm("predictor", ["predictor", "--step-seconds=1", "--bucket-seconds=5",
                                                           "--season-seconds=1440", "--decision-seconds=2",
                                                           "--heartbeat-seconds=10", "--stale-after-seconds=30",
                                                           "--retrain-seconds=10",
                                                           "--metrics-port=0", "--no-lstm"],
                                             ids["predictor"], logs, pipeline))

        step(4, total, f"AutoGLMDeployment {namespace}/{name} applied; waiting for Ready")
        env.kubectl("apply", "-f", str(CR_FILE))
        env.kubectl("wait", "--for=condition=Ready", f"autoglmdeployments/{name}", "-n", namespace, "--timeout=120s")
        print(env.kubectl("get", "autoglmdeployments", "-n", namespace).stdout)

        step(5, total, "simulated vLLM engine standing for the pods, scraped by Prometheus")
        port = procs.free_port()
        revision = env.kubectl_json("get", "autoglmdeployment", name, "-n", namespace)["status"]["currentRevision"]
        pids.append(procs.start("engine", [sys.executable, "-m", "autoglm_testenv.engine", f"--port={port}",
                                           f"--namespace={namespace}", f"--deployment={name}", f"--revision={revision}",
                                           f"--max-running={SLOTS_PER_POD}"], logs,
                                {"PYTHONPATH": str(config.HACK_DIR)}))
        engine = f"http://127.0.0.1:{port}"
        procs.wait_until("engine", lambda: procs.http_ok(f"{engine}/health"), 30, pids[-1], logs / "engine.log")
        env.add_scrape_target("demo-engine", f"127.0.0.1:{port}")

        step(6, total, f"replaying {args.trace} from {args.start} at {args.speedup:g}x for {args.seconds:g}s")
        samples = replay_and_scale(env, args, namespace, name, engine, per_replica, max_replicas)

        step(7, total, "report")
        report(samples, out, args, per_replica)
    finally:
        for pid in reversed(pids):
            procs.stop(pid)
        (env.prometheus_targets / "demo-engine.json").unlink(missing_ok=True)
    print(EXPLORE.format(namespace=namespace, name=name, logs=logs, out=out))
    return 0


def replay_and_scale(env: Env, args: argparse.Namespace, namespace: str, name: str, engine: str,
                     per_replica: float, max_replicas: int) -> list[Sample]:
    """Run the load generator in a thread while this thread plays KEDA and samples the state."""
    series = loadgen.window(load_trace(args.trace), args.start, None)
    stats: dict[str, Any] = {}

    def generate_load() -> None:
        result = asyncio.run(loadgen.replay(series, [f"{engine}/v1/completions"], args.speedup, args.scale,
                                            args.seconds, [(64, 16)], progress=False))
        stats.update(asdict(result))

    worker = threading.Thread(target=generate_load, daemon=True)
    kube = Cluster(env, namespace, name)
    query = default_load_query(namespace, name)
    cold_start = args.cold_start_minutes * 60 / args.speedup
    samples: list[Sample] = []
    slots, below_since = -1, None
    started = time.monotonic()
    worker.start()
    while worker.is_alive() and time.monotonic() - started < args.seconds + 5:
        t = time.monotonic() - started
        so = kube.scaled_object()["spec"]
        target, floor = so["scaleTargetRef"]["name"], int(so.get("minReplicaCount", 1))
        load = prometheus_value(env.prometheus_url, query)
        replicas = kube.replicas(target)
        want = min(max_replicas, max(floor, math.ceil(load / per_replica)))
        # KEDA/HPA: up at once, down only after the (compressed) stabilisation window.
        if want > replicas or (want < replicas and below_since is not None and t - below_since >= args.scale_down_seconds):
            kube.scale(target, want)
            replicas, below_since = want, None
        elif want < replicas and below_since is None:
            below_since = t
        elif want >= replicas:
            below_since = None
        serving = kube.serving_pods(target, cold_start)
        if serving * SLOTS_PER_POD != slots:
            slots = serving * SLOTS_PER_POD
            requests.post(f"{engine}/admin/config", json={"max_running": max(slots, 1) if serving else 1}, timeout=5)
        forecast = kube.resource().get("status", {}).get("forecast", {})
        index = min(len(series) - 1, int(t * args.speedup / 60))
        sample = Sample(round(t, 1), str(series.index[index]), float(series.iloc[index]) * args.scale * args.speedup / 60,
                        load, serving, replicas, floor, forecast.get("predicted"), forecast.get("recommendedMinReplicas"))
        samples.append(sample)
        if len(samples) % 5 == 1:
            print(f"      {sample.trace_time[11:16]}  demand {sample.demand:5.1f} req/s  load {load:5.1f}  "
                  f"capacity {serving * per_replica:4.0f}  pods {serving}/{replicas}  floor {floor}  "
                  f"forecast {sample.predicted if sample.predicted is not None else '-'}", flush=True)
        time.sleep(1.0)
    worker.join(timeout=60)
    print(f"      load generator: sent {stats.get('sent', 0)}, ok {stats.get('ok', 0)}, failed {stats.get('failed', 0)}")
    return samples


def report(samples: list[Sample], out: Path, args: argparse.Namespace, per_replica: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t for s in samples]
    over = sum(1 for s in samples if s.load > s.serving_pods * per_replica)
    floor_raised = sum(1 for s in samples if s.floor > 1)
    pod_seconds = sum(s.replicas for s in samples)
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.plot(t, [s.load for s in samples], label="load (running + waiting)")
    ax.plot(t, [s.serving_pods * per_replica for s in samples], label="ready capacity", drawstyle="steps-post")
    ax.plot(t, [s.floor * per_replica for s in samples], label="predictive floor x perReplica", drawstyle="steps-post")
    ax.plot(t, [s.predicted if s.predicted is not None else float("nan") for s in samples], label="forecast (q0.95)")
    ax.set_xlabel(f"seconds ({args.speedup:g}x: one second is {args.speedup / 60:g} trace minute)")
    ax.set_ylabel("requests in flight")
    ax.legend()
    ax.set_title("AutoGLM demo: demand, forecast and capacity")
    fig.tight_layout()
    fig.savefig(out / "demo.png", dpi=100)
    (out / "samples.json").write_text(json.dumps([asdict(s) for s in samples]))
    lines = [
        "# AutoGLM demo report", "",
        f"Trace `{args.trace}` from {args.start}, {args.speedup:g}x, scale {args.scale:g}, "
        f"cold start {args.cold_start_minutes:g} trace minutes.", "",
        "| what | value |", "|---|---|",
        f"| samples (1 s) | {len(samples)} |",
        f"| seconds with load above ready capacity | {over} ({100 * over / max(1, len(samples)):.1f}%) |",
        f"| seconds with the predictive floor above the minimum | {floor_raised} |",
        f"| pod-seconds asked for | {pod_seconds} |", "",
        "![demand, forecast and capacity](demo.png)", "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    print("\n".join(lines[4:9]))
    print(f"      report: {out / 'report.md'}  plot: {out / 'demo.png'}")


EXPLORE = """
Explore:
  eval "$(hack/testenv env)"
  kubectl get autoglmdeployments -n {namespace}
  kubectl get scaledobject,deploy,svc,pdb,virtualservice -n {namespace}
  kubectl get autoglmdeployment {name} -n {namespace} -o jsonpath='{{.status}}' | python3 -m json.tool
  .venv/bin/autoglm render -f hack/demo/glm-chat.yaml --capabilities keda,istio
  less {logs}/operator.log        # also collector.log, predictor.log, engine.log
  open {out}/report.md
  hack/testenv down               # stop the environment
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trace", default=str(sample_traces.NASA_PER_MINUTE))
    p.add_argument("--start", default="1995-07-05T05:00", help="first trace minute replayed")
    p.add_argument("--seconds", type=float, default=240.0, help="real seconds of replay")
    p.add_argument("--speedup", type=float, default=60.0)
    p.add_argument("--scale", type=float, default=0.25, help="requests per trace request")
    p.add_argument("--cold-start-minutes", type=float, default=5.0, help="trace minutes before a new pod serves")
    p.add_argument("--scale-down-seconds", type=float, default=20.0, help="compressed scale-down stabilisation")
    p.add_argument("--out", default=str(config.REPO_DIR / "out" / "demo"))
    args = p.parse_args(argv)
    try:
        return run(args)
    except procs.TestenvError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
