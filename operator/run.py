"""Starting the operator process: logging, clients, metrics and health endpoints, then kopf."""
from __future__ import annotations

import dataclasses
import logging

import kopf
import kubernetes
import prometheus_client
import urllib3

from autoglm_operator.apply import Cluster
from autoglm_operator.discovery import Discovery
from autoglm_operator.handlers import build_registry, post_event, settings
from autoglm_operator.reconcile import Reconciler


@dataclasses.dataclass(frozen=True)
class Options:
    namespaces: list[str]  # empty: every namespace
    resync_seconds: float
    discovery_seconds: float
    metrics_address: str  # host:port, empty for none
    health_address: str  # host:port, empty for none
    peering: str | None  # kopf peering object name; None runs standalone
    priority: int
    log_format: str  # json or plain
    verbose: bool


def run(options: Options) -> None:
    """Blocks until SIGINT/SIGTERM; kopf handles the signals and stops gracefully."""
    kopf.configure(verbose=options.verbose, log_format=kopf.LogFormat[options.log_format.upper()])
    if not options.verbose:
        # kopf reports every handler run ("Timer 'resync' succeeded") at INFO; keep its problems only.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    api = _api_client()
    if not api.configuration.verify_ssl:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # once here, not per request
        logging.getLogger("autoglm").warning("the API server's TLS certificate is not verified (kubeconfig says so)")
    reconciler = Reconciler(Cluster(api), Discovery(api, options.discovery_seconds), post_event)
    if options.metrics_address:
        host, port = _split(options.metrics_address)
        prometheus_client.start_http_server(port, addr=host)
    kopf.run(
        registry=build_registry(reconciler, resync_seconds=options.resync_seconds),
        settings=settings(peering_name=options.peering, priority=options.priority),
        standalone=options.peering is None,
        priority=options.priority,
        peering_name=options.peering,
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
        liveness_endpoint=f"http://{options.health_address}/healthz" if options.health_address else None,
    )


def _api_client() -> kubernetes.client.ApiClient:
    """In a pod: its ServiceAccount; elsewhere: the current kubeconfig context (as kopf's own login does)."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "0.0.0.0", int(port)
