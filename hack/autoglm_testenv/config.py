"""Where the test environment's parts come from and where they live.

Versions are pinned here and in hack/build-tools.sh (which builds them); the cache sits outside the
repo so nothing built is ever committed, and a second `up` on the same machine needs no build.
The tools are shared by every checkout; what runs is not: each checkout has its own folder under
the cache (`checkout_state_dir`) naming the environment it started.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

HACK_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = HACK_DIR.parent
BUILD_SCRIPT = HACK_DIR / "build-tools.sh"
VENV_BIN = REPO_DIR / ".venv" / "bin"  # `make venv`; hack/testenv runs its python

K8S_VERSION = os.environ.get("K8S_VERSION", "1.34.4")
ETCD_VERSION = os.environ.get("ETCD_VERSION", "3.6.16")
KWOK_VERSION = os.environ.get("KWOK_VERSION", "0.7.0")
HELM_VERSION = os.environ.get("HELM_VERSION", "3.21.4")
ISTIO_API_VERSION = os.environ.get("ISTIO_API_VERSION", "1.30.8")
KEDA_VERSION = os.environ.get("KEDA_VERSION", "2.20.1")
KUBEEDGE_VERSION = os.environ.get("KUBEEDGE_VERSION", "1.23.0")
GATEWAY_API_VERSION = os.environ.get("GATEWAY_API_VERSION", "1.6.3")  # keep in step with hack/build-tools.sh
INFERENCE_EXTENSION_VERSION = os.environ.get("INFERENCE_EXTENSION_VERSION", "1.6.0")
PROMETHEUS_ADAPTER_VERSION = os.environ.get("PROMETHEUS_ADAPTER_VERSION", "0.12.0")
KAFKA_VERSION = "4.1.1"  # keep in step with hack/kafka/pom.xml


def cache_dir() -> Path:
    return Path(os.environ.get("AUTOGLM_CACHE", Path.home() / ".cache" / "autoglm-testenv"))


@dataclass(frozen=True)
class Binaries:
    """Paths of everything `up` runs; all of them under the cache."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path
    helm: Path
    prometheus: Path
    kafka_libs: Path
    crds: Path
    kwok_stages: Path  # kwok's pod Stage YAMLs (cold_start.py)
    keda_bin: Path  # KEDA's operator, adapter (external metrics API server) and webhooks (keda.py)
    keda_webhooks: Path  # KEDA's ValidatingWebhookConfiguration, copied last by the build
    prometheus_adapter: Path  # the custom metrics API server for HPA mode (custom_metrics.py)

    def missing(self) -> list[Path]:
        return [p for p in self.__dict__.values() if not p.exists()]


def binaries() -> Binaries:
    c = cache_dir()
    k8s = c / f"k8s-v{K8S_VERSION}" / "bin"
    return Binaries(
        etcd=c / f"etcd-v{ETCD_VERSION}" / "bin" / "etcd",
        kube_apiserver=k8s / "kube-apiserver",
        kube_controller_manager=k8s / "kube-controller-manager",
        kube_scheduler=k8s / "kube-scheduler",
        kubectl=k8s / "kubectl",
        kwok=c / f"kwok-v{KWOK_VERSION}" / "bin" / "kwok",
        helm=c / f"helm-v{HELM_VERSION}" / "bin" / "helm",
        prometheus=Path(os.environ.get("AUTOGLM_PROMETHEUS_BIN", c / "prometheus-deb" / "usr" / "bin" / "prometheus")),
        kafka_libs=c / f"kafka-{KAFKA_VERSION}" / "libs",
        crds=c / (f"crds-istio{ISTIO_API_VERSION}-keda{KEDA_VERSION}-kubeedge{KUBEEDGE_VERSION}"
                  f"-gateway{GATEWAY_API_VERSION}-gie{INFERENCE_EXTENSION_VERSION}"),
        kwok_stages=c / f"kwok-stages-v{KWOK_VERSION}",
        keda_bin=c / f"keda-v{KEDA_VERSION}" / "bin",
        keda_webhooks=c / f"keda-v{KEDA_VERSION}" / "validation_webhooks.yaml",
        prometheus_adapter=c / f"prometheus-adapter-v{PROMETHEUS_ADAPTER_VERSION}" / "bin" / "adapter",
    )


# Set in the environment of every process the test environment starts (procs.start), to this
# checkout's state dir, so `hack/testenv down --force` finds this checkout's stragglers and no one else's.
OWNER_VARIABLE = "AUTOGLM_TESTENV_OWNER"


def checkout_state_dir(repo: Path = REPO_DIR) -> Path:
    """This checkout's own folder under the cache: `<cache>/checkouts/<dir name>-<12 hex digits>`.

    The digits are the start of the SHA-256 of the checkout's absolute path with symlinks resolved,
    so two clones on one machine never share an environment and one clone reached through two
    paths is still one. It lives in the cache, not in the checkout, because it describes running
    processes: `git clean -xfd` must not lose the only record of what to stop.
    """
    resolved = repo.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    return cache_dir() / "checkouts" / f"{resolved.name}-{digest}"


def state_pointer(repo: Path = REPO_DIR) -> Path:
    """The file naming the environment that `hack/testenv up` in this checkout started (reused by pytest)."""
    return checkout_state_dir(repo) / "current-env.json"
