"""`make demo`: the whole product on the local environment, with time running 60x faster, and the
predictive floor measured against the same fleet without it.

The operator, collector and predictor run under the Helm chart's ServiceAccounts. Two
AutoGLMDeployments are applied, identical but for the predictive floor: `glm-chat`
(hack/demo/glm-chat.yaml, floor on) and its twin `glm-chat-reactive` (floor off). Each gets its
own simulated engine standing for its pods, and every arrival of the replayed trace goes to both
(two load generators on the same series and seed), so both fleets see the same demand at the
same time. Before the replay the demo publishes the load records of the preceding trace days
(demo_history.py), as if the system had been running for that long; the predictor learns the
daily ramp from them. Scaling is the real thing for both deployments alike: the engine's metrics
go to Prometheus, KEDA's Prometheus trigger reads the load query, KEDA's HPA (the real HPA
controller of kube-controller-manager, through KEDA's external metrics API) scales the Deployment,
kwok makes each new pod Ready only after a (compressed) cold start (cold_start.py), and each
engine's batch slots follow its Deployment's Ready pods (capacity.py). The predictive floor enters
only through the ScaledObject's minReplicaCount, as the operator renders it. The demo prints a
live line per deployment and ends with both side by side: seconds and requests above ready
capacity, pod-seconds, and one PNG with a panel per deployment.

`make run` (--operator-only) runs just the operator in the foreground, as the demo runs it.
"""
from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import json
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import requests
import yaml

from autoglm_operator.api.queries import default_load_query, instant_value
from autoglm_predictor import traces as sample_traces
from autoglm_predictor.forecast.series import load_trace
from autoglm_predictor.pipeline import records
from autoglm_testenv import audit, components, config, demo_history, loadgen, procs
from autoglm_testenv.engine import EngineConfig
from autoglm_testenv.env import Env, up_shared

CR_FILE = config.HACK_DIR / "demo" / "glm-chat.yaml"
# The chart's identities for the demo: a release name of its own, so the README's
# `helm install autoglm ...` on the cluster the demo leaves finds no objects it does not own.
RELEASE = "autoglm-demo"
PROMPT_TOKENS, MAX_TOKENS = 64, 64  # every request; 1.28 s in a batch slot (EngineConfig defaults)
WAITED_TTFT = 0.1  # seconds; a request without a queue gets its first token after 3 ms of prefill
STEPS = 8


@dataclass
class Sample:
    t: float  # real seconds since the replay started
    trace_time: str
    demand: float  # requests per second offered (the same to both fleets)
    load: float  # requests in flight: running + waiting (the autoscaling signal)
    serving_pods: int  # pods past their cold start
    pending_pods: int  # pods the scheduler could not place (no free GPU)
    replicas: int  # pods asked for (the Deployment's spec.replicas, set by the HPA)
    floor: int  # ScaledObject minReplicaCount
    predicted: float | None  # status.forecast.predicted: requests in flight, peak over the lead time


@dataclass
class Fleet:
    """One AutoGLMDeployment with its engine and its samples."""

    name: str
    predictive: bool
    kube: Cluster
    engine: str  # base URL of its simulated engine
    samples: list[Sample] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)  # the load generator's, then the engine's
    baseline: dict[str, float] = field(default_factory=dict)  # the engine's counters when the measured replay began


def step(n: int, text: str) -> None:
    print(f"[{n}/{STEPS}] {text}", flush=True)


class Cluster:
    """The few reads the demo samples for one deployment (admin client; the product's own
    processes run under their chart identities). It writes nothing: KEDA and the HPA scale."""

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

    def replicas(self, deployment: str) -> tuple[int, int]:
        """(asked for, Ready) pods of `deployment`: its spec.replicas (the HPA's) and status.readyReplicas
        (kwok turns a pod Ready only after the cold start)."""
        found = self.apps.read_namespaced_deployment(deployment, self.namespace)
        return int(found.spec.replicas or 0), int((found.status.ready_replicas if found.status else 0) or 0)

    def pending(self, deployment: str) -> int:
        """Pods of `deployment` the scheduler could not place (no free GPU)."""
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"autoglm.io/instance={self.name}").items
        return sum(1 for pod in pods if pod.metadata.name.startswith(deployment + "-")
                   and pod.metadata.deletion_timestamp is None and unschedulable(pod))


