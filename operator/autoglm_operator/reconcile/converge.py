"""The one converge path: read everything, decide with pure functions, write only the differences.

Every trigger (create, update, resume, the resync timer, a child Deployment or pod changing) ends
here, and converging twice in a row is the same as converging once. The order matters:
1. validate the whole spec first, so an invalid spec changes nothing but the status;
2. decide which revision serves and record a traffic decision first (rollout/plan.py);
3. apply only the objects whose fingerprint changed or whose live copy drifted;
4. prune the labelled children that are no longer desired (old revisions, an HPA after KEDA, ...);
5. patch the status only when it differs, and post Events for the transitions.
The decisions of 3-5 are pure (reconcile/plan.py: `plan_children`, then `plan_status` from what the
writes left); this module only reads, executes the plans in that order, and reads again.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from kubernetes.client.exceptions import ApiException

from autoglm_operator.api.revision import revision
from autoglm_operator.api.schema import InvalidSpec
from autoglm_operator.api.spec import Instance
from autoglm_operator.reconcile import edge_sync, metrics
from autoglm_operator.reconcile.apply import Cluster, server_message
from autoglm_operator.reconcile.diff import ObjectKey
from autoglm_operator.reconcile.discovery import Discovery
from autoglm_operator.reconcile.kinds import CHILD_KINDS, kind_named
from autoglm_operator.reconcile.plan import (
    ChildrenPlan,
    LiveState,
    StatusPlan,
    deployments,
    plan_children,
    plan_status,
    status_change,
)
from autoglm_operator.render.desired import validate
from autoglm_operator.render.edge import EDGE_OF_LABEL
from autoglm_operator.rollout.plan import PrometheusAnalyzer, plan as rollout_plan
from autoglm_operator.status.conditions import Event, failed_status, invalid_status

# (resource, event) -> None; posting is the caller's business (kopf in the operator).
EventSink = Callable[[Mapping[str, Any], Event], None]

log = logging.getLogger("autoglm.reconcile")
GONE = "gone"  # the converge's result when the resource no longer exists (or is being deleted)


def _log(message: str, **fields: Any) -> None:
    """key=value in the message for text logs, the same fields as JSON keys for JSON logs."""
    log.info("%s %s", message, " ".join(f"{k}={v}" for k, v in fields.items()), extra=fields)


class Coalescer:
    """Runs at most one converge per resource at a time; a request arriving meanwhile causes one more run.

    Triggers are many (a burst of pod events) and a converge reads fresh state anyway, so one
    extra run after the current one covers every request made while it ran.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._again: dict[Hashable, bool] = {}  # running keys -> another run requested

    def run(self, key: Hashable, work: Callable[[], None]) -> bool:
        """False when the work was handed to the run already in progress."""
        with self._lock:
            if key in self._again:
                self._again[key] = True
                return False
            self._again[key] = False
        try:
            while True:
                work()
                with self._lock:
                    if not self._again[key]:
                        del self._again[key]
                        return True
                    self._again[key] = False
        except BaseException:
            with self._lock:
                self._again.pop(key, None)
            raise


class WriteRefused(Exception):
    """The API server refused one of a converge's child writes; `what` names it ("apply Deployment glm-1a2b")."""

    def __init__(self, what: str, cause: ApiException) -> None:
        super().__init__(f"{what} refused by the API server: {server_message(cause)}")
        self.cause = cause

    @property
    def transient(self) -> bool:
        """Worth kopf's quick retry (an overloaded or unreachable server, a webhook that did not
        answer, a write conflict); the rest waits for the resync or a spec change."""
        return self.cause.status in (None, 0, 409, 429) or (self.cause.status or 0) >= 500


