"""kopf wiring: every event that may need a converge calls `Reconciler.request`, and nothing else.

Handlers are synchronous, so kopf runs them in its thread pool and the blocking Kubernetes client
never stalls the event loop. kopf's own state lives under `autoglm.io` annotations and its
finalizer is `autoglm.io/finalizer`: kopf puts it on every resource because the resync timer must
be stopped before the resource goes (children need nothing: the garbage collector removes them
through their owner references). Only the reconciler's `kopf.event` calls for real transitions
become Events, never kopf's log lines (kopf's default).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from autoglm_operator.canary import ACTIVE
from autoglm_operator.conditions import Event
from autoglm_operator.forecast_watch import ForecastWatch
from autoglm_operator.labels import INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from autoglm_operator.reconcile import Reconciler
from autoglm_operator.spec import GROUP, PLURAL, VERSION

ANNOTATION_PREFIX = "autoglm.io"
FINALIZER = f"{ANNOTATION_PREFIX}/finalizer"
RETRY_SECONDS = 10.0
ROLLOUT_TICK_SECONDS = 2.0  # step timers and drain delays are checked this often while a rollout runs
# A timer that fails (the API server unreachable) runs again after its own backoff, and kopf's
# default of 60 s held every canary step for a minute after an API server outage.


def settings() -> kopf.OperatorSettings:
    """Peering (name, priority, standalone) is passed to kopf.run, which sets it on these settings."""
    configured = kopf.OperatorSettings()
    configured.persistence.finalizer = FINALIZER
    configured.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    configured.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    # On deletion kopf must stop the resync timer before it drops the finalizer. A sync converge
    # cannot be interrupted, so wait for it briefly, then re-check soon (kopf's default is 60 s,
    # which holds every deletion that races a resync for a minute).
    configured.background.instant_exit_timeout = 1.0
    configured.background.cancellation_polling = 2.0
    configured.posting.reporting_component = "autoglm-operator"
    configured.posting.event_name_prefix = "autoglm-"
    return configured


def post_event(resource: Mapping[str, Any], event: Event) -> None:
    kopf.event(dict(resource), type=event.type, reason=event.reason, message=event.message[:1000])


def build_registry(reconciler: Reconciler, *, resync_seconds: float) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    on_resource: dict[str, Any] = {"registry": registry, "errors": kopf.ErrorsMode.TEMPORARY, "backoff": RETRY_SECONDS}

    def converge(namespace: str, name: str, **_: Any) -> None:
        reconciler.request(namespace, name)

    def child_changed(namespace: str, labels: Mapping[str, str], **_: Any) -> None:
        """A Deployment or pod of ours changed: drift to correct, readiness or scheduling to report."""
        instance = labels.get(INSTANCE_LABEL)
        if instance:
            reconciler.request(namespace, instance)

    def delete_edge(namespace: str, name: str, **_: Any) -> None:
        """NodeGroups are cluster-scoped: no owner reference can take them away with the resource."""
        reconciler.delete_edge(namespace, name)

    def rollout_tick(namespace: str, name: str, status: Mapping[str, Any], **_: Any) -> None:
        """A canary step or a drain delay ends at a time, not on an event (canary.py)."""
        canary = status.get("canary") or {}
        if canary.get("phase") in ACTIVE or canary.get("retiring"):
            reconciler.request(namespace, name)

    kopf.on.login(registry=registry)(kopf.login_via_client)
    kopf.timer(GROUP, VERSION, PLURAL, id="rollout", registry=registry, interval=ROLLOUT_TICK_SECONDS,
               backoff=ROLLOUT_TICK_SECONDS)(rollout_tick)
    kopf.on.resume(GROUP, VERSION, PLURAL, id="converge-resume", **on_resource)(converge)
    kopf.on.create(GROUP, VERSION, PLURAL, id="converge-create", **on_resource)(converge)
    kopf.on.update(GROUP, VERSION, PLURAL, id="converge-update", **on_resource)(converge)
    kopf.on.delete(GROUP, VERSION, PLURAL, id="edge-cleanup", **on_resource)(delete_edge)
    kopf.timer(
        GROUP, VERSION, PLURAL, id="resync", registry=registry, interval=resync_seconds, initial_delay=resync_seconds,
        backoff=min(resync_seconds, RETRY_SECONDS),
    )(converge)
    forecasts = ForecastWatch(reconciler.request)

    def forecast_seen(namespace: str, name: str, body: Mapping[str, Any], type: str | None, **_: Any) -> None:
        """status.forecast (the predictor's) changed the floor, or will go stale: converge then (forecast_watch.py)."""
        if type == "DELETED":
            forecasts.forget(namespace, name)
        else:
            forecasts.observe(namespace, name, body)

    kopf.on.event(GROUP, VERSION, PLURAL, id="forecast", registry=registry)(forecast_seen)
    ours = {MANAGED_BY_LABEL: MANAGED_BY}
    kopf.on.event("apps", "v1", "deployments", id="child-deployments", registry=registry, labels=ours)(child_changed)
    kopf.on.event("", "v1", "pods", id="child-pods", registry=registry, labels=ours)(child_changed)
    return registry
