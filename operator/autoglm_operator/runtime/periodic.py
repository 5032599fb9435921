"""The resync and rollout ticks of each resource, kept by the operator instead of kopf timers.

kopf puts its finalizer on every object a timer or daemon runs for, so that it can stop them before
the object goes (kopf's `on.timer`/`on.daemon` register with `requires_finalizer=True`, whatever
`optional` says; nolar/kopf#1074). That finalizer made every deletion wait for the operator: with
the chart's `watchNamespaces`, `kubectl delete ns` removed the operator's Role first, the release
got 403 and the namespace stayed Terminating for good; with the operator uninstalled, every
resource did (issue 15). Nothing else needs the resource to wait: children go with it by owner
reference, NodeGroups on its DELETED event, with their namespace, or at start (handlers.py). So the
ticks live here, fed by kopf's watch events (which need no finalizer), and a resource can always go.
The deadlines are kept by scheduler.py (one key per resource and tick).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor
from enum import Enum

from autoglm_operator.runtime.scheduler import Scheduler

Key = tuple[str, str]  # (namespace, name)


class Tick(Enum):
    RESYNC = "resync"  # read everything afresh: a watch that was down does not replay what it missed
    ROLLOUT = "rollout"  # a canary step or a drain delay ends at a time, not on an event


class Periodic:
    """Runs `work(key, tick)` every `resync_seconds` for each observed resource (first one
    `resync_seconds` after it was first seen), and every `rollout_seconds` while it is rolling out.
    `work` returns False when it found the resource gone (its DELETED event was missed: the
    operator's rights in the namespace went first): its ticks stop then. A run that fails (the API
    server unreachable) runs once more after `retry_seconds` when that is sooner than its next
    regular run. Runs happen only while `active()` (peering.py)."""

    def __init__(self, work: Callable[[Key, Tick], bool], resync_seconds: float, rollout_seconds: float,
                 executor: Executor, *, active: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.monotonic, retry_seconds: float | None = None) -> None:
        self._work = work
        self._every = {Tick.RESYNC: resync_seconds, Tick.ROLLOUT: rollout_seconds}
        self.scheduler: Scheduler[tuple[str, str, Tick]] = Scheduler(
            "tick", self._run, executor, active=active, clock=clock, retry_seconds=retry_seconds)

    def observe(self, namespace: str, name: str, rolling: bool) -> None:
        """One watch event of the resource: start its resync on first sight, its rollout tick while `rolling`."""
        self._start(namespace, name, Tick.RESYNC)
        if rolling:
            self._start(namespace, name, Tick.ROLLOUT)
        else:
            self.scheduler.cancel((namespace, name, Tick.ROLLOUT))

    def forget(self, namespace: str, name: str) -> None:
        """The resource is gone: no more ticks."""
        for tick in Tick:
            self.scheduler.cancel((namespace, name, tick))

    def _start(self, namespace: str, name: str, tick: Tick) -> None:
        """Unless it ticks already (a second event changes nothing)."""
        self.scheduler.schedule((namespace, name, tick), self._every[tick], every=self._every[tick])

    def _run(self, key: tuple[str, str, Tick]) -> None:
        namespace, name, tick = key
        if not self._work((namespace, name), tick):
            self.forget(namespace, name)
