"""A real Kubernetes 1.34 control plane on 127.0.0.1, with kwok standing in for kubelets.

The API server runs with RBAC, a static admin token, service-account token signing (so tests can
act as a ServiceAccount through the TokenRequest API) and an audit log of every write (so tests can
count what the operator writes). Nodes are created here with the GPU, CPU and edge shapes the
product schedules onto; kwok keeps them Ready and runs the pods the scheduler binds to them.
"""
from __future__ import annotations

import base64
import json
import secrets
import subprocess
from pathlib import Path

from autoglm_testenv import cold_start, procs
from autoglm_testenv.config import Binaries

SERVICE_CIDR = "10.96.0.0/16"
KWOK_MANAGED = {"kwok.x-k8s.io/node": "fake"}
GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"
EDGE_GPU_PRODUCT = "NVIDIA-Jetson-AGX-Orin"
EDGE_GROUP_LABEL = "autoglm.io/edge-group"
FRONT_PROXY_CLIENT = "front-proxy-client"
KEDA_USER = "keda-operator"  # KEDA's three processes, as the audit log names them  # CN of the aggregator's client certificate
# HPA controller period: every second, so the compressed time of tests and the demo (a second per
# trace minute) is not outrun by the 15 s default.
HPA_SYNC_PERIOD = "1s"

AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
"""


def _openssl(*args: str) -> None:
    try:
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    except FileNotFoundError:
        raise procs.TestenvError("openssl not found: install it (Debian: apt-get install openssl)") from None
    except subprocess.CalledProcessError as exc:
        raise procs.TestenvError(f"openssl {args[0]} failed: {exc.stderr.decode(errors='replace')}") from None


def signed_cert(pki: Path, name: str, cn: str, sans: list[str]) -> None:
    """`pki/NAME.key` and `pki/NAME.crt` for `cn`, signed by the environment's CA (`pki/ca.*`),
    with the subjectAltNames `sans` (e.g. `IP:127.0.0.1`, `DNS:localhost`); none if `sans` is empty."""
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(pki / f"{name}.key"),
             "-out", str(pki / f"{name}.csr"), "-subj", f"/CN={cn}")
    extra: list[str] = []
    if sans:
        (pki / f"{name}.ext").write_text(f"subjectAltName={','.join(sans)}\n")
        extra = ["-extfile", str(pki / f"{name}.ext")]
    _openssl("x509", "-req", "-in", str(pki / f"{name}.csr"), "-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key"),
             "-CAcreateserial", "-out", str(pki / f"{name}.crt"), "-days", "30", *extra)


def write_credentials(pki: Path) -> str:
    """Create a CA and the API server's certificate, the admin token file, the service-account
    signing key and the aggregator's client certificate (the API server presents it when it proxies
    to an aggregated API such as KEDA's external metrics); return the admin token. Clients verify TLS
    against the CA (no insecure mode)."""
    pki.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(24)
    # KEDA gets an identity of its own (with the admin's rights), so the audit log tells its writes
    # (ScaledObject status and finalizers, its HPAs) from the tests' and the HPA controller's.
    keda_token = secrets.token_hex(24)
    (pki / "keda.token").write_text(keda_token)
    (pki / "tokens.csv").write_text(f'{token},autoglm-admin,autoglm-admin,"system:masters"\n'
                                    f'{keda_token},{KEDA_USER},{KEDA_USER},"system:masters"\n')
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"),
             "-days", "30", "-subj", "/CN=autoglm-testenv-ca")
    signed_cert(pki, "apiserver", "kube-apiserver", ["IP:127.0.0.1", "DNS:localhost", "DNS:kubernetes.default.svc"])
    signed_cert(pki, "front-proxy-client", FRONT_PROXY_CLIENT, [])
    _openssl("genrsa", "-out", str(pki / "sa.key"), "2048")
    _openssl("rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))
    (pki / "audit-policy.yaml").write_text(AUDIT_POLICY)
    return token


def kubeconfig_yaml(server: str, ca_file: Path, token: str, user: str = "autoglm-admin", namespace: str = "default") -> str:
    """A kubeconfig for one identity (JSON is valid YAML)."""
    ca = base64.b64encode(ca_file.read_bytes()).decode()
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "autoglm-testenv", "cluster": {"server": server, "certificate-authority-data": ca}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {"name": "autoglm-testenv", "context": {"cluster": "autoglm-testenv", "user": user, "namespace": namespace}}
            ],
            "current-context": "autoglm-testenv",
        },
        indent=2,
    )


def apiserver_argv(binary: Path, root: Path, ports: dict[str, int]) -> list[str]:
    """The API server's command line. Everything it keeps (etcd, certificates, tokens, audit log)
    is named by `root` and `ports`, so a restart with the same argv is the same API server."""
    pki, logs = root / "pki", root / "logs"
    return [
        str(binary), f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={ports['apiserver']}",
        f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--token-auth-file={pki / 'tokens.csv'}", "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}", "--endpoint-reconciler-type=none", "--allow-privileged=true",
        f"--audit-policy-file={pki / 'audit-policy.yaml'}", f"--audit-log-path={logs / 'audit.log'}",
        "--audit-log-maxsize=200", "--audit-log-maxbackup=1", "--profiling=false",
        # The aggregation layer (KEDA's external-metrics APIService): the API server authenticates
        # to the aggregated server with this client certificate and passes the user in headers.
        f"--requestheader-client-ca-file={pki / 'ca.crt'}", f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
        "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
        f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
        # MutatingAdmissionPolicy (beta, off by default in 1.34) gives pods their cold start (cold_start.py).
        "--feature-gates=MutatingAdmissionPolicy=true", "--runtime-config=admissionregistration.k8s.io/v1beta1=true",
    ]


def start_apiserver(bins: Binaries, root: Path, ports: dict[str, int]) -> int:
    """Start the API server (at start-up, or again after a fault test stopped it); return its pid.
    Its log is appended to, so one file shows both lives."""
    return procs.start("kube-apiserver", apiserver_argv(bins.kube_apiserver, root, ports), root / "logs")


def start_control_plane(bins: Binaries, root: Path, ports: dict[str, int], kubeconfig: Path) -> dict[str, int]:
    """Start etcd, kube-apiserver, controller-manager, scheduler and kwok; return their pids."""
    pki, logs = root / "pki", root / "logs"
    pids: dict[str, int] = {}
    etcd_url = f"http://127.0.0.1:{ports['etcd']}"
    peer_url = f"http://127.0.0.1:{ports['etcd_peer']}"
    pids["etcd"] = procs.start(
        "etcd",
        [
            str(bins.etcd), "--name=autoglm", f"--data-dir={root / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=autoglm={peer_url}", "--unsafe-no-fsync",
            f"--listen-metrics-urls=http://127.0.0.1:{ports['etcd_metrics']}",
        ],
        logs,
    )
    pids["kube-apiserver"] = start_apiserver(bins, root, ports)
    procs.wait_until(
        "etcd", lambda: procs.http_ok(f"http://127.0.0.1:{ports['etcd_metrics']}/health"), 30, pids["etcd"], logs / "etcd.log"
    )
    common = [f"--kubeconfig={kubeconfig}", "--leader-elect=false", "--bind-address=127.0.0.1"]
    pids["kube-controller-manager"] = procs.start(
        "kube-controller-manager",
        [
            str(bins.kube_controller_manager), *common, f"--secure-port={ports['controller_manager']}",
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=false", "--concurrent-deployment-syncs=10",
            # kwok's heartbeats lag on a busy 2-core machine; a short grace period makes nodes flap
            # NotReady and evicts test pods (real clusters keep the 50 s default).
            "--node-monitor-grace-period=300s",
            "--concurrent-replicaset-syncs=10", "--kube-api-qps=200", "--kube-api-burst=400",
            f"--horizontal-pod-autoscaler-sync-period={HPA_SYNC_PERIOD}",
        ],
        logs,
    )
    pids["kube-scheduler"] = procs.start(
        "kube-scheduler",
        [
            str(bins.kube_scheduler), *common, f"--secure-port={ports['scheduler']}",
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
        ],
        logs,
    )
    pids["kwok"] = procs.start(
        "kwok",
        [
            str(bins.kwok), f"--kubeconfig={kubeconfig}", "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--server-address=127.0.0.1:{ports['kwok']}", "--cidr=10.244.0.0/16", "--node-ip=10.0.0.1",
            # kwok renews each node's lease every duration/4, 4 at a time: at its 40 s default 200
            # nodes need 20 writes/s, more than a loaded 2-core API server gives, so leases fell
            # behind the grace period and the node controller set every pod NotReady (make bench).
            "--node-lease-duration-seconds=200",
            # Pod stages with a Ready delay per pod (cold_start.py); node stages stay kwok's defaults.
            f"--config={cold_start.write_kwok_config(bins.kwok_stages, root / 'kwok.yaml')}",
        ],
        logs,
    )
    return pids


def wait_ready(root: Path, ports: dict[str, int], token: str, pids: dict[str, int]) -> None:
    logs = root / "logs"
    api = f"https://127.0.0.1:{ports['apiserver']}"
    procs.wait_until(
        "kube-apiserver", lambda: procs.http_ok(f"{api}/readyz", token), 90, pids["kube-apiserver"], logs / "kube-apiserver.log"
    )
    for name, port in (("kube-controller-manager", "controller_manager"), ("kube-scheduler", "scheduler")):
        procs.wait_until(name, lambda p=ports[port]: procs.http_ok(f"https://127.0.0.1:{p}/healthz"), 60, pids[name], logs / f"{name}.log")
    procs.wait_until("kwok", lambda: procs.http_ok(f"http://127.0.0.1:{ports['kwok']}/healthz"), 60, pids["kwok"], logs / "kwok.log")


def _node(name: str, labels: dict[str, str], capacity: dict[str, str], taints: list[dict[str, str]] | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": dict(KWOK_MANAGED),
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "type": "kwok", **labels},
        },
        "spec": {"taints": taints or []},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def fake_nodes(gpu_nodes: int = 4) -> list[dict]:
    """The fleet the product schedules onto: GPU nodes (tainted), a CPU node and two edge sites.

    Four GPU nodes (32 GPUs): `make e2e` runs two tests side by side, and one test alone may ask
    for more than 16 (every example at rest, tests/e2e/operator/test_idempotence.py: about 23), so
    the one beside it still finds the GPUs it would find alone."""
    base = {"cpu": "64", "memory": "512Gi", "pods": "110", "ephemeral-storage": "1Ti"}
    gpu_taint = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    nodes = [
        _node(f"gpu-node-{i}", {"nvidia.com/gpu.product": GPU_PRODUCT, "nvidia.com/gpu.count": "8"},
              {**base, "nvidia.com/gpu": "8"}, gpu_taint)
        for i in range(gpu_nodes)
    ]
    nodes.append(_node("cpu-node-0", {}, base))
    edge = {"node-role.kubernetes.io/edge": ""}
    small = {"cpu": "8", "memory": "32Gi", "pods": "32", "ephemeral-storage": "200Gi"}
    nodes.append(_node("edge-node-a", {**edge, EDGE_GROUP_LABEL: "site-a"}, small))
    nodes.append(_node("edge-node-b", {**edge, EDGE_GROUP_LABEL: "site-b", "nvidia.com/gpu.product": EDGE_GPU_PRODUCT},
                       {**small, "nvidia.com/gpu": "1"}))
    return nodes
