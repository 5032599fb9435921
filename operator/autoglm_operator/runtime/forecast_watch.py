"""When a predictor's `status.forecast` should cause a converge: only when the rendered floor may change.

The predictor rewrites `status.forecast` on every floor change and as a heartbeat (updatedAt), and
the operator itself patches other status fields; converging on each of those events would be
wasted work. So a converge is requested when the fresh floor (api.forecast.forecast_floor) differs
from the one last seen, and once more just after the forecast goes stale (updatedAt + the
staleness window), so a silent predictor's floor decays to the reactive minimum without waiting
for the resync timer. The expiry is a wall-clock time (updatedAt is one); it is scheduled
(scheduler.py) as a delay from the wall clock's now.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

from autoglm_operator.api.forecast import forecast_expiry, forecast_floor
from autoglm_operator.api.timestamps import from_epoch
from autoglm_operator.runtime.scheduler import Scheduler

Key = tuple[str, str]
GRACE_SECONDS = 1.0  # converge this long after the expiry, so the reconciler's clock sees it stale


class ForecastWatch:
    """`request(namespace, name)` converges; `wall_clock` is epoch seconds (the forecast's time
    base), `clock` the scheduler's."""

    def __init__(self, request: Callable[[str, str], object], executor: Executor, *,
                 active: Callable[[], bool] = lambda: True, wall_clock: Callable[[], float] = time.time,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._request = request
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._seen: dict[Key, int | None] = {}
        self._deadline: dict[Key, float] = {}  # the expiry (epoch seconds + grace) each resource is scheduled for
        self.scheduler: Scheduler[Key] = Scheduler("forecast-expiry", self._expired, executor, active=active,
                                                   clock=clock)

    def observe(self, namespace: str, name: str, body: Mapping[str, Any]) -> bool:
        """Record one watch event of the resource; True when a converge was requested for it."""
        key = (namespace, name)
        spec, status = body.get("spec") or {}, body.get("status") or {}
        predictive = ((spec.get("autoscaling") or {}).get("predictive") or {}).get("enabled") is True
        forecast = status.get("forecast") if predictive else None
        now = self._wall_clock()
        floor = forecast_floor(forecast, from_epoch(now)) if predictive else None
        expiry = forecast_expiry(forecast) if floor is not None else None
        deadline = None if expiry is None else expiry.timestamp() + GRACE_SECONDS
        with self._lock:
            changed = key in self._seen and self._seen[key] != floor
            self._seen[key] = floor
            if deadline is None:
                self._deadline.pop(key, None)
                self.scheduler.cancel(key)
            elif self._deadline.get(key) != deadline:
                self._deadline[key] = deadline
                self.scheduler.reschedule(key, deadline - now)
        if changed:
            self._request(namespace, name)
        return changed

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._seen.pop((namespace, name), None)
            self._deadline.pop((namespace, name), None)
            self.scheduler.cancel((namespace, name))

    def _expired(self, key: Key) -> None:
        with self._lock:
            if self.scheduler.pending(key) or key not in self._deadline:
                return  # a newer heartbeat moved the expiry after this run was due, or the resource went
            del self._deadline[key]
            self._seen[key] = None  # stale from now on
        self._request(*key)