def unschedulable(pod: Any) -> bool:
    """The scheduler found no node for `pod` (here: no free GPU), as opposed to not having tried yet."""
    return any(c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
               for c in pod.status.conditions or [])


def prometheus_value(url: str, query: str) -> float:
    resp = requests.get(f"{url}/api/v1/query", params={"query": query}, timeout=5)
    value = instant_value(resp.json()["data"]["result"])  # one series, or AmbiguousAnswer naming them
    return 0.0 if value is None else value


def reactive_twin(cr: dict[str, Any]) -> dict[str, Any]:
    """The same AutoGLMDeployment with the predictive floor off, under the name NAME-reactive."""
    twin = copy.deepcopy(cr)
    twin["metadata"]["name"] += "-reactive"
    twin["spec"]["autoscaling"]["predictive"] = {"enabled": False}
    return twin


def operator_args(namespaces: list[str]) -> list[str]:
    """The operator's flags in the demo and in `make run`: the watched namespaces, a short resync."""
    return ["operator", *(f"--namespace={n}" for n in namespaces), "--resync-seconds=5", "--metrics-port=0",
            "--health-port=0", "--log-format=plain"]


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cr = yaml.safe_load(CR_FILE.read_text())
    crs = [cr, reactive_twin(cr)]
    namespace, name = cr["metadata"]["namespace"], cr["metadata"]["name"]
    scaling = cr["spec"]["autoscaling"]
    per_replica = float(scaling["target"]["perReplica"])
    engine_config = EngineConfig(batch_slowdown=0.0)  # a constant service time: demo_history's derivation needs it
    trace = load_trace(args.trace)
    series = loadgen.window(trace, args.start, None)
    # The warm-up: the trace minutes before --start, replayed but not measured, so both fleets
    # begin the measured replay at what their HPAs hold for the load of that moment.
    begin = pd.Timestamp(args.start) - pd.Timedelta(minutes=args.warmup_minutes)
    warmup = trace[(trace.index >= begin) & (trace.index < pd.Timestamp(args.start))]
    warmup_seconds = args.warmup_minutes * 60 / args.speedup
    past = demo_history.past_records(f"{namespace}/{name}", trace, begin, args.history_days,
                                     args.scale, args.speedup, engine_config.service_seconds(PROMPT_TOKENS, MAX_TOKENS),
                                     replay_start=0)
    cold_seconds = args.cold_start_minutes * 60 / args.speedup

    t0 = time.monotonic()
    step(1, "local environment (Kubernetes 1.34 + kwok nodes, KEDA, Kafka, Prometheus)")
    env = up_shared()
    for each in crs:  # KEDA's Prometheus trigger reads this environment's Prometheus
        each["spec"]["autoscaling"]["prometheusAddress"] = env.prometheus_url
    print(f"      ready after {time.monotonic() - t0:.0f}s; kubeconfig {env.kubeconfig}")
    logs = Path(tempfile.mkdtemp(prefix="autoglm-demo-"))
    pids: list[int] = []
    fleets: list[Fleet] = []
    try:
        step(2, f"CRDs, and the chart's ServiceAccounts + RBAC (release {RELEASE}) for operator, collector, predictor")
        components.install_crds(env)
        env.kubectl("create", "namespace", namespace, check=False)
        env.set_cold_start(namespace, cold_seconds)
        ids = components.chart_identities(env, RELEASE, namespace, [namespace], logs)

        step(3, f"operator started (logs in {logs})")
        pids.append(components.start_autoglm("operator", operator_args([namespace]), ids["operator"], logs))

        step(4, f"AutoGLMDeployments {namespace}/{name} (predictive floor) and {crs[1]['metadata']['name']} "
                "(reactive only) applied; predictor started once they are Ready")
        apply_fresh(env, namespace, crs)
        pipeline = {"AUTOGLM_PROMETHEUS_URL": env.prometheus_url, "AUTOGLM_KAFKA_BOOTSTRAP": env.kafka_bootstrap,
                    "AUTOGLM_KAFKA_TOPIC": f"autoglm.demo.{int(time.time())}"}
        # Started after apply_fresh (it must not list an earlier demo's objects) and early enough to
        # have joined its consumer group by the time the history is published.
        pids.append(components.start_autoglm("predictor", predictor_args(args.speedup), ids["predictor"], logs, pipeline))

        step(5, "a simulated vLLM engine per deployment, scraped by Prometheus, its batch slots following "
                "the Deployment's Ready pods")
        for each in crs:
            each_name = each["metadata"]["name"]
            engine, pid = start_engine(env, namespace, each_name, engine_config, logs)
            pids.append(pid)
            pids.append(procs.start(f"capacity-{each_name}", [
                sys.executable, "-m", "autoglm_testenv.capacity", f"--namespace={namespace}", f"--name={each_name}",
                f"--engine={engine}", f"--slots-per-pod={round(per_replica)}"], logs,
                {"PYTHONPATH": str(config.HACK_DIR), "KUBECONFIG": str(env.kubeconfig)}))
            fleets.append(Fleet(each_name, each is cr, Cluster(env, namespace, each_name), engine))
        for fleet in fleets:
            warm_up(fleet)

        step(6, f"{len(past)} load records of the {args.history_days:g} trace days before {begin:%Y-%m-%dT%H:%M} published "
                "(demo_history.py); collector started")
        replay_start = math.ceil(time.time()) + 1  # the history ends here, the warm-up begins here
        publish(env, pipeline["AUTOGLM_KAFKA_TOPIC"], [shifted(r, replay_start) for r in past])
        pids.append(components.start_autoglm("collector", ["collector", "--step-seconds=1", "--metrics-port=0",
                                                           "--refresh-seconds=5", "--backfill-seconds=10"],
                                             ids["collector"], logs, pipeline))

        step(7, f"replaying {Path(args.trace).name} from {args.start} at {args.speedup:g}x for {args.seconds:g}s "
                f"to both deployments, after {warmup_seconds:g}s of warm-up from {begin:%H:%M} "
                f"(cold start {args.cold_start_minutes:g} trace minutes = {cold_seconds:g}s)")
        audit_start = audit.offset(env.audit_log)
        replay_and_sample(env, args, warmup, warmup_seconds, series, namespace, fleets, per_replica, replay_start)
        warn_if_overwritten(env, namespace, name, {ids["predictor"].user, ids["operator"].user}, audit_start)
        for fleet in fleets:
            end = engine_stats(fleet.engine)
            fleet.stats.update({key: end[key] - fleet.baseline.get(key, 0.0) for key in end})

        step(8, "report")
        report(fleets, out, args, per_replica, series, float(scaling["predictive"]["horizonSeconds"]))
    finally:
        for pid in reversed(pids):
            procs.stop(pid)
        for fleet in fleets:
            (env.prometheus_targets / f"demo-engine-{fleet.name}.json").unlink(missing_ok=True)
    print(EXPLORE.format(namespace=namespace, name=name, logs=logs, out=out))
    return 0


