"""The resync and rollout ticks of each resource, kept by the operator instead of kopf timers.

kopf puts its finalizer on every object a timer or daemon runs for, so that it can stop them before
the object goes (kopf's `on.timer`/`on.daemon` register with `requires_finalizer=True`, whatever
`optional` says; nolar/kopf#1074). That finalizer made every deletion wait for the operator: with
the chart's `watchNamespaces`, `kubectl delete ns` removed the operator's Role first, the release
got 403 and the namespace stayed Terminating for good; with the operator uninstalled, every
resource did (issue 15). Nothing else needs the resource to wait: children go with it by owner
reference, NodeGroups on its DELETED event, with their namespace, or at start (handlers.py). So the
ticks live here, fed by kopf's watch events (which need no finalizer), and a resource can always go.

One thread holds the deadlines (monotonic seconds); the work runs on a small pool of its own, in
the context (contextvars) of the watch event that last saw the resource, where kopf.event finds
kopf's settings.
"""
from __future__ import annotations

import contextvars
import dataclasses
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from enum import Enum

Key = tuple[str, str]  # (namespace, name)
log = logging.getLogger("autoglm.periodic")


class Tick(Enum):
    RESYNC = "resync"  # read everything afresh: a watch that was down does not replay what it missed
    ROLLOUT = "rollout"  # a canary step or a drain delay ends at a time, not on an event


@dataclasses.dataclass
class _Entry:
    context: contextvars.Context
    rolling: bool = False
    ticking: bool = False  # a ROLLOUT tick is scheduled
    next: dict[Tick, float] = dataclasses.field(default_factory=dict)  # when each regular run is due


class Periodic:
    """Runs `work(key, tick)` every `resync_seconds` for each observed resource (first one
    `resync_seconds` after it was first seen), and every `rollout_seconds` while it is rolling out.
    A run that fails (the API server unreachable) runs once more after `retry_seconds` when that
    is sooner than its next regular run."""

    def __init__(self, work: Callable[[Key, Tick], None], resync_seconds: float, rollout_seconds: float,
                 workers: int, clock: Callable[[], float] = time.monotonic, retry_seconds: float | None = None) -> None:
        self._work = work
        self._every = {Tick.RESYNC: resync_seconds, Tick.ROLLOUT: rollout_seconds}
        self._retry = retry_seconds
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="periodic")
        self._wake = threading.Condition()
        self._entries: dict[Key, _Entry] = {}
        self._due: list[tuple[float, int, Key, Tick]] = []
        self._sequence = itertools.count()  # orders equal deadlines (keys of a tick need not be compared)
        self._thread: threading.Thread | None = None
        self._stopped = False

    def observe(self, namespace: str, name: str, rolling: bool) -> None:
        """One watch event of the resource: start its resync on first sight, its rollout tick while `rolling`."""
        key = (namespace, name)
        with self._wake:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(contextvars.copy_context())
                self._schedule(key, Tick.RESYNC)
            entry.context = contextvars.copy_context()
            entry.rolling = rolling
            if rolling and not entry.ticking:
                entry.ticking = True
                self._schedule(key, Tick.ROLLOUT)

    def forget(self, namespace: str, name: str) -> None:
        """The resource is gone: its pending ticks are dropped when due."""
        with self._wake:
            self._entries.pop((namespace, name), None)

    def known(self) -> list[Key]:
        with self._wake:
            return list(self._entries)

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _schedule(self, key: Key, tick: Tick, after: float | None = None) -> float:
        """When the run is due. Caller holds the lock."""
        due = self._clock() + (after or self._every[tick])
        heapq.heappush(self._due, (due, next(self._sequence), key, tick))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="periodic", daemon=True)
            self._thread.start()
        self._wake.notify()
        return due

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._due or self._due[0][0] > self._clock()):
                    self._wake.wait(None if not self._due else max(0.01, self._due[0][0] - self._clock()))
                if self._stopped:
                    return
                when, _, key, tick = heapq.heappop(self._due)
                entry = self._entries.get(key)
                if entry is None:
                    continue  # forgotten
                if tick is Tick.ROLLOUT and not entry.rolling:
                    entry.ticking = False
                    continue
                if when >= entry.next.get(tick, when):  # a retry's extra run leaves the regular schedule alone
                    entry.next[tick] = self._schedule(key, tick)
                context = entry.context
            self._pool.submit(context.run, self._guarded, key, tick)

    def _guarded(self, key: Key, tick: Tick) -> None:
        try:
            self._work(key, tick)
        except Exception:  # retried (below, or by the next tick); never let a pool thread's error go unseen
            log.exception("%s of %s/%s failed", tick.value, *key)
            with self._wake:
                if self._retry is not None and self._retry < self._every[tick] and key in self._entries:
                    self._schedule(key, tick, after=self._retry)
