"""The operator at scale: `python -m autoglm_testenv.bench --n 1000 --json out/bench.json` (`make bench`).

Not a test: it starts its own environment (autoglm_testenv.up, own ports and temp dir), adds
`--nodes` kwok GPU nodes and measures, in one run:
1. the floor (bench_floor.py): the same children created directly with the kubernetes client,
   timed until every Deployment has a Ready pod;
2. the operator, a real `autoglm operator` subprocess under the Helm chart's ServiceAccount:
   N AutoGLMDeployments created at once, time until all are Ready, reconcile duration p50/p99
   (its Prometheus histogram), create-to-Ready per resource, API writes per resource by kind
   (the audit log), its CPU time and peak RSS (/proc);
3. the steady state: a window of `--steady-seconds` with nothing changing, in which each resource
   is resynced; writes and CPU per minute.
It prints a table with ours/floor ratios and writes everything as JSON. Everything it started is
stopped at the end, failures included.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from kubernetes import client

import autoglm_testenv
from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.spec import GROUP, KIND, PLURAL, VERSION
from autoglm_operator.reconcile.discovery import Discovery
from autoglm_operator.render.desired import desired_objects
from autoglm_predictor.pipeline.bench import percentile
from autoglm_testenv import audit, bench_floor, cluster, components, procs
from autoglm_testenv.bench_stats import (
    bucket_delta,
    counter_total,
    cpu_seconds,
    histogram_buckets,
    histogram_quantile,
    peak_rss_mb,
    ratio,
    table,
)

RECONCILE_HISTOGRAM = "autoglm_operator_reconcile_seconds"
RECONCILES = "autoglm_operator_reconciles"
MODEL = "zai-org/GLM-4-9B-0414"
CLIENT_AGENT = "OpenAPI-Generator/"  # the kubernetes Python client's User-Agent


def bench_resource(namespace: str, i: int) -> dict[str, Any]:
    """The smallest useful AutoGLMDeployment (manifests/examples/01-minimal.yaml): one GPU pod."""
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND,
            "metadata": {"name": f"glm-{i:04d}", "namespace": namespace}, "spec": {"model": {"name": MODEL}}}


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Process:
    """CPU time and peak memory of one running process, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._ticks = os.sysconf("SC_CLK_TCK")

    def cpu(self) -> float:
        return cpu_seconds(Path(f"/proc/{self.pid}/stat").read_text(), self._ticks)

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(Path(f"/proc/{self.pid}/status").read_text())

    def rss_mb(self) -> float:
        return peak_rss_mb(Path(f"/proc/{self.pid}/status").read_text(), field="VmRSS")


def wait_counted(what: str, count: Callable[[], int], total: int, timeout: float, every: float = 10.0) -> float:
    """Poll `count` until it reaches `total`, printing progress; the seconds it took."""
    started = last_said = time.monotonic()
    while True:
        done = count()
        now = time.monotonic()
        if done >= total:
            say(f"{what}: {done}/{total} after {now - started:.0f} s")
            return now - started
        if now - started > timeout:
            raise autoglm_testenv.TestenvError(f"{what}: only {done}/{total} after {timeout:.0f} s")
        if now - last_said >= every:
            say(f"{what}: {done}/{total} after {now - started:.0f} s")
            last_said = now
        time.sleep(1.0)


def _items(response: Any) -> list[dict[str, Any]]:
    return json.loads(response.data)["items"]


class FirstReady:
    """When each resource was first seen Ready. kwok on a loaded 2-core machine can flip pods
    NotReady minutes later (kwok's heartbeats lag), and the operator reports that truthfully; the
    operator's own work is done once each resource has been Ready."""

    def __init__(self, objects: client.CustomObjectsApi, namespace: str) -> None:
        self._objects = objects
        self._namespace = namespace
        self.seen: dict[str, float] = {}  # name -> epoch seconds first seen Ready
        self.ready_now = 0

    def poll(self) -> int:
        items = _items(self._objects.list_namespaced_custom_object(GROUP, VERSION, self._namespace, PLURAL,
                                                                   _preload_content=False))
        now = time.time()
        ready = [cr["metadata"]["name"] for cr in items if _is_ready(cr)]
        for name in ready:
            self.seen.setdefault(name, now)
        self.ready_now = len(ready)
        return len(self.seen)