def predictor_args(speedup: float) -> list[str]:
    """Intervals for compressed time: a 1 s collector step, 5 s buckets, one trace day as the season."""
    return ["predictor", "--group=autoglm-demo", "--step-seconds=1", "--bucket-seconds=5",
            f"--season-seconds={round(86400 / speedup)}", "--decision-seconds=2", "--heartbeat-seconds=10",
            "--stale-after-seconds=30", "--metrics-port=0", "--no-lstm"]


def apply_fresh(env: Env, namespace: str, crs: list[dict[str, Any]]) -> None:
    """Apply `crs` as new objects and wait until they are Ready: what an earlier demo left is
    deleted first (its status.forecast would still be fresh, its pods past their cold start)."""
    names = [cr["metadata"]["name"] for cr in crs]
    env.kubectl("delete", "autoglmdeployments", *names, "-n", namespace, "--ignore-not-found", "--timeout=60s")
    env.kubectl("wait", "--for=delete", "pods", "-n", namespace, "-l", f"autoglm.io/instance in ({','.join(names)})",
                "--timeout=60s")
    env.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": crs}))
    for name in names:
        env.kubectl("wait", "--for=condition=Ready", f"autoglmdeployments/{name}", "-n", namespace, "--timeout=120s")
    print(env.kubectl("get", "autoglmdeployments", "-n", namespace).stdout)