class Reconciler:
    def __init__(
        self,
        cluster: Cluster,
        discovery: Discovery,
        post_event: EventSink,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        analyzer: PrometheusAnalyzer | None = None,
    ) -> None:
        self._cluster = cluster
        self._discovery = discovery
        self._post_event = post_event
        self._clock = clock
        self._coalescer = Coalescer()
        self._analyzer = analyzer or PrometheusAnalyzer()

    def request(self, namespace: str, name: str) -> str | None:
        """The result of the last converge this call ran (`converge`); None when a converge already
        running for the resource took the request over (it runs once more)."""
        results: list[str] = []
        ran = self._coalescer.run((namespace, name), lambda: results.append(self.converge(namespace, name)))
        return results[-1] if ran else None

    def converge(self, namespace: str, name: str) -> str:
        """changed, unchanged, invalid, refused or GONE (the autoglm_operator_reconciles_total result)."""
        started = time.monotonic()
        result = "error"
        try:
            result = self._converge(namespace, name)
        finally:
            metrics.RECONCILES.labels(result=result).inc()
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        return result

    def _converge(self, namespace: str, name: str) -> str:
        resource = self._cluster.get_resource(namespace, name)
        if resource is None or resource["metadata"].get("deletionTimestamp"):
            if resource is None and self._discovery.capabilities().kubeedge:
                # Cluster-scoped, so no owner reference to the resource: here, coalesced with any
                # converge still running, which could otherwise re-apply them after a delete.
                edge_sync.delete_node_groups(self._cluster, namespace, name)
            metrics.STATUS.forget(namespace, name)
            return GONE  # the garbage collector removes the children through their owner reference
        served = self._discovery.served()
        capabilities = self._discovery.capabilities()
        previous = resource.get("status") or {}
        try:
            inst = validate(resource, capabilities)
        except InvalidSpec as exc:
            invalid = invalid_status(previous, resource["metadata"]["generation"], str(exc), self._clock())
            self._write_status(resource, previous, status_change(previous, previous, invalid))
            return "invalid"

        children = self._cluster.list_children(namespace, name, [k for k in CHILD_KINDS if k in served],
                                               never_converged="observedGeneration" not in previous)
        desired = revision(inst.spec)
        # Which revision is stable, the canary's weights and mirror, what to keep (rollout/plan.py).
        traffic = rollout_plan(inst, resource, desired, deployments(children), self._clock(), self._analyzer)
        recorded = previous  # the status as written so far, for the metrics (reconcile/metrics.py)
        if traffic.commit is not None:  # a traffic decision is recorded before the children follow it
            self._cluster.patch_status(namespace, name, traffic.commit)
            recorded = self._recorded(resource, previous, traffic.commit, traffic.analysed)
            self._post_events(resource, traffic.events)
        # status.forecast is the predictor's; judged fresh or stale once, for the render and status.autoscaling.
        judged_at = self._clock()
        writes = plan_children(inst, resource, capabilities, traffic, desired, children, judged_at)
        try:
            changes = self._write_children(resource, writes, children)
        except WriteRefused as refused:
            # Ready=False with the server's words and one Warning Event (on the transition), not a
            # silent retry loop; nothing is pruned after a refused apply.
            failed = failed_status(previous, resource["metadata"]["generation"], "ApplyFailed", str(refused), self._clock())
            self._write_status(resource, recorded, status_change(previous, previous, failed))
            if refused.transient:
                raise refused.cause from refused
            return "refused"
        live = self._read_live(inst, children)
        self._write_status(resource, recorded, plan_status(inst, resource, desired, traffic, writes.held, live, judged_at,
                                                           self._clock()), traffic.analysed)
        return "changed" if changes or writes.rescaled else "unchanged"

    def delete_edge(self, namespace: str, name: str) -> None:
        """The resource is gone: one more converge finds it so, deletes its cluster-scoped NodeGroups
        (the rest goes by owner reference) and drops its series from /metrics. Through the
        coalescer, so a converge still running for it (which read the resource before it went and
        may apply NodeGroups) finishes first: deleting beside it left NodeGroups re-applied for good."""
        self.request(namespace, name)

    def sweep_edge(self) -> None:
        """Delete NodeGroups whose resource went while no operator ran. Never fails the caller (the
        operator's start): a sweep that cannot run now is logged and runs at the next start."""
        def gone(namespace: str, name: str) -> bool:
            try:
                return self._cluster.get_resource(namespace, name) is None
            except ApiException:  # not ours to judge (403: a namespace another operator watches)
                return False

        try:
            edge_sync.sweep_node_groups(self._cluster, gone)
        except ApiException as exc:
            log.warning("NodeGroup sweep skipped: %s %s", exc.status, exc.reason)

    def _write_children(self, resource: Mapping[str, Any], writes: ChildrenPlan,
                        children: dict[ObjectKey, Mapping[str, Any]]) -> list[str]:
        """Applies, prunes, then NodeGroups; `children` follows the writes. The changes announced
        in one `Applied` Event, which is posted only once all of them are made."""
        namespace, name = resource["metadata"]["namespace"], resource["metadata"]["name"]
        for step in writes.applies:
            try:
                if step.handover is not None:
                    self._cluster.hand_over_replicas(step.obj, step.handover)
                children[step.key] = self._cluster.apply(step.obj)
            except ApiException as exc:
                raise WriteRefused(f"apply of {step.key[0]} {step.key[1]}", exc) from exc
            _log("applied", resource=f"{namespace}/{name}", kind=step.key[0], child=step.key[1], reason=step.reason.text)
        for kind, child in writes.prune:
            try:
                self._cluster.delete(kind_named(kind), children[(kind, child)])
            except ApiException as exc:
                raise WriteRefused(f"delete of {kind} {child}", exc) from exc
            children.pop((kind, child))
            _log("pruned", resource=f"{namespace}/{name}", kind=kind, child=child)
        try:
            synced = edge_sync.sync_node_groups(self._cluster, namespace, name, writes.node_groups, writes.kubeedge, writes.held)
        except ApiException as exc:
            raise WriteRefused("a NodeGroup write", exc) from exc
        changes = writes.changes() + synced
        if changes:
            self._post_event(resource, Event("Normal", "Applied", "; ".join(changes)))
        return changes

    def _read_live(self, inst: Instance, children: Mapping[ObjectKey, Mapping[str, Any]]) -> LiveState:
        """The pods (and, with spec.edge, the nodes and edge pods) the status is computed from."""
        namespace, name = inst.namespace, inst.name
        if not inst.spec.edge:
            return LiveState(children, self._cluster.list_pods(namespace, name))
        edge_pods = self._cluster.list_pods_selected(namespace, f"{EDGE_OF_LABEL}={name}")
        nodes = self._cluster.list_nodes()
        return LiveState(children, self._cluster.list_pods(namespace, name), nodes, edge_pods)

    def _write_status(self, resource: Mapping[str, Any], recorded: Mapping[str, Any], change: StatusPlan,
                      analysed: bool = False) -> None:
        """Patch the status (`recorded` so far) when it differs, then post the Events that follow it."""
        if change.patch is not None:
            meta = resource["metadata"]
            self._cluster.patch_status(meta["namespace"], meta["name"], change.patch)
            # The fields written, so a line repeating the phase still says what moved (replicas, floor, ...).
            _log("status", resource=f"{meta['namespace']}/{meta['name']}", phase=change.phase,
                 changed=",".join(sorted(change.patch)))
        self._recorded(resource, recorded, change.patch or {}, analysed)
        self._post_events(resource, change.events)

    def _recorded(self, resource: Mapping[str, Any], before: Mapping[str, Any], patch: Mapping[str, Any],
                  analysed: bool) -> dict[str, Any]:
        """The status `patch` left (written), published as the resource's series; `analysed`: an
        analysis ran in this converge (counted by the write that records it)."""
        after = metrics.patched(before, patch)
        metrics.STATUS.record(resource["metadata"]["namespace"], resource["metadata"]["name"], before, after, analysed,
                              resource.get("spec"))
        return after

    def _post_events(self, resource: Mapping[str, Any], events: Iterable[Event]) -> None:
        for event in events:
            self._post_event(resource, event)
