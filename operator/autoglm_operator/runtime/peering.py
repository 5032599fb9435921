"""Whether this replica is the active one of a kopf peering, for the operator's own ticks.

kopf pauses a replica while a live peer of higher priority is registered on the peering object
(kopf/_core/engines/peering.py: peers with equal priority all keep running, with kopf's warning),
and stopped its timers with its watches. It keeps that state to itself, and the resync and rollout
ticks are the operator's own now (periodic.py: kopf timers put a finalizer on every resource), so
the ticks read the same peering object and apply the same rule. Pure rule, thin reader.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from autoglm_operator.api.timestamps import parse_time
from autoglm_operator.runtime.logs import retry_later

log = logging.getLogger("autoglm.peering")
PEERING_GROUP, PEERING_VERSION = "kopf.dev", "v1"
CHECK_SECONDS = 5.0  # kopf's keep-alives are 60 s apart; a takeover is noticed within this


def outranked(peerings: Iterable[Mapping[str, Any]], priority: int, now: datetime) -> bool:
    """Whether a live peer of a higher priority is registered on any of `peerings` (their
    `status`: peer id -> priority, lifetime seconds, lastseen). A peer is live until lastseen +
    lifetime; an entry kopf could not read counts as no peer."""
    for peering in peerings:
        for entry in (peering.get("status") or {}).values():
            if not isinstance(entry, Mapping):
                continue
            try:
                live = parse_time(str(entry["lastseen"])) + timedelta(seconds=int(entry.get("lifetime", 60))) > now
                higher = int(entry.get("priority", 0)) > priority
            except (KeyError, TypeError, ValueError):
                continue
            if live and higher:
                return True
    return False


class PeeringGate:
    """`active()`: this replica works now. Re-read at most every CHECK_SECONDS; a read that fails
    keeps the last answer (kopf itself decides what the watches do). `changed(active)` is called
    on each change of the answer (a replica starts active), in the caller's thread."""

    def __init__(self, read: Callable[[], list[Mapping[str, Any]]], priority: int,
                 clock: Callable[[], datetime], monotonic: Callable[[], float] = time.monotonic,
                 changed: Callable[[bool], None] = lambda active: None) -> None:
        self._read, self._priority, self._clock, self._monotonic = read, priority, clock, monotonic
        self._changed = changed
        self._lock = threading.Lock()
        self._checked: float | None = None
        self._active = True

    def active(self) -> bool:
        with self._lock:
            if self._checked is None or self._monotonic() - self._checked >= CHECK_SECONDS:
                self._checked = self._monotonic()
                try:
                    active = not outranked(self._read(), self._priority, self._clock())
                except ApiException as exc:
                    log.log(logging.DEBUG if retry_later(exc) else logging.WARNING,
                            "peering object unreadable (%s %s): ticks keep their last state", exc.status, exc.reason)
                    active = self._active
                if active != self._active:
                    log.info("ticks %s (peering)", "resumed" if active else "paused for a higher-priority replica")
                    self._active = active
                    self._changed(active)
            return self._active


def peering_reader(api: client.ApiClient, name: str, namespaces: list[str]) -> Callable[[], list[Mapping[str, Any]]]:
    """The ClusterKopfPeering `name` (cluster-wide operator) or the KopfPeering `name` of each
    watched namespace, as kopf uses them; a missing one is no peer."""
    objects = client.CustomObjectsApi(api)

    def read() -> list[Mapping[str, Any]]:
        found = []
        for namespace in namespaces or [None]:
            try:
                if namespace is None:
                    found.append(objects.get_cluster_custom_object(PEERING_GROUP, PEERING_VERSION, "clusterkopfpeerings", name))
                else:
                    found.append(objects.get_namespaced_custom_object(PEERING_GROUP, PEERING_VERSION, namespace,
                                                                      "kopfpeerings", name))
            except ApiException as exc:
                if exc.status != 404:
                    raise
        return found

    return read