def _is_ready(cr: dict[str, Any]) -> bool:
    """Ready=True for the resource's current generation."""
    status = cr.get("status") or {}
    if status.get("observedGeneration") != cr["metadata"]["generation"]:
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])


def ready_deployments(apps: client.AppsV1Api, namespace: str) -> int:
    items = _items(apps.list_namespaced_deployment(namespace, _preload_content=False))
    return sum(1 for d in items if (d.get("status") or {}).get("readyReplicas", 0) >= 1)


def write_breakdown(writes: list[dict[str, Any]]) -> dict[str, int]:
    """'verb resource[/subresource]' -> count, most first."""
    keys = Counter(
        f"{w['verb']} {w['objectRef'].get('resource')}" + (f"/{w['objectRef']['subresource']}" if w["objectRef"].get("subresource") else "")
        for w in writes
    )
    return dict(keys.most_common())


def setup(env: autoglm_testenv.Env, gpu_nodes: int) -> None:
    nodes = "\n---\n".join(json.dumps(n) for n in cluster.fake_nodes(gpu_nodes=gpu_nodes))
    env.kubectl("apply", "-f", "-", input=nodes, timeout=300)
    env.kubectl("wait", "--for=condition=Ready", "--timeout=300s", "node", "--all", timeout=330)
    components.install_crds(env)


def run_floor(env: autoglm_testenv.Env, api: client.ApiClient, capabilities: Capabilities, n: int, workers: int,
              timeout: float) -> dict[str, Any]:
    """The floor in its own namespace, deleted afterwards so its pods free the GPUs again."""
    namespace = f"bench-floor-{uuid.uuid4().hex[:5]}"
    env.kubectl("create", "namespace", namespace)
    objects = bench_floor.children_of([bench_resource(namespace, i) for i in range(n)], capabilities)
    offset = audit.offset(env.audit_log)
    say(f"floor: creating {len(objects)} objects ({len(objects) // n} per resource) with {workers} threads")
    create_seconds = bench_floor.create_all(api, objects, workers)
    ready_seconds = create_seconds + wait_counted(
        "floor: Deployments with a Ready pod", lambda: ready_deployments(client.AppsV1Api(api), namespace), n, timeout
    )
    # The controller-manager and scheduler act as the admin too; the floor's requests are the Python client's.
    floor_writes = [w for w in audit.writes(env.audit_log, "autoglm-admin", offset)
                    if w["objectRef"].get("namespace") == namespace and w.get("userAgent", "").startswith(CLIENT_AGENT)]
    say(f"floor: all Ready in {ready_seconds:.1f} s; deleting its namespace")
    env.kubectl("delete", "namespace", namespace, f"--timeout={timeout:.0f}s", timeout=timeout + 30)
    return {
        "create_seconds": round(create_seconds, 2),
        "all_ready_seconds": round(ready_seconds, 2),
        "writes_per_resource": round(len(floor_writes) / n, 2),
    }


def start_operator(env: autoglm_testenv.Env, namespace: str, resync_seconds: float, log_dir: Path) -> tuple[int, int, str]:
    """The operator under the chart's ServiceAccount, watching `namespace`; (pid, metrics port, audit user name)."""
    identity = components.chart_identities(env, "bench", "autoglm-system", [namespace], log_dir)["operator"]
    metrics_port, health_port = procs.free_port(), procs.free_port()
    pid = components.start_autoglm(
        "operator",
        ["operator", f"--namespace={namespace}", f"--resync-seconds={resync_seconds}", f"--metrics-port={metrics_port}",
         f"--health-port={health_port}", "--log-format=plain"],
        identity, log_dir,
    )
    procs.wait_until("operator liveness", lambda: procs.http_ok(f"http://127.0.0.1:{health_port}/healthz"), 60, pid,
                     log_dir / "operator.log")
    return pid, metrics_port, identity.user


