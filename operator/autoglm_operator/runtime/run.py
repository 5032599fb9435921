"""Starting the operator process: logging, clients, metrics and health endpoints, then kopf."""
from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timezone

import kopf
import prometheus_client
import urllib3

from autoglm_operator.api.kube_client import api_client
from autoglm_operator.reconcile import metrics
from autoglm_operator.reconcile.apply import Cluster
from autoglm_operator.reconcile.children_cache import ChildrenCache
from autoglm_operator.reconcile.converge import Reconciler
from autoglm_operator.reconcile.discovery import Discovery
from autoglm_operator.runtime.handlers import build_registry, forget_handled, post_event, settings
from autoglm_operator.runtime.logs import quiet_retry_later
from autoglm_operator.runtime.peering import PeeringGate, peering_reader


@dataclasses.dataclass(frozen=True)
class Options:
    namespaces: list[str]  # empty: every namespace
    resync_seconds: float
    discovery_seconds: float
    metrics_port: int  # 0 for none
    health_port: int  # 0 for none
    peering: str | None  # kopf peering object name; None runs standalone
    priority: int
    log_level: str  # debug, info, warning or error
    log_format: str  # json or plain


def run(options: Options) -> None:
    """Blocks until SIGINT/SIGTERM; kopf handles the signals and stops gracefully."""
    kopf.configure(log_format=kopf.LogFormat[options.log_format.upper()])
    logging.getLogger().setLevel(options.log_level.upper())
    quiet_retry_later()  # the API server's 429s while it starts (logs.py)
    if options.log_level != "debug":
        # kopf reports every handler run ("Timer 'resync' succeeded") at INFO; keep its problems only.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    api = api_client()
    if not api.configuration.verify_ssl:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # once here, not per request
        logging.getLogger("autoglm").warning("the API server's TLS certificate is not verified (kubeconfig says so)")
    cache = ChildrenCache()  # children and pods from watches: no LISTs per converge (children_cache.py)
    reconciler = Reconciler(Cluster(api, cache), Discovery(api, options.discovery_seconds), post_event)
    if options.metrics_port:
        prometheus_client.start_http_server(options.metrics_port)
    configured = settings()
    # A standby replica publishes no per-resource series (reconcile/metrics.py StatusMetrics).
    gate = PeeringGate(peering_reader(api, options.peering, options.namespaces), options.priority,
                       clock=lambda: datetime.now(timezone.utc),
                       changed=lambda active: metrics.STATUS.stand_by(not active)) if options.peering else None
    kopf.run(
        registry=build_registry(reconciler, resync_seconds=options.resync_seconds,
                                forget=lambda uid: forget_handled(configured, uid), cache=cache,
                                active=gate.active if gate else lambda: True),
        settings=configured,
        standalone=options.peering is None,
        priority=options.priority,
        peering_name=options.peering,
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
        liveness_endpoint=f"http://0.0.0.0:{options.health_port}/healthz" if options.health_port else None,
    )


