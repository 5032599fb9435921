"""The one converge path: read everything, decide with pure functions, write only the differences.

Every trigger (create, update, resume, the resync timer, a child Deployment or pod changing) ends
here, and converging twice in a row is the same as converging once. The order matters:
1. validate the whole spec first, so an invalid spec changes nothing but the status;
2. decide which revision serves (rollout/switch.py), render (render/desired.py), fingerprint (diff.py);
3. apply only the objects whose fingerprint changed or whose live copy drifted;
4. prune the labelled children that are no longer desired (old revisions, an HPA after KEDA, ...);
5. patch the status only when it differs, and post Events for the transitions.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from autoglm_operator.api.labels import REVISION_LABEL, deployment_name, selector_string
from autoglm_operator.api.revision import revision
from autoglm_operator.api.schema import InvalidSpec
from autoglm_operator.reconcile import metrics
from autoglm_operator.reconcile import edge_sync
from autoglm_operator.reconcile.apply import Cluster, owned
from autoglm_operator.reconcile.diff import apply_reason, fingerprinted, object_key, prunable, replicas_to_hand_over
from autoglm_operator.reconcile.discovery import Discovery
from autoglm_operator.reconcile.kinds import CHILD_KINDS, DEPLOYMENT, capabilities_of, kind_named
from autoglm_operator.render.autoscaling import autoscaling_status
from autoglm_operator.render.desired import render, validate
from autoglm_operator.render.edge import EDGE_OF_LABEL, is_edge
from autoglm_operator.rollout.plan import UNCHANGED, PrometheusAnalyzer, plan as rollout_plan
from autoglm_operator.status.conditions import (
    Event,
    Observation,
    compute_status,
    invalid_status,
    status_patch,
    transition_events,
)
from autoglm_operator.status.edge import edge_status, live_revision

# (resource, event) -> None; posting is the caller's business (kopf in the operator).
EventSink = Callable[[Mapping[str, Any], Event], None]

log = logging.getLogger("autoglm.reconcile")


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

    def request(self, namespace: str, name: str) -> None:
        self._coalescer.run((namespace, name), lambda: self.converge(namespace, name))

    def converge(self, namespace: str, name: str) -> None:
        started = time.monotonic()
        result = "error"
        try:
            result = self._converge(namespace, name)
        finally:
            metrics.RECONCILES.labels(result=result).inc()
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)

    def _converge(self, namespace: str, name: str) -> str:
        resource = self._cluster.get_resource(namespace, name)
        if resource is None or resource["metadata"].get("deletionTimestamp"):
            return "gone"  # the garbage collector removes the children through their owner reference
        served = self._discovery.served()
        capabilities = capabilities_of(served)
        previous = resource.get("status") or {}
        generation = resource["metadata"]["generation"]
        try:
            inst = validate(resource, capabilities)
        except InvalidSpec as exc:
            self._write_status(resource, invalid_status(previous, generation, str(exc), self._clock()))
            return "invalid"

        children = self._cluster.list_children(namespace, name, [k for k in CHILD_KINDS if k in served],
                                               never_converged="observedGeneration" not in previous)
        desired = revision(inst.spec)
        # Which revision is stable, the canary's weights and mirror, what to keep (rollout/plan.py).
        traffic = rollout_plan(inst, resource, desired, _deployments(children), self._clock(), self._analyzer)
        serving = traffic.serving
        recorded = resource
        if traffic.commit is not None:  # a traffic decision is recorded before the children follow it
            self._cluster.patch_status(namespace, name, traffic.commit)
            recorded = {**resource, "status": {**previous, "currentRevision": serving, "canary": traffic.canary}}
            self._post_events(resource, traffic.events)
        # status.forecast is the predictor's; judged fresh or stale once, for the render and status.autoscaling.
        judged_at = self._clock()
        rendered = render(inst, capabilities, serving, forecast=previous.get("forecast"), now=judged_at, route=traffic.route)
        if desired not in traffic.keep:  # a rolled-back canary, retired after its drain delay
            rendered = [o for o in rendered if (o["kind"], o["metadata"]["name"]) != (DEPLOYMENT.kind, deployment_name(inst, desired))]
        objects = [fingerprinted(owned(obj, resource)) for obj in rendered]
        held = serving != desired  # edge groups move to a new revision once it serves (docs/edge.md)
        objects, node_groups = edge_sync.split(objects, held)
        changes: list[str] = []  # for the Applied Event
        rescaled = 0  # routine applies: logged, no Event (diff.py)
        for obj in objects:
            key = object_key(obj)
            reason = apply_reason(obj, children.get(key))
            handover = replicas_to_hand_over(obj, children.get(key))
            if reason and handover is not None:
                self._cluster.hand_over_replicas(obj, handover)
            if reason:
                children[key] = self._cluster.apply(obj)
                if reason.routine:
                    rescaled += 1
                else:
                    changes.append(f"{reason} {key[0]} {key[1]}")
                _log("applied", resource=f"{namespace}/{name}", kind=key[0], child=key[1], reason=reason.text)

        keep = {object_key(obj) for obj in objects}
        keep |= {(DEPLOYMENT.kind, deployment_name(inst, rev)) for rev in traffic.keep}
        keep |= edge_sync.held_keys(children, held)
        for key in prunable(children, keep):
            self._cluster.delete(kind_named(key[0]), children.pop(key))
            changes.append(f"deleted {key[0]} {key[1]}")
            _log("pruned", resource=f"{namespace}/{name}", kind=key[0], child=key[1])
        changes += edge_sync.sync_node_groups(self._cluster, namespace, name, node_groups, capabilities.kubeedge, held)
        if changes:
            self._post_event(resource, Event("Normal", "Applied", "; ".join(changes)))

        edge: list[dict[str, Any]] = []
        if inst.spec.edge:
            edge_rev = live_revision(o for o in children.values() if is_edge(o)) if held else desired
            edge_pods = self._cluster.list_pods_selected(namespace, f"{EDGE_OF_LABEL}={name}")
            edge = edge_status(inst, edge_rev, self._cluster.list_nodes(), edge_pods)
        observation = Observation(
            generation=generation,
            desired=desired,
            serving=serving,
            selector=selector_string(inst, serving),
            deployments=_deployments(children),
            pods=self._cluster.list_pods(namespace, name),
            edge=edge,
            verdict=traffic.verdict,
            autoscaling=autoscaling_status(inst, previous.get("forecast"), judged_at),
        )
        status = compute_status(previous, observation, self._clock())
        if traffic.canary is not UNCHANGED:
            status["canary"] = traffic.canary
        # Events after the status that records their decision: a converge that fails or dies before
        # it is decided again, and announced again, by the next one.
        self._write_status(recorded, status, previous)
        if traffic.commit is None:
            self._post_events(resource, traffic.events)
        return "changed" if changes or rescaled else "unchanged"

    def delete_edge(self, namespace: str, name: str) -> None:
        """The resource is going: delete its cluster-scoped NodeGroups (the rest goes by owner reference)."""
        edge_sync.delete_node_groups(self._cluster, namespace, name)

    def _write_status(self, resource: Mapping[str, Any], status: dict[str, Any],
                      before: Mapping[str, Any] | None = None) -> None:
        """Patch what differs from the resource's status; Events for the transitions since `before`
        (the status this converge started from, when part of it was written earlier)."""
        previous = resource.get("status") or {}
        patch = status_patch(previous, status)
        if patch is None:
            return
        meta = resource["metadata"]
        self._cluster.patch_status(meta["namespace"], meta["name"], patch)
        _log("status", resource=f"{meta['namespace']}/{meta['name']}", phase=status.get("phase"))
        self._post_events(resource, transition_events(previous if before is None else before, status))

    def _post_events(self, resource: Mapping[str, Any], events: Iterable[Event]) -> None:
        for event in events:
            self._post_event(resource, event)


def _deployments(children: Mapping[tuple[str, str], Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Revision -> live Deployment."""
    found = {}
    for (kind, _), obj in children.items():
        rev = obj["metadata"].get("labels", {}).get(REVISION_LABEL)
        if kind == DEPLOYMENT.kind and rev:
            found[rev] = obj
    return found