def warm_up(fleet: Fleet) -> None:
    """Wait until every pod the HPA asks for serves (past its cold start) before the replay."""
    target = fleet.kube.scaled_object()["spec"]["scaleTargetRef"]["name"]

    def settled() -> bool:
        wanted, ready = fleet.kube.replicas(target)
        return wanted >= 1 and ready == wanted

    procs.wait_until(f"{fleet.name}: the HPA's pods serving", settled, 120)


def warn_if_overwritten(env: Env, namespace: str, name: str, own: set[str], since: int) -> None:
    """Collectors and predictors serve every predictive AutoGLMDeployment in the cluster: another
    pipeline running beside the demo (an e2e test on a shared environment) writes floors too."""
    others = [w for w in audit.writes_to(env.audit_log, "autoglmdeployments", namespace, name, since, "status")
              if w["user"]["username"] not in own]
    if others:
        users = sorted({w["user"]["username"] for w in others})
        print(f"      note: {len(others)} writes to {name}'s status by other identities during the replay "
              f"({', '.join(users)}): another predictor in this cluster overrode the demo's floor at times")


def start_engine(env: Env, namespace: str, name: str, cfg: EngineConfig, logs: Path) -> tuple[str, int]:
    """A simulated engine labelled as `name`'s current revision, scraped by Prometheus."""
    port = procs.free_port()
    revision = env.kubectl_json("get", "autoglmdeployment", name, "-n", namespace)["status"]["currentRevision"]
    pid = procs.start(f"engine-{name}", [sys.executable, "-m", "autoglm_testenv.engine", f"--port={port}",
                                         f"--namespace={namespace}", f"--deployment={name}", f"--revision={revision}",
                                         f"--batch-slowdown={cfg.batch_slowdown}"], logs,
                      {"PYTHONPATH": str(config.HACK_DIR)})
    url = f"http://127.0.0.1:{port}"
    procs.wait_until(f"engine for {name}", lambda: procs.http_ok(f"{url}/health"), 30, pid, logs / f"engine-{name}.log")
    env.add_scrape_target(f"demo-engine-{name}", f"127.0.0.1:{port}")
    return url, pid


def shifted(record: records.LoadRecord, replay_start: int) -> records.LoadRecord:
    """`past_records` end before 0; the replay starts at `replay_start` (epoch seconds)."""
    return dataclasses.replace(record, ts=record.ts + replay_start)


