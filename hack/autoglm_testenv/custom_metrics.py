"""The custom metrics API (`custom.metrics.k8s.io`) for HPA mode: prometheus-adapter, built from the
Go module proxy (hack/build-tools.sh prometheus-adapter) and run on 127.0.0.1 like KEDA's
external metrics server (keda.py):

- the APIServices `v1beta2` and `v1beta1.custom.metrics.k8s.io` name a Service of type
  ExternalName `localhost`, which the API server resolves to `https://localhost:<port>`; it
  verifies the adapter's certificate against `<service>.<namespace>.svc` with the environment's CA
  and authenticates with its front-proxy client certificate;
- the adapter's rule (`adapter_config`) serves every Prometheus series that carries `namespace` and
  `pod` labels as a Pods metric of that pod, under the series' own name. In a cluster Prometheus'
  Kubernetes discovery adds those labels to each engine pod's series; here one simulated engine
  stands for all pods, so `capacity.py --metrics-port` publishes its running requests divided over
  the Deployment's Ready pods, labelled `pod=...` (capacity.pod_series).

It runs with the admin's kubeconfig: it only reads (pods, and the API server's delegated
authentication and authorization), so it has no writes for the audit log to tell apart.
The environment always starts it: KEDA serves `external.metrics.k8s.io` only, so the two never
answer for the same group, and tests that do not use HPA mode never ask it anything.
"""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from autoglm_testenv import cluster, procs
from autoglm_testenv.config import Binaries

NAMESPACE = "custom-metrics"
SERVICE = "prometheus-adapter"
GROUP = "custom.metrics.k8s.io"
VERSIONS = ("v1beta2", "v1beta1")  # the HPA controller asks v1beta2 first
APISERVICES = tuple(f"{v}.{GROUP}" for v in VERSIONS)
PORT_NAMES = ("prometheus_adapter",)
PROCESS = "prometheus-adapter"
RELIST_SECONDS = 2  # series discovery: a new namespace's pods are served within ~2 s (the default is 10 min)


def adapter_config() -> dict[str, Any]:
    """One rule: any series with `namespace` and `pod` labels, summed per pod over the last sample.
    The metric name is the series name (no `name:` rewrite), so the HPA's Pods metric
    `vllm:num_requests_running` reads the series of that name (prometheus-adapter docs/config.md)."""
    return {"rules": [{
        "seriesQuery": '{namespace!="",pod!=""}',
        "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
        "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
    }]}


def argv(bins: Binaries, root: Path, port: int, prometheus_url: str, kubeconfig: Path) -> list[str]:
    """The adapter's command line: serving flags of k8s.io/apiserver (as KEDA's adapter, which is built
    on the same custom-metrics-apiserver library) and prometheus-adapter's own."""
    pki = root / "pki"
    config = root / "prometheus-adapter.yaml"
    return [
        str(bins.prometheus_adapter), f"--secure-port={port}", "--bind-address=127.0.0.1",
        f"--cert-dir={root / 'prometheus-adapter-certs'}", f"--tls-cert-file={pki / 'prometheus-adapter.crt'}",
        f"--tls-private-key-file={pki / 'prometheus-adapter.key'}", f"--client-ca-file={pki / 'ca.crt'}",
        f"--lister-kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}", f"--prometheus-url={prometheus_url}", f"--config={config}",
        f"--metrics-relist-interval={RELIST_SECONDS}s", "--metrics-max-age=30s",
    ]


def start(bins: Binaries, root: Path, port: int, prometheus_url: str, kubeconfig: Path) -> int:
    """Write the adapter's certificate (signed by the environment's CA, naming 127.0.0.1, localhost and
    its Service) and config, start it, and return its pid."""
    cluster.signed_cert(root / "pki", PROCESS, PROCESS,
                        ["IP:127.0.0.1", "DNS:localhost", f"DNS:{SERVICE}.{NAMESPACE}.svc"])
    (root / "prometheus-adapter.yaml").write_text(yaml.safe_dump(adapter_config()))
    return procs.start(PROCESS, argv(bins, root, port, prometheus_url, kubeconfig), root / "logs")


def registration(ca: bytes, port: int) -> list[dict[str, Any]]:
    """The adapter's namespace, its ExternalName Service and one APIService per served version."""
    bundle = base64.b64encode(ca).decode()
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVICE, "namespace": NAMESPACE},
         "spec": {"type": "ExternalName", "externalName": "localhost"}},
        *({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": f"{version}.{GROUP}"},
           "spec": {"service": {"name": SERVICE, "namespace": NAMESPACE, "port": port}, "group": GROUP,
                    "version": version, "caBundle": bundle, "groupPriorityMinimum": 100, "versionPriority": 200 - i}}
          for i, version in enumerate(VERSIONS)),
    ]
