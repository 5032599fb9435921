"""kopf wiring: every event that may need a converge calls `Reconciler.request`, and nothing else.

Handlers that converge are synchronous, so kopf runs them in its thread pool and the blocking
Kubernetes client never stalls the event loop; child event handlers are async and only record
(children_cache.py) and schedule (debounce.py). kopf's handler bookkeeping is kept in memory
(kopf_state.py: no annotation patches per change). No finalizer: the resync and rollout ticks are
the operator's own (periodic.py; kopf timers would put one on every resource, and its release
depended on rights a namespace deletion removes first), children go by owner reference, and
NodeGroups are deleted by the converge the resource's DELETED event requests, swept at start
(`sweep_edge`), and owned by the Namespace (edge_sync.py): a namespace deletion may take the
operator's rights before its watch sees DELETED. kopf is
still told the old finalizer's name, so it takes it off resources an older operator marked. Only
the reconciler's `kopf.event` calls for real transitions become Events, never kopf's log lines
(kopf's default).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from autoglm_operator.api.labels import INSTANCE_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from autoglm_operator.api.spec import GROUP, PLURAL, VERSION
from autoglm_operator.reconcile.children_cache import POD, ChildrenCache
from autoglm_operator.reconcile.converge import GONE, Reconciler
from autoglm_operator.reconcile.kinds import CHILD_KINDS, DEPLOYMENT
from autoglm_operator.rollout.canary import ACTIVE
from autoglm_operator.runtime.debounce import Debouncer
from autoglm_operator.runtime.forecast_watch import ForecastWatch
from autoglm_operator.runtime.kopf_state import MemoryDiffBaseStorage, MemoryProgressStorage
from autoglm_operator.runtime.periodic import Periodic, Tick
from autoglm_operator.status.conditions import Event

ANNOTATION_PREFIX = "autoglm.io"
FINALIZER = f"{ANNOTATION_PREFIX}/finalizer"  # only removed now (from resources of older operators)
RETRY_SECONDS = 10.0
CHILD_EVENT_DELAY = 1.0  # converge once this long after the first of a burst of child events (debounce.py)
DEBOUNCED_WORKERS = 4
WORKER_LIMIT = 100  # kopf's per-kind limit of resources processed at once
WORKER_IDLE_SECONDS = 0.5
ROLLOUT_TICK_SECONDS = 2.0  # step timers and drain delays are checked this often while a rollout runs
PERIODIC_WORKERS = 8  # converges wait on the API server, not the CPU (kopf ran its timers in asyncio's default pool: 6 threads on 2 cores)


def settings() -> kopf.OperatorSettings:
    """Peering (name, priority, standalone) is passed to kopf.run, which sets it on these settings."""
    configured = kopf.OperatorSettings()
    configured.persistence.finalizer = FINALIZER
    configured.persistence.progress_storage = MemoryProgressStorage(prefix=ANNOTATION_PREFIX)
    configured.persistence.diffbase_storage = MemoryDiffBaseStorage(prefix=ANNOTATION_PREFIX)
    # At most this many resources (per watched kind) are being processed at once; the rest wait as
    # queued events. Unlimited (kopf's default), a thousand resources created together each held
    # kopf's copies of its body while waiting for the converge threads: 450 MB at 1,000 (`make bench`).
    # A worker holds its slot until it was idle this long (kopf's default 5 s let 20 slots pass only
    # 4 pods a second, and readiness lagged minutes behind).
    configured.queueing.worker_limit = WORKER_LIMIT
    configured.queueing.idle_timeout = WORKER_IDLE_SECONDS
    configured.posting.reporting_component = "autoglm-operator"
    configured.posting.event_name_prefix = "autoglm-"
    return configured


def post_event(resource: Mapping[str, Any], event: Event) -> None:
    kopf.event(dict(resource), type=event.type, reason=event.reason, message=event.message[:1000])


def forget_handled(configured: kopf.OperatorSettings, uid: str) -> None:
    """Drop kopf's in-memory bookkeeping of a deleted resource."""
    for storage in (configured.persistence.progress_storage, configured.persistence.diffbase_storage):
        if isinstance(storage, (MemoryProgressStorage, MemoryDiffBaseStorage)):
            storage.forget(uid)


