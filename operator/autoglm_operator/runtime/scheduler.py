"""One deadline per key, run on a pool: the operator's own timers (resync and rollout ticks, forecast
expiries, debounced child events) all go through this.

kopf's timers cannot serve (they put kopf's finalizer on every resource: periodic.py), so the
operator keeps its deadlines itself. Per key there is at most one pending run (asking again for
a key that waits changes nothing, or moves its deadline with `reschedule`), a repeating key
(`every`) is re-armed when it runs, `cancel` drops a key (its resource is gone), and a run only
happens while this replica is the active one of its peering (`active`, runtime/peering.py).

Each run executes on the executor in a copy of the context (contextvars) of the call that first
scheduled the key: kopf.event finds kopf's settings and event queue there, and two runs of one
key never enter the same context object at once. Times are seconds of `clock` (monotonic by
default). One thread waits for the deadlines (`start`); `run_due` is that thread's step, so a
test drives the scheduler with a fake clock and an inline executor, no thread and no sleeps.
"""
from __future__ import annotations

import contextvars
import dataclasses
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from typing import Generic, TypeVar

from autoglm_operator.runtime.logs import retry_later

K = TypeVar("K", bound=Hashable)
log = logging.getLogger("autoglm.scheduler")


@dataclasses.dataclass
class _Entry:
    due: float  # the next run
    regular: float  # the next regular run of a repeating key (a retry may make `due` sooner)
    every: float | None  # None: one run, then the key is gone
    context: contextvars.Context
    armed: int = 0  # the heap item that is current for this key (older ones are skipped)


def _named(key: Hashable) -> str:
    """("ml", "glm", Tick.RESYNC) -> ml/glm/resync, for the logs."""
    parts = key if isinstance(key, tuple) else (key,)
    return "/".join(str(getattr(part, "value", part)) for part in parts)


class Scheduler(Generic[K]):
    """Runs `work(key)` when each key's deadline comes. A repeating key's failed run (the API
    server unreachable) runs once more `retry_seconds` later when that is sooner than its next
    regular run, which the retry leaves where it was."""

    def __init__(self, name: str, work: Callable[[K], None], executor: Executor, *,
                 active: Callable[[], bool] = lambda: True, clock: Callable[[], float] = time.monotonic,
                 retry_seconds: float | None = None) -> None:
        self._name = name
        self._work = work
        self._executor = executor
        self._active = active
        self._clock = clock
        self._retry = retry_seconds
        self._wake = threading.Condition()
        self._entries: dict[K, _Entry] = {}
        self._heap: list[tuple[float, int, K]] = []  # (due, armed, key); the counter orders equal times
        self._counter = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._stopped = False

    def schedule(self, key: K, after: float, every: float | None = None) -> bool:
        """Run `key` `after` seconds from now, then every `every` seconds if given; False (and
        nothing changes) when `key` is scheduled already: requests while it waits coalesce."""
        with self._wake:
            if key in self._entries:
                return False
            due = self._clock() + after
            self._entries[key] = entry = _Entry(due, due, every, contextvars.copy_context())
            self._arm(key, entry, due)
            return True

    def reschedule(self, key: K, after: float) -> None:
        """Run `key` once, `after` seconds from now, instead of whenever it was due."""
        with self._wake:
            due = self._clock() + after
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(due, due, None, contextvars.copy_context())
            entry.every, entry.regular = None, due
            self._arm(key, entry, due)

    def cancel(self, key: K) -> None:
        """`key` runs no more (a run already started finishes)."""
        with self._wake:
            self._entries.pop(key, None)

    def pending(self, key: K) -> bool:
        with self._wake:
            return key in self._entries

    def keys(self) -> list[K]:
        with self._wake:
            return list(self._entries)

    def start(self) -> None:
        """The thread that runs due keys; idempotent."""
        with self._wake:
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """No run starts from now on (kopf closes its loop, where kopf.event would fail)."""
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def run_due(self) -> int:
        """Hand every key due now to the executor; how many. Repeating keys are re-armed first."""
        now = self._clock()
        due: list[tuple[K, contextvars.Context]] = []
        with self._wake:
            while self._heap and self._heap[0][0] <= now and not self._stopped:
                when, armed, key = heapq.heappop(self._heap)
                entry = self._entries.get(key)
                if entry is None or entry.armed != armed:
                    continue  # cancelled, or moved by reschedule or a retry
                if entry.every is None:
                    del self._entries[key]
                else:
                    if when >= entry.regular:  # a retry's extra run leaves the regular schedule alone
                        entry.regular = now + entry.every
                    self._arm(key, entry, entry.regular)
                due.append((key, entry.context))
        for key, context in due:
            try:
                self._executor.submit(context.copy().run, self._guarded, key)
            except RuntimeError:  # the executor is shut down (by stop() meanwhile, or at interpreter exit)
                with self._wake:
                    self._stopped = True
                return 0
        return len(due)

    def _arm(self, key: K, entry: _Entry, due: float) -> None:
        """Caller holds the lock."""
        entry.due, entry.armed = due, next(self._counter)
        heapq.heappush(self._heap, (due, entry.armed, key))
        self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._heap or self._heap[0][0] > self._clock()):
                    self._wake.wait(None if not self._heap else max(0.01, self._heap[0][0] - self._clock()))
                if self._stopped:
                    return
            self.run_due()

    def _guarded(self, key: K) -> None:
        if not self._active():
            return  # a standby replica: the active one runs it (peering.py)
        try:
            self._work(key)
        except Exception as exc:  # never let a pool thread's error go unseen; retried below or by the next run
            if retry_later(exc):
                log.debug("%s %s: the API server asks to retry later (%s)", self._name, _named(key), exc)
            else:
                log.exception("%s %s failed", self._name, _named(key))
            if self._retry is not None:
                with self._wake:
                    entry = self._entries.get(key)
                    retry = self._clock() + self._retry
                    if entry is not None and entry.every is not None and retry < entry.due:
                        self._arm(key, entry, retry)
