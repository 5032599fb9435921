"""Converging once for a burst of child events instead of once per event.

A new resource's pod and Deployment change several times within a second as they start
(scheduled, running, ready; the Deployment's replica counts follow). Converging on each showed
every intermediate state in the resource's status: 3.6 status writes per resource where 2
(Progressing, then Ready) say all there is (measured in `make bench`). Waiting `delay` after the
first event of a burst and converging once then writes the settled state.

The converges run on an executor of their own (a small pool), so a burst for a thousand resources
never occupies the threads kopf needs for its handlers; the deadlines are scheduler.py's.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from concurrent.futures import Executor

from autoglm_operator.runtime.scheduler import Scheduler


class Debouncer:
    def __init__(self, work: Callable[[Hashable], None], delay: float, executor: Executor, *,
                 active: Callable[[], bool] = lambda: True, clock: Callable[[], float] = time.monotonic) -> None:
        self._delay = delay
        self.scheduler: Scheduler[Hashable] = Scheduler("debounce", work, executor, active=active, clock=clock)

    def request(self, key: Hashable) -> bool:
        """Run `work(key)` `delay` seconds from now, unless a run for `key` is already waiting;
        False when it is. A failed run is not retried: the resync comes."""
        return self.scheduler.schedule(key, self._delay)

    def forget(self, key: Hashable) -> None:
        """The resource is gone: a waiting run is dropped."""
        self.scheduler.cancel(key)