def rolling_out(status: Mapping[str, Any], **_: Any) -> bool:
    """A canary runs or a drained revision waits to retire: only then does the rollout tick run
    (periodic.py), so a thousand resources at rest cost no tick runs."""
    canary = status.get("canary") or {}
    return canary.get("phase") in ACTIVE or bool(canary.get("retiring"))


def build_registry(reconciler: Reconciler, *, resync_seconds: float, forget: Callable[[str], None] = lambda uid: None,
                   cache: ChildrenCache | None = None, active: Callable[[], bool] = lambda: True) -> kopf.OperatorRegistry:
    """`forget(uid)` is called once a resource is gone (for state kept per resource). A `cache`
    (the one the reconciler's Cluster reads) is fed from watches of every child kind and of pods.
    `active()` says whether this replica works now (peering.py): kopf pauses its own handlers, the
    operator's own deadlines (scheduler.py: ticks, forecast expiries, debounced child events) ask."""
    registry = kopf.OperatorRegistry()
    on_resource: dict[str, Any] = {"registry": registry, "errors": kopf.ErrorsMode.TEMPORARY, "backoff": RETRY_SECONDS}

    def converge(namespace: str, name: str, **_: Any) -> None:
        reconciler.request(namespace, name)

    children_settled = Debouncer(lambda key: reconciler.request(*key), CHILD_EVENT_DELAY,
                                 ThreadPoolExecutor(DEBOUNCED_WORKERS, thread_name_prefix="debounced"), active=active)

    async def child_changed(namespace: str, labels: Mapping[str, str], body: Mapping[str, Any], type: str | None,
                            child_kind: str = "", **_: Any) -> None:
        """A Deployment or pod of ours changed: drift to correct, readiness or scheduling to report
        (with a cache: only when the event told it something new, children_cache.py). Async: it
        only records and schedules, so the cache is current before any converge reads it."""
        instance = labels.get(INSTANCE_LABEL)
        news = cache is None or cache.observe(child_kind, body, deleted=type == "DELETED")
        if instance and news:
            children_settled.request((namespace, instance))

    def tick(key: tuple[str, str], what: Tick) -> bool:
        """False when the resource is gone though no DELETED event said so (a watch that lost its
        rights in a namespace being deleted): its state here goes as on DELETED."""
        if what is Tick.RESYNC and cache is not None:
            cache.expire(*key)
        if reconciler.request(*key) != GONE:
            return True
        gone(*key)
        return False

    # A failed resync (the API server unreachable) runs again after RETRY_SECONDS, not a whole
    # resync interval later (kopf's timers retried after 60 s by default: a canary stalled a minute).
    ticks = Periodic(tick, resync_seconds, ROLLOUT_TICK_SECONDS,
                     ThreadPoolExecutor(PERIODIC_WORKERS, thread_name_prefix="periodic"),
                     active=active, retry_seconds=RETRY_SECONDS)
    # Stale-forecast converges, one at a time as before (they are rare: one per silent predictor).
    forecasts = ForecastWatch(reconciler.request, ThreadPoolExecutor(1, thread_name_prefix="forecast-expiry"),
                              active=active)
    schedulers = (children_settled.scheduler, ticks.scheduler, forecasts.scheduler)

    # The uid each resource had at its last watch event: kopf keeps its state per uid, and a tick
    # that finds a resource gone (no DELETED event came) knows only its name.
    uids: dict[tuple[str, str], str] = {}

    def gone(namespace: str, name: str) -> None:
        """Drop what is kept per resource, here and in kopf (`forget`)."""
        ticks.forget(namespace, name)
        forecasts.forget(namespace, name)
        children_settled.forget((namespace, name))
        if cache is not None:
            cache.forget(namespace, name)
        uid = uids.pop((namespace, name), None)
        if uid is not None:
            forget(uid)

    def sweep(**_: Any) -> None:
        """NodeGroups of resources deleted while no operator ran (no finalizer waits for one)."""
        reconciler.sweep_edge()

    def start_ticks(**_: Any) -> None:
        for scheduler in schedulers:
            scheduler.start()

    def stop_ticks(**_: Any) -> None:
        """No scheduled converge may start while kopf closes its loop (kopf.event would fail in it)."""
        for scheduler in schedulers:
            scheduler.stop()

    # Ids: kopf logs "Activity '<id>' succeeded", else the qualname ('build_registry.<locals>.sweep').
    kopf.on.login(registry=registry)(kopf.login_via_client)
    kopf.on.startup(registry=registry, id="sweep-node-groups")(sweep)
    kopf.on.startup(registry=registry, id="start-ticks")(start_ticks)
    kopf.on.cleanup(registry=registry, id="stop-ticks")(stop_ticks)
    kopf.on.resume(GROUP, VERSION, PLURAL, id="converge-resume", **on_resource)(converge)
    kopf.on.create(GROUP, VERSION, PLURAL, id="converge-create", **on_resource)(converge)
    kopf.on.update(GROUP, VERSION, PLURAL, id="converge-update", **on_resource)(converge)
    def resource_seen(namespace: str, name: str, body: Mapping[str, Any], type: str | None, **_: Any) -> None:
        """Every watch event of a resource: its ticks (periodic.py); status.forecast (the
        predictor's) changed the floor, or will go stale: converge then (forecast_watch.py); gone:
        one more converge deletes its cluster-scoped NodeGroups (none can be owned by it)."""
        uids[(namespace, name)] = body["metadata"]["uid"]
        if type == "DELETED":
            gone(namespace, name)
            reconciler.delete_edge(namespace, name)
        else:
            ticks.observe(namespace, name, rolling_out(body.get("status") or {}))
            forecasts.observe(namespace, name, body)

    kopf.on.event(GROUP, VERSION, PLURAL, id="resource", registry=registry)(resource_seen)
    ours = {MANAGED_BY_LABEL: MANAGED_BY}
    if cache is not None:
        _feed(registry, cache, ours, children_settled)
    for kind in (DEPLOYMENT, POD):
        async def trigger(child_kind: str = kind.kind, **kwargs: Any) -> None:
            await child_changed(child_kind=child_kind, **kwargs)

        kopf.on.event(kind.group, kind.version, kind.plural, id=f"child-{kind.plural}", registry=registry,
                      labels=ours)(trigger)
    return registry