def quiet(env: autoglm_testenv.Env, user: str, seconds: float, timeout: float) -> bool:
    """Wait until `user` wrote nothing for `seconds`; False when it kept writing for `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        offset = audit.offset(env.audit_log)
        time.sleep(seconds)
        if not audit.writes(env.audit_log, user, offset):
            return True
    return False


def run_operator(env: autoglm_testenv.Env, api: client.ApiClient, args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    namespace = "bench"
    env.kubectl("create", "namespace", namespace)
    pid, metrics_port, user = start_operator(env, namespace, args.resync_seconds, log_dir)
    process = Process(pid)
    scrape = lambda: requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text  # noqa: E731
    objects = client.CustomObjectsApi(api)
    try:
        metrics_before, cpu_before, offset = scrape(), process.cpu(), audit.offset(env.audit_log)
        say(f"operator (pid {pid}, log {log_dir / 'operator.log'}): creating {args.n} AutoGLMDeployments at once")
        started = time.monotonic()
        created_at = time.time()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            list(pool.map(lambda i: objects.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, bench_resource(namespace, i), _preload_content=False), range(args.n)))
        create_seconds = time.monotonic() - started
        first_ready = FirstReady(objects, namespace)
        ready_seconds = create_seconds + wait_counted(
            "operator: AutoGLMDeployments that have been Ready", first_ready.poll, args.n, args.timeout
        )
        cpu_ready = process.cpu() - cpu_before
        to_ready = [seen - created_at for seen in first_ready.seen.values()]
        ready_at_the_end = first_ready.ready_now
        settled = quiet(env, user, 10, 300)
        writes = audit.writes(env.audit_log, user, offset)
        metrics_after = scrape()
        reconcile = bucket_delta(histogram_buckets(metrics_after, RECONCILE_HISTOGRAM), histogram_buckets(metrics_before, RECONCILE_HISTOGRAM))
        cpu_settled = process.cpu() - cpu_before
        say(f"operator: {len(writes)} writes ({len(writes) / args.n:.1f} per resource); steady window of {args.steady_seconds:.0f} s")

        steady_cpu0, steady_offset, steady_metrics0 = process.cpu(), audit.offset(env.audit_log), scrape()
        time.sleep(args.steady_seconds)
        steady_writes = audit.writes(env.audit_log, user, steady_offset)
        steady_metrics1 = scrape()
        steady_cpu = process.cpu() - steady_cpu0
        per_minute = 60.0 / args.steady_seconds
        resyncs = counter_total(steady_metrics1, RECONCILES) - counter_total(steady_metrics0, RECONCILES)
        steady_reconcile = bucket_delta(histogram_buckets(steady_metrics1, RECONCILE_HISTOGRAM),
                                        histogram_buckets(steady_metrics0, RECONCILE_HISTOGRAM))
        return {
            "create_seconds": round(create_seconds, 2),
            "all_ready_seconds": round(ready_seconds, 2),
            "create_to_ready_p50_seconds": round(percentile(to_ready, 0.5), 2) if to_ready else None,
            "create_to_ready_p99_seconds": round(percentile(to_ready, 0.99), 2) if to_ready else None,
            "ready_when_the_last_became_ready": ready_at_the_end,
            "reconciles": counter_total(metrics_after, RECONCILES) - counter_total(metrics_before, RECONCILES),
            "reconcile_p50_seconds": _rounded(histogram_quantile(reconcile, 0.5)),
            "reconcile_p99_seconds": _rounded(histogram_quantile(reconcile, 0.99)),
            "writes_per_resource": round(len(writes) / args.n, 2),
            "writes_by_kind": {k: round(v / args.n, 2) for k, v in write_breakdown(writes).items()},
            "settled": settled,
            "cpu_seconds_until_ready": round(cpu_ready, 1),
            "cpu_seconds_until_settled": round(cpu_settled, 1),
            "peak_rss_mb": round(process.peak_rss_mb(), 1),
            "rss_mb_after_steady": round(process.rss_mb(), 1),
            "steady_seconds": args.steady_seconds,
            "steady_resyncs_per_minute": round(resyncs * per_minute, 1),
            "steady_writes_per_minute": round(len(steady_writes) * per_minute, 1),
            "steady_writes": write_breakdown(steady_writes),
            "steady_cpu_seconds_per_minute": round(steady_cpu * per_minute, 2),
            "steady_reconcile_p99_seconds": _rounded(histogram_quantile(steady_reconcile, 0.99)),
        }
    finally:
        procs.stop(pid)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def minimum_writes(objects_per_resource: int) -> int:
    """What the design needs at the least: one create per child and one status write saying Ready."""
    return objects_per_resource + 1


def report(result: dict[str, Any]) -> str:
    ours, floor = result["operator"], result["floor"]
    minimum = result["minimum_writes_per_resource"]
    rows = [
        (f"all Ready (s; operator: each has been, {ours['ready_when_the_last_became_ready']} at once)", ours["all_ready_seconds"], floor["all_ready_seconds"], ratio(ours["all_ready_seconds"], floor["all_ready_seconds"])),
        ("creates sent (s)", ours["create_seconds"], floor["create_seconds"], None),
        ("API writes per resource", ours["writes_per_resource"], floor["writes_per_resource"],
         ratio(ours["writes_per_resource"], floor["writes_per_resource"])),
        (f"  vs minimum {minimum} (children + Ready status)", ours["writes_per_resource"], minimum,
         ratio(ours["writes_per_resource"], minimum)),
        ("reconcile p50 / p99 (s)", f"{ours['reconcile_p50_seconds']} / {ours['reconcile_p99_seconds']}", None, None),
        ("create -> Ready p50 / p99 (s)", f"{ours['create_to_ready_p50_seconds']} / {ours['create_to_ready_p99_seconds']}", None, None),
        ("operator CPU until all Ready / settled (s)", f"{ours['cpu_seconds_until_ready']} / {ours['cpu_seconds_until_settled']}", None, None),
        ("operator peak RSS / RSS at the end (MB)", f"{ours['peak_rss_mb']} / {ours['rss_mb_after_steady']}", None, None),
        ("steady: resyncs / min", ours["steady_resyncs_per_minute"], None, None),
        ("steady: writes / min", ours["steady_writes_per_minute"], None, None),
        ("steady: operator CPU s / min", ours["steady_cpu_seconds_per_minute"], None, None),
    ]
    lines = [
        f"{result['n']} AutoGLMDeployments, {result['gpu_nodes']} kwok GPU nodes, resync every {result['resync_seconds']:.0f} s; "
        f"load average {result['load_average_before']} before, {result['load_average_after']} after",
        table(("", "operator", "floor", "ratio"), rows),
        "writes per resource: " + ", ".join(f"{k} {v}" for k, v in ours["writes_by_kind"].items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autoglm_testenv.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="AutoGLMDeployments created at once (default 100)")
    parser.add_argument("--nodes", type=int, default=200, help="kwok GPU nodes, 8 GPUs each (default 200)")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--resync-seconds", type=float, default=300.0,
                        help="the operator's resync interval (default 300, the operator's own default)")
    parser.add_argument("--steady-seconds", type=float, default=300.0,
                        help="the steady-state window, best one resync interval (default 300)")
    parser.add_argument("--workers", type=int, default=8, help="client threads creating objects (default 8)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up waiting for Ready after this (default 1800)")
    parser.add_argument("--skip-floor", action="store_true", help="measure the operator only")
    args = parser.parse_args(argv)
    if args.n < 1 or args.n > args.nodes * 8:
        parser.error(f"--n must be between 1 and {args.nodes * 8} (one GPU each on {args.nodes} nodes of 8)")
    log_dir = Path(tempfile.mkdtemp(prefix="autoglm-bench-"))
    result: dict[str, Any] = {"n": args.n, "gpu_nodes": args.nodes, "resync_seconds": args.resync_seconds,
                              "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    say(f"starting a dedicated environment; operator logs in {log_dir}")
    try:
        env = autoglm_testenv.up()
    except autoglm_testenv.TestenvError as exc:
        print(f"bench: the environment could not start: {exc}", file=sys.stderr)
        return 1
    try:
        setup(env, args.nodes)
        configuration = env.api_client().configuration
        configuration.connection_pool_maxsize = args.workers  # one connection per client thread
        api = client.ApiClient(configuration)
        capabilities = Discovery(api, 3600).capabilities()
        result["children_per_resource"] = len(desired_objects(bench_resource("bench", 0), capabilities))
        result["minimum_writes_per_resource"] = minimum_writes(result["children_per_resource"])
        floor = {"create_seconds": None, "all_ready_seconds": None, "writes_per_resource": None}
        if not args.skip_floor:
            floor = run_floor(env, api, capabilities, args.n, args.workers, args.timeout)
        result["floor"] = floor
        result["operator"] = run_operator(env, api, args, log_dir)
    except autoglm_testenv.TestenvError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        autoglm_testenv.down(env)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(report(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        say(f"results in {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
