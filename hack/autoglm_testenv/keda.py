"""Real KEDA in the local environment: its operator, its external-metrics API server (the adapter)
and its admission webhooks, built from the Go module proxy (hack/build-tools.sh keda) and run as
local processes against the test cluster.

In a cluster these run as pods behind Services; here everything listens on 127.0.0.1:
- the webhooks are registered with `clientConfig.url: https://127.0.0.1:<port>/<path>` (KEDA's own
  ValidatingWebhookConfiguration, with only the client config changed);
- the APIService `v1beta1.external.metrics.k8s.io` can only name a Service, and Endpoints refuse
  loopback addresses, but the API server resolves a Service of type ExternalName to
  `https://<externalName>:<port>` (k8s.io/apiserver util/proxy ResolveCluster): `localhost` reaches
  the adapter. The API server authenticates to it with its front-proxy client certificate
  (cluster.write_credentials);
- the adapter asks the operator for metric values over KEDA's mutual-TLS gRPC. One certificate,
  signed by the environment's CA and naming 127.0.0.1, localhost and KEDA's Service names, serves
  all three (KEDA reads `ca.crt`, `tls.crt`, `tls.key` from its --cert-dir).
The three run as their own user (cluster.KEDA_USER, with the admin's rights) so the audit log tells
KEDA's writes from others'; the HPA controller that KEDA's HPAs feed is kube-controller-manager's.
"""
from __future__ import annotations

import base64
import json
import shutil
import socket
from pathlib import Path
from typing import Any

import yaml

from autoglm_testenv import cluster, procs
from autoglm_testenv.config import Binaries

NAMESPACE = "keda"
METRICS_SERVICE = "keda-metrics-apiserver"
WEBHOOKS_SERVICE = "keda-admission-webhooks"
OPERATOR_SERVICE = "keda-operator"
APISERVICE = "v1beta1.external.metrics.k8s.io"
PORT_NAMES = ("keda_grpc", "keda_operator_metrics", "keda_operator_health", "keda_adapter", "keda_adapter_metrics",
              "keda_webhooks", "keda_webhooks_metrics", "keda_webhooks_health")
PROCESSES = ("keda-operator", "keda-adapter", "keda-webhooks")


def write_certs(root: Path) -> Path:
    """KEDA's --cert-dir under `root`: ca.crt (the environment's CA), tls.crt and tls.key."""
    pki, certs = root / "pki", root / "keda-certs"
    sans = ["IP:127.0.0.1", "DNS:localhost"] + [f"DNS:{svc}.{NAMESPACE}.svc"
                                              for svc in (METRICS_SERVICE, WEBHOOKS_SERVICE, OPERATOR_SERVICE)]
    cluster.signed_cert(pki, "keda", "keda", sans)
    certs.mkdir(parents=True, exist_ok=True)
    shutil.copy(pki / "ca.crt", certs / "ca.crt")
    shutil.copy(pki / "keda.crt", certs / "tls.crt")
    shutil.copy(pki / "keda.key", certs / "tls.key")
    return certs


def argvs(bins: Binaries, certs: Path, ports: dict[str, int], kubeconfig: Path) -> dict[str, list[str]]:
    """The three command lines (flags from KEDA's own manifests, addresses moved to 127.0.0.1)."""
    local = "127.0.0.1:{}".format
    log = "--zap-log-level=info"
    return {
        "keda-operator": [
            str(bins.keda_bin / "operator"), log, f"--cert-dir={certs}", f"--ca-dir={certs}",
            f"--metrics-bind-address={local(ports['keda_operator_metrics'])}",
            f"--health-probe-bind-address={local(ports['keda_operator_health'])}",
            f"--metrics-service-bind-address={local(ports['keda_grpc'])}",
        ],
        "keda-adapter": [
            str(bins.keda_bin / "adapter"), log, f"--secure-port={ports['keda_adapter']}", "--bind-address=127.0.0.1",
            f"--cert-dir={certs}", f"--tls-cert-file={certs / 'tls.crt'}", f"--tls-private-key-file={certs / 'tls.key'}",
            f"--client-ca-file={certs / 'ca.crt'}", f"--port={ports['keda_adapter_metrics']}",
            f"--lister-kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}", f"--metrics-service-address={local(ports['keda_grpc'])}",
        ],
        "keda-webhooks": [
            str(bins.keda_bin / "webhooks"), log, f"--cert-dir={certs}", f"--port={ports['keda_webhooks']}",
            f"--metrics-bind-address={local(ports['keda_webhooks_metrics'])}",
            f"--health-probe-bind-address={local(ports['keda_webhooks_health'])}",
        ],
    }


def start(bins: Binaries, root: Path, ports: dict[str, int], server: str) -> dict[str, int]:
    """Start KEDA's three processes as cluster.KEDA_USER (its token from cluster.write_credentials);
    return their pids. KEDA's CRDs must be installed first (`registration` objects may follow: the
    operator does not need them)."""
    certs = write_certs(root)
    kubeconfig = root / "keda.kubeconfig"
    kubeconfig.write_text(cluster.kubeconfig_yaml(server, root / "pki" / "ca.crt", (root / "pki" / "keda.token").read_text(),
                                                  user=cluster.KEDA_USER, namespace=NAMESPACE))
    env = {"KUBECONFIG": str(kubeconfig), "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE, "POD_NAMESPACE": NAMESPACE,
           "WATCH_NAMESPACE": ""}
    return {name: procs.start(name, argv, root / "logs", env) for name, argv in argvs(bins, certs, ports, kubeconfig).items()}


def registration(webhooks: dict[str, Any], ca: bytes, ports: dict[str, int]) -> list[dict[str, Any]]:
    """The objects that make the API server call KEDA: its namespace, the ExternalName Service and
    APIService of the external metrics, and KEDA's ValidatingWebhookConfiguration `webhooks` with
    each webhook's Service reference replaced by a URL on 127.0.0.1."""
    bundle = base64.b64encode(ca).decode()
    config = json.loads(json.dumps(webhooks))
    for hook in config["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        hook["clientConfig"] = {"url": f"https://127.0.0.1:{ports['keda_webhooks']}{path}", "caBundle": bundle}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": METRICS_SERVICE, "namespace": NAMESPACE},
         "spec": {"type": "ExternalName", "externalName": "localhost"}},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": APISERVICE},
         "spec": {"service": {"name": METRICS_SERVICE, "namespace": NAMESPACE, "port": ports["keda_adapter"]},
                  "group": "external.metrics.k8s.io", "version": "v1beta1", "caBundle": bundle,
                  "groupPriorityMinimum": 100, "versionPriority": 100}},
        config,
    ]


def webhooks_config(bins: Binaries) -> dict[str, Any]:
    return yaml.safe_load(bins.keda_webhooks.read_text())


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0