def _feed(registry: kopf.OperatorRegistry, cache: ChildrenCache, labels: Mapping[str, str], converge: Debouncer) -> None:
    """Watch the child kinds other than Deployments into `cache` (Deployments and pods feed it in
    child_changed, which converges on what they tell). These handlers are async, so they run in
    kopf's event loop at once instead of queueing behind converges in the thread pool."""
    for kind in CHILD_KINDS:
        if kind == DEPLOYMENT:
            continue

        async def cached(body: Mapping[str, Any], type: str | None, child_kind: str = kind.kind, **_: Any) -> None:
            cache.observe(child_kind, body, deleted=type == "DELETED")

        kopf.on.event(kind.group, kind.version, kind.plural, id=f"cache-{kind.plural}", registry=registry,
                      labels=dict(labels))(cached)

    async def child_deleted(namespace: str, labels: Mapping[str, str], type: str | None, **_: Any) -> None:
        """Someone deleted a child: recreate it now (changes to the other kinds wait for the resync)."""
        instance = labels.get(INSTANCE_LABEL)
        if type == "DELETED" and instance:
            converge.request((namespace, instance))

    for kind in CHILD_KINDS:
        if kind != DEPLOYMENT:
            kopf.on.event(kind.group, kind.version, kind.plural, id=f"deleted-{kind.plural}", registry=registry,
                          labels=dict(labels))(child_deleted)
