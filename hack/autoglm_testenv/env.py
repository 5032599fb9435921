"""One local environment: the cluster, Kafka and Prometheus, described by a JSON state file.

`up` builds whatever is missing from the cache, starts every service on free 127.0.0.1 ports with
its data under a fresh temp dir, and waits until each one answers. `down` stops them all from any
shell, using the pids in the state file. Tests get the same `Env` object through pytest fixtures.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autoglm_testenv import cluster, cold_start, config, custom_metrics, kafka, keda, procs, prometheus

PORT_NAMES = (
    "etcd", "etcd_peer", "etcd_metrics", "apiserver", "controller_manager", "scheduler", "kwok",
    "kafka", "kafka_controller", "prometheus", *keda.PORT_NAMES, *custom_metrics.PORT_NAMES,
)


@dataclass
class Env:
    root: str
    ports: dict[str, int]
    pids: dict[str, int] = field(default_factory=dict)
    admin_token: str = ""
    started_at: float = 0.0

    # --- where things are -------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return Path(self.root) / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def ca_file(self) -> Path:
        return Path(self.root) / "pki" / "ca.crt"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports['kafka']}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    @property
    def prometheus_targets(self) -> Path:
        return Path(self.root) / "prometheus" / "targets"

    @property
    def logs(self) -> Path:
        return Path(self.root) / "logs"

    @property
    def audit_log(self) -> Path:
        return self.logs / "audit.log"

    @property
    def state_file(self) -> Path:
        return Path(self.root) / "env.json"

    # --- helpers for tests and humans -------------------------------------------------------
    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self._run(config.binaries().kubectl, args, input, check, timeout)

    def helm(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self._run(config.binaries().helm, args, None, check, timeout)

    def _run(self, binary: Path, args: tuple[str, ...], input: str | None, check: bool, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a CLI against this cluster; with `check`, a failure raises with the CLI's own message."""
        result = subprocess.run([str(binary), f"--kubeconfig={self.kubeconfig}", *args],
                                input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise procs.TestenvError(f"`{binary.name} {' '.join(args)}` exited {result.returncode}: {result.stderr.strip()}")
        return result

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def wait_crds_established(self, timeout: float = 60) -> None:
        """Wait until every CRD has `Established=True`. Not `kubectl wait --for=condition=Established`:
        on a just-created CRD whose `status.conditions` is still null (the API server's CRD
        controller lags on a loaded machine) kubectl 1.34 exits at once with ".status.conditions
        accessor error" instead of waiting."""
        def established() -> bool:
            crds = self.kubectl_json("get", "crd")["items"]
            return all(any(c.get("type") == "Established" and c.get("status") == "True"
                           for c in (crd.get("status") or {}).get("conditions") or []) for crd in crds)

        procs.wait_until("CRDs Established", established, timeout)

    def api_client(self, token: str | None = None) -> Any:
        """A kubernetes.client.ApiClient as the admin, or as whoever `token` belongs to."""
        import kubernetes

        cfg = kubernetes.client.Configuration()
        cfg.host = self.server
        cfg.ssl_ca_cert = str(self.ca_file)
        cfg.api_key = {"authorization": f"Bearer {token or self.admin_token}"}
        return kubernetes.client.ApiClient(cfg)

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """A real token for a ServiceAccount, issued by the API server's TokenRequest API."""
        out = self.kubectl("create", "token", name, "-n", namespace, f"--duration={seconds}s")
        return out.stdout.strip()

    def add_scrape_target(self, name: str, address: str, labels: dict[str, str] | None = None) -> Path:
        return prometheus.add_target(self.prometheus_targets, name, address, labels)

    def set_cold_start(self, namespace: str, seconds: float) -> None:
        """Pods created from now on in `namespace` turn Ready `seconds` after kwok starts them (0: at once)."""
        self.kubectl("patch", "namespace", namespace, "--type=merge", "-p", json.dumps(cold_start.namespace_patch(seconds)))

    # --- faults, for tests of what survives an API server crash ------------------------------
    def kill_apiserver(self) -> None:
        """SIGKILL the API server (no graceful shutdown, as when its node dies); etcd, the
        controllers, kwok and every client keep running and must reconnect on their own."""
        pid = self.pids["kube-apiserver"]
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        procs.wait_until("kube-apiserver to exit", lambda: not procs.alive(pid), 10)

    def start_apiserver(self, timeout: float = 90) -> None:
        """Start the API server again on the same port with the same etcd, certificates and tokens
        (so kubeconfigs and ServiceAccount tokens stay valid); return once /readyz answers."""
        pid = cluster.start_apiserver(config.binaries(), Path(self.root), self.ports)
        self.pids["kube-apiserver"] = pid
        self.save()
        procs.wait_until("kube-apiserver", lambda: procs.http_ok(f"{self.server}/readyz", self.admin_token), timeout,
                         pid, self.logs / "kube-apiserver.log")

    def save(self) -> None:
        self.state_file.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> "Env":
        return cls(**json.loads(path.read_text()))

    def running(self) -> dict[str, bool]:
        return {name: procs.alive(pid) for name, pid in self.pids.items()}

    def describe(self) -> str:
        state = self.running()
        lines = [f"autoglm test environment in {self.root}"]
        where = {
            "kube-apiserver": self.server, "kafka": self.kafka_bootstrap, "prometheus": self.prometheus_url,
            "etcd": f"http://127.0.0.1:{self.ports['etcd']}",
        }
        for name in self.pids:
            lines.append(f"  {name:<24} {'running' if state[name] else 'STOPPED':<8} {where.get(name, '')}")
        lines += [
            f"  kubeconfig: {self.kubeconfig}",
            f"  prometheus targets dir: {self.prometheus_targets}",
            f"  logs: {self.logs}",
            # `env` also puts the cached kubectl, helm and autoglm on PATH: a new machine may have no kubectl.
            'Use it:  eval "$(hack/testenv env)"; kubectl get nodes   (from the checkout: KUBECONFIG, kubectl, helm, autoglm)',
        ]
        return "\n".join(lines)


def ensure_built() -> config.Binaries:
    """Build or fetch what the cache lacks; a missing toolchain or registry fails with its reason."""
    bins = config.binaries()
    if not bins.missing():
        return bins
    print(f"testenv: building missing tools into {config.cache_dir()} (cold: about 30 min on 2 cores)", file=sys.stderr, flush=True)
    result = subprocess.run(["bash", str(config.BUILD_SCRIPT), "all"])
    if result.returncode != 0:
        raise procs.TestenvError(f"building the test environment failed ({config.BUILD_SCRIPT} all exited {result.returncode}); see the message above")
    still = bins.missing()
    if still:
        raise procs.TestenvError("the build finished but these are missing: " + ", ".join(map(str, still)))
    return bins


def up(root: Path | None = None) -> Env:
    """Start everything and wait until each service answers; on failure stop what was started."""
    bins = ensure_built()
    base = root or Path(tempfile.mkdtemp(prefix="autoglm-testenv-"))
    (base / "logs").mkdir(parents=True, exist_ok=True)
    env = Env(root=str(base), ports={name: procs.free_port() for name in PORT_NAMES}, started_at=time.time())
    for name, port in env.ports.items():
        procs.ensure_port_free(port, name)
    try:
        env.admin_token = cluster.write_credentials(base / "pki")
        env.kubeconfig.write_text(cluster.kubeconfig_yaml(env.server, env.ca_file, env.admin_token))
        env.pids["kafka"] = kafka.start(bins.kafka_libs, base, env.ports["kafka"], env.ports["kafka_controller"])
        env.pids["prometheus"], _ = prometheus.start(bins.prometheus, base, env.ports["prometheus"])
        env.pids.update(cluster.start_control_plane(bins, base, env.ports, env.kubeconfig))
        env.save()
        cluster.wait_ready(base, env.ports, env.admin_token, env.pids)
        _install_cluster_contents(env, bins)
        _start_keda(env, bins)
        _start_custom_metrics(env, bins)
        procs.wait_until(
            "prometheus", lambda: procs.http_ok(f"{env.prometheus_url}/-/ready"), 60, env.pids["prometheus"], env.logs / "prometheus.log"
        )
        procs.wait_until("kafka", lambda: kafka.broker_ready(env.kafka_bootstrap), 90, env.pids["kafka"], env.logs / "kafka.log")
    except BaseException:
        down(env)
        raise
    return env


def _install_cluster_contents(env: Env, bins: config.Binaries) -> None:
    nodes = "\n---\n".join(json.dumps(n) for n in cluster.fake_nodes())
    env.kubectl("apply", "-f", "-", input=nodes)
    # The third-party CRDs, and all of KEDA's (its operator watches every kind it defines).
    crd_files = sorted(str(p) for p in [*bins.crds.glob("*.yaml"), *(bins.keda_bin.parent / "crds").glob("*.yaml")])
    for path in crd_files:
        env.kubectl("apply", "--server-side", "-f", path)
    env.wait_crds_established()
    env.kubectl("wait", "--for=condition=Ready", "--timeout=60s", "node", "--all")
    # The controller manager creates each namespace's default ServiceAccount; pods race it otherwise.
    procs.wait_until("default ServiceAccount", lambda: env.kubectl("get", "sa", "default", check=False).returncode == 0, 60)
    env.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": cold_start.policy()}))


def _start_keda(env: Env, bins: config.Binaries) -> None:
    """KEDA's three processes, registered with the API server; returns once the external metrics
    API is Available (the HPA controller reads it) and the webhooks and the operator answer."""
    base = Path(env.root)
    env.pids.update(keda.start(bins, base, env.ports, env.server))
    env.save()
    objects = keda.registration(keda.webhooks_config(bins), env.ca_file.read_bytes(), env.ports)
    env.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    for name, port in (("keda-operator", "keda_operator_health"), ("keda-webhooks", "keda_webhooks_health")):
        procs.wait_until(name, lambda p=env.ports[port]: procs.http_ok(f"http://127.0.0.1:{p}/readyz"), 90,
                         env.pids[name], env.logs / f"{name}.log")
    procs.wait_until("keda-webhooks serving", lambda: keda.listening(env.ports["keda_webhooks"]), 60,
                     env.pids["keda-webhooks"], env.logs / "keda-webhooks.log")

    _wait_available(env, keda.APISERVICE, "keda-adapter")


def _start_custom_metrics(env: Env, bins: config.Binaries) -> None:
    """prometheus-adapter as the custom metrics API (HPA mode); returns once its APIServices are Available."""
    name = custom_metrics.PROCESS
    env.pids[name] = custom_metrics.start(bins, Path(env.root), env.ports["prometheus_adapter"], env.prometheus_url,
                                          env.kubeconfig)
    env.save()
    objects = custom_metrics.registration(env.ca_file.read_bytes(), env.ports["prometheus_adapter"])
    env.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    for apiservice in custom_metrics.APISERVICES:
        _wait_available(env, apiservice, name)


def _wait_available(env: Env, apiservice: str, process: str) -> None:
    """Wait until the API server reaches the aggregated API `apiservice` served by `process`."""
    def available() -> bool:
        conditions = env.kubectl_json("get", "apiservice", apiservice)["status"].get("conditions", [])
        return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)

    procs.wait_until(f"APIService {apiservice} Available ({process})", available, 90, env.pids[process],
                     env.logs / f"{process}.log")


def down(env: Env, keep_data: bool = False) -> None:
    """Stop every service (children included), all at once, and remove the data directory."""
    procs.stop(*env.pids.values())
    if not keep_data:
        shutil.rmtree(env.root, ignore_errors=True)


def up_shared() -> Env:
    """This checkout's running shared environment, or a new one that outlives this process:
    `hack/testenv`, the tests and the demo of this checkout find it through its state pointer
    (config.state_pointer); other checkouts have their own."""
    env = current()
    if env is None:
        env = up()
        env.save()
        config.state_pointer().parent.mkdir(parents=True, exist_ok=True)
        config.state_pointer().write_text(str(env.state_file))
    return env


def current() -> Env | None:
    """The environment `hack/testenv up` in this checkout left running, if all its processes live."""
    pointer = config.state_pointer()
    if not pointer.exists():
        return None
    try:
        env = Env.load(Path(pointer.read_text().strip()))
    except (OSError, ValueError, TypeError):
        return None
    if not all(env.running().values()):
        return None
    return env