def publish(env: Env, topic: str, batch: list[records.LoadRecord]) -> None:
    """Publish as the collector does (key = deployment, records.encode); all acknowledged on return."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=env.kafka_bootstrap, acks="all", linger_ms=20)
    try:
        for future in [producer.send(topic, key=r.key, value=records.encode(r)) for r in batch]:
            future.get(timeout=30)
    finally:
        producer.close(timeout=10)


def sample(fleet: Fleet) -> tuple[int, int, int, int]:
    """`fleet` as the cluster has it now: the ScaledObject's minReplicaCount (the floor), and its
    Deployment's pods asked for (by the HPA), Ready (past the cold start) and Pending (no free GPU)."""
    so = fleet.kube.scaled_object()["spec"]
    target, floor = so["scaleTargetRef"]["name"], int(so.get("minReplicaCount", 1))
    wanted, ready = fleet.kube.replicas(target)
    return floor, wanted, ready, fleet.kube.pending(target)


def replay_and_sample(env: Env, args: argparse.Namespace, warmup: pd.Series, warmup_seconds: float, series: pd.Series,
                      namespace: str, fleets: list[Fleet], per_replica: float, replay_start: float) -> None:
    """From `replay_start` (epoch seconds), replay `warmup` for `warmup_seconds` and then `series`
    to every fleet at once (same arrivals: same series and seed) in a thread, while this thread
    samples each fleet once a second from the end of the warm-up. The warm-up's requests are not
    counted (the load generator's stats are the measured replay's; the engines' counters are
    taken as the baseline when it begins); requests still in flight at the switch end in it."""
    measured = threading.Event()

    def generate_load() -> None:
        async def both(part: pd.Series, seconds: float) -> list[loadgen.Stats]:
            return await asyncio.gather(*[
                loadgen.replay(part, [f"{fleet.engine}/v1/completions"], args.speedup, args.scale, seconds,
                               [(PROMPT_TOKENS, MAX_TOKENS)], progress=False) for fleet in fleets])

        async def phases() -> list[loadgen.Stats]:
            # Overlapping, so no lull at the switch: the warm-up's generators wait for their last requests.
            warm = asyncio.create_task(both(warmup, warmup_seconds)) if warmup_seconds > 0 and len(warmup) else None
            await asyncio.sleep(warmup_seconds)
            measured.set()
            main = await both(series, args.seconds)
            if warm is not None:
                await warm
            return main

        for fleet, stats in zip(fleets, asyncio.run(phases())):
            fleet.stats.update(asdict(stats))

    worker = threading.Thread(target=generate_load, daemon=True)
    queries = {fleet.name: default_load_query(namespace, fleet.name) for fleet in fleets}
    time.sleep(max(0.0, replay_start - time.time()))
    worker.start()
    measured.wait()
    started = time.monotonic()
    for fleet in fleets:
        fleet.baseline = engine_stats(fleet.engine)
    for tick in range(int(args.seconds)):
        time.sleep(max(0.0, started + tick + 1 - time.monotonic()))
        t = time.monotonic() - started
        index = min(len(series) - 1, int(t * args.speedup / 60))
        demand = float(series.iloc[index]) * args.scale * args.speedup / 60
        for fleet in fleets:
            load = prometheus_value(env.prometheus_url, queries[fleet.name])
            floor, wanted, serving, pending = sample(fleet)
            forecast = fleet.kube.resource().get("status", {}).get("forecast", {}) if fleet.predictive else {}
            fleet.samples.append(Sample(round(t, 1), str(series.index[index]), demand, load, serving, pending,
                                        wanted, floor, forecast.get("predicted")))
        if tick % 10 == 0:
            print(live_lines(fleets, per_replica), flush=True)
    worker.join(timeout=120)


def live_lines(fleets: list[Fleet], per_replica: float) -> str:
    """`06:40  demand 7.5 req/s` and one line per fleet, every number with its unit."""
    first = fleets[0].samples[-1]
    lines = [f"      {first.trace_time[11:16]}  demand {first.demand:5.1f} req/s"]
    for fleet in fleets:
        s = fleet.samples[-1]
        line = (f"        {'predictive' if fleet.predictive else 'reactive':<10}  load {s.load:5.1f} in flight  "
                f"capacity {s.serving_pods * per_replica:3.0f} in flight  pods {s.serving_pods}/{s.replicas}  "
                f"floor {s.floor}")
        if fleet.predictive:
            line += f"  forecast {'-' if s.predicted is None else f'{s.predicted:5.1f} in flight'}"
        lines.append(line)
    return "\n".join(lines)


def engine_stats(engine: str) -> dict[str, float]:
    """From the engine's own metrics: requests served, and those that waited for a batch slot
    (time to first token above WAITED_TTFT, a vLLM histogram bucket edge)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"{engine}/metrics", timeout=5).text
    served = waited_le = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "vllm:time_to_first_token_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_count"):
                served = sample.value
            elif sample.name.endswith("_bucket") and float(sample.labels["le"]) == WAITED_TTFT:
                waited_le = sample.value
    return {"served": served, "waited": served - waited_le}


@dataclass(frozen=True)
class Summary:
    """One fleet's numbers in the closing table."""

    samples: int
    over: int  # seconds with load above ready capacity
    pending: int  # seconds with a pod Pending: the cluster had no free GPU for it
    pod_seconds: int  # replicas asked for, summed over the 1 s samples
    peak_pods: int
    sent: int
    waited: int
    failed: int
    p50: float
    p99: float


def summarise(fleet: Fleet, per_replica: float) -> Summary:
    samples, stats = fleet.samples, fleet.stats
    latencies = sorted(stats.get("latencies", [])) or [math.nan]
    return Summary(
        samples=len(samples), over=sum(1 for s in samples if s.load > s.serving_pods * per_replica),
        pending=sum(1 for s in samples if s.pending_pods),
        pod_seconds=sum(s.replicas for s in samples), peak_pods=max((s.replicas for s in samples), default=0),
        sent=int(stats.get("sent", 0)), waited=int(stats.get("waited", 0)),
        failed=int(stats.get("failed", 0)) + int(stats.get("dropped", 0)),
        p50=latencies[len(latencies) // 2], p99=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))])


def forecast_lines(fleet: Fleet, horizon: float) -> list[str]:
    """How the forecast compares with the instantaneous load and with the peak that followed."""
    samples = fleet.samples
    ratios, covered, to_peak = [], 0, []
    for i, s in enumerate(samples):
        ahead = [x.load for x in samples[i + 1:] if x.t <= s.t + horizon]
        if s.predicted is None or not ahead or samples[-1].t < s.t + horizon:
            continue
        peak = max(ahead)
        ratios.append(s.predicted / max(s.load, 1.0))
        to_peak.append(s.predicted / max(peak, 1.0))
        covered += s.predicted >= peak
    if not ratios:
        return ["| forecast | none was written |"]
    return [
        f"| forecast / load at the same second (median) | {statistics.median(ratios):.2f} |",
        f"| forecast / peak load of the next {horizon:g} s (median) | {statistics.median(to_peak):.2f} |",
        f"| seconds whose forecast covered that peak | {covered} of {len(ratios)} ({100 * covered / len(ratios):.0f}%) |",
    ]


def report(fleets: list[Fleet], out: Path, args: argparse.Namespace, per_replica: float,
           series: pd.Series, horizon: float) -> None:
    summaries = [summarise(f, per_replica) for f in fleets]
    plot(fleets, summaries, out / "demo.png", args, per_replica, series.index[0])
    (out / "samples.json").write_text(json.dumps({f.name: [asdict(s) for s in f.samples] for f in fleets}))

    def row(label: str, cell: Any) -> str:
        return f"| {label} | " + " | ".join(cell(s) for s in summaries) + " |"

    def share(part: int, whole: int) -> str:
        return f"{part} of {whole} ({100 * part / max(1, whole):.1f}%)"

    table = [
        "| | " + " | ".join(f"`{f.name}` ({'predictive floor' if f.predictive else 'reactive only'})" for f in fleets) + " |",
        "|---|" + "---|" * len(fleets),
        row("seconds with load above ready capacity", lambda s: share(s.over, s.samples)),
        row(f"requests that waited for a batch slot (TTFT > {WAITED_TTFT:g} s)", lambda s: share(s.waited, s.sent)),
        row("requests failed or dropped", lambda s: str(s.failed)),
        row("latency p50 / p99 (s)", lambda s: f"{s.p50:.2f} / {s.p99:.2f}"),
        row("pod-seconds asked for", lambda s: str(s.pod_seconds)),
        row("most pods asked for", lambda s: str(s.peak_pods)),
    ]
    if any(s.pending for s in summaries):  # other work on a shared cluster held GPUs the fleets asked for
        table.append(row("seconds with a pod Pending (no free GPU)", lambda s: str(s.pending)))
    predictive = next((f for f in fleets if f.predictive), None)
    forecast = ["| forecast (requests in flight) | value |", "|---|---|",
                *forecast_lines(predictive, horizon)] if predictive else []
    lines = [
        "# AutoGLM demo report", "",
        f"Trace `{Path(args.trace).name}` from {args.start} ({series.index[0]:%A}), {args.speedup:g}x (one trace minute "
        f"per {60 / args.speedup:g} s), scale {args.scale:g} requests per trace request, each request {PROMPT_TOKENS} "
        f"prompt + {MAX_TOKENS} generated tokens; {args.history_days:g} trace days of load history published first, "
        f"then {args.warmup_minutes:g} trace minutes of warm-up replayed but not measured; "
        f"cold start {args.cold_start_minutes:g} trace minutes; {per_replica:g} requests in flight per pod; the "
        f"same arrivals to both deployments at the same time.", "",
        *table, "", *forecast, "",
        "![load, capacity, floor and forecast of both deployments](demo.png)", "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    print("\n".join(table + [""] + forecast))
    print(f"      report: {out / 'report.md'}  plot: {out / 'demo.png'}")
    print("      alerts and dashboard shipped with the chart: charts/autoglm-operator/files/autoglm-rules.yaml, "
          "charts/autoglm-operator/files/autoglm-dashboard.json (docs/operations.md#alerts-and-dashboard)")


def plot(fleets: list[Fleet], summaries: list[Summary], path: Path, args: argparse.Namespace, per_replica: float,
         trace_start: pd.Timestamp) -> None:
    """One panel per fleet, same axes: load, ready capacity, overload shaded; floor and forecast."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(len(fleets), 1, figsize=(11, 3.6 * len(fleets)), sharex=True, sharey=True)
    for ax, fleet, summary in zip(axes, fleets, summaries):
        t = [s.t for s in fleet.samples]
        load = [s.load for s in fleet.samples]
        capacity = [s.serving_pods * per_replica for s in fleet.samples]
        ax.plot(t, load, label="load (running + waiting)", color="tab:blue", linewidth=1)
        ax.plot(t, capacity, label="ready capacity", color="tab:green", drawstyle="steps-post")
        ax.fill_between(t, capacity, load, where=[x > c for x, c in zip(load, capacity)], step="post",
                        color="tab:red", alpha=0.35, label="load above ready capacity")
        if fleet.predictive:
            ax.plot(t, [s.floor * per_replica for s in fleet.samples], label="predictive floor x perReplica",
                    color="tab:orange", drawstyle="steps-post")
            ax.plot(t, [math.nan if s.predicted is None else s.predicted for s in fleet.samples],
                    label="forecast (peak over the lead time)", color="tab:purple", linewidth=1, linestyle="--")
        kind = "predictive floor" if fleet.predictive else "reactive only"
        ax.set_title(f"{fleet.name} ({kind}): {summary.over} s above ready capacity, {summary.pod_seconds} pod-seconds")
        ax.set_ylabel("requests in flight")
        ax.legend(loc="upper left", fontsize=8)
    axes[-1].xaxis.set_major_formatter(FuncFormatter(
        lambda x, _: f"{x:.0f}\n{trace_start + pd.Timedelta(seconds=x * args.speedup):%H:%M}"))
    axes[-1].set_xlabel(f"seconds into the replay, and trace time ({args.speedup:g}x)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


EXPLORE = """
Explore (the demo stopped its operator, predictor, collector and engines: the status stays as the demo
left it until `make run` starts the operator again):
  eval "$(hack/testenv env)"
  kubectl get autoglmdeployments -n {namespace}
  kubectl get scaledobject,deploy,svc,pdb,virtualservice -n {namespace}
  kubectl get autoglmdeployment {name} -n {namespace} -o jsonpath='{{.status}}' | python3 -m json.tool
  .venv/bin/autoglm render -f hack/demo/glm-chat.yaml --capabilities keda,istio
  make run                        # the operator again, in the foreground (Ctrl-C stops it): the status moves again
  less {logs}/operator.log        # also collector.log, predictor.log, engine-*.log
  less {out}/report.md            # and the plot {out}/demo.png (any image viewer)
  hack/testenv down               # stop the environment
"""


# `make run` also serves the namespace every example in manifests/examples/ lives in, so the
# README's `kubectl apply -f manifests/examples/...` reconciles against it.
EXAMPLES_NAMESPACE = "ml"


def run_operator() -> int:
    """`make run`: the operator in the foreground against the local environment, under the
    same chart identity and with the same flags as in the demo, serving the demo's namespace and
    the examples' (`ml`); Ctrl-C stops it."""
    env = up_shared()
    namespace = yaml.safe_load(CR_FILE.read_text())["metadata"]["namespace"]
    namespaces = [namespace, EXAMPLES_NAMESPACE]
    components.install_crds(env)
    for each in namespaces:
        env.kubectl("create", "namespace", each, check=False)
    with tempfile.TemporaryDirectory(prefix="autoglm-run-") as directory:
        identity = components.chart_identities(env, RELEASE, namespace, namespaces, Path(directory),
                                               token_seconds=86400)["operator"]
        print(f"operator as {identity.user}, watching namespaces {', '.join(namespaces)}; Ctrl-C stops it",
              flush=True)
        proc = subprocess.Popen(components.autoglm_argv(operator_args(namespaces)),
                                env=components.identity_environment(identity))
        try:
            return proc.wait()
        except KeyboardInterrupt:  # the operator got the same SIGINT from the terminal and shuts down
            return proc.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="make demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trace", default=str(sample_traces.NASA_PER_MINUTE))
    p.add_argument("--start", default="1995-07-12T06:30", help="first trace minute replayed (a Wednesday's morning ramp)")
    p.add_argument("--seconds", type=float, default=240.0, help="real seconds of replay")
    p.add_argument("--speedup", type=float, default=60.0, help="trace seconds per real second")
    p.add_argument("--scale", type=float, default=0.25, help="requests per trace request")
    p.add_argument("--history-days", type=float, default=3.0, help="trace days of load history published before the replay")
    p.add_argument("--cold-start-minutes", type=float, default=5.0, help="trace minutes before a new pod serves")
    p.add_argument("--warmup-minutes", type=float, default=15.0,
                   help="trace minutes before --start replayed first, not measured (both fleets start where their HPAs put them)")
    p.add_argument("--out", default=str(config.REPO_DIR / "out" / "demo"))
    p.add_argument("--operator-only", action="store_true",
                   help="only run the operator in the foreground, as the demo does (make run)")
    args = p.parse_args(argv)
    if args.speedup <= 0 or args.seconds <= 0 or args.scale < 0 or args.history_days <= 0 or args.warmup_minutes < 0:
        p.error("--speedup, --seconds and --history-days must be > 0, --scale and --warmup-minutes >= 0")
    try:
        return run_operator() if args.operator_only else run(args)
    except (procs.TestenvError, ValueError) as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
