"""When a predictor's `status.forecast` should cause a converge: only when the rendered floor may change.

The predictor rewrites `status.forecast` on every floor change and as a heartbeat (updatedAt), and
the operator itself patches other status fields; converging on each of those events would be
wasted work. So a converge is requested when the fresh floor (api.forecast.forecast_floor) differs
from the one last seen, and once more just after the forecast goes stale (updatedAt + the
staleness window), so a silent predictor's floor decays to the reactive minimum without waiting
for the resync timer. One thread holds all the deadlines, in epoch seconds of its clock (what
the thread's waits are measured in).
"""
from __future__ import annotations

import contextvars
import heapq
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from autoglm_operator.api.forecast import forecast_expiry, forecast_floor
from autoglm_operator.api.timestamps import from_epoch

Key = tuple[str, str]
log = logging.getLogger("autoglm.forecast")
GRACE_SECONDS = 1.0  # converge this long after the expiry, so the reconciler's clock sees it stale


class ForecastWatch:
    def __init__(self, request: Callable[[str, str], None], clock: Callable[[], float] = time.time) -> None:
        self._request = request
        self._clock = clock
        self._seen: dict[Key, int | None] = {}
        self._deadline: dict[Key, float] = {}  # the current deadline per resource (older heap entries are ignored)
        self._heap: list[tuple[float, Key]] = []
        self._wake = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def observe(self, namespace: str, name: str, body: Mapping[str, Any]) -> bool:
        """Record one watch event of the resource; True when a converge was requested for it."""
        key = (namespace, name)
        spec, status = body.get("spec") or {}, body.get("status") or {}
        predictive = ((spec.get("autoscaling") or {}).get("predictive") or {}).get("enabled") is True
        forecast = status.get("forecast") if predictive else None
        floor = forecast_floor(forecast, from_epoch(self._clock())) if predictive else None
        expiry = forecast_expiry(forecast) if floor is not None else None
        deadline = None if expiry is None else expiry.timestamp() + GRACE_SECONDS
        with self._wake:
            changed = key in self._seen and self._seen[key] != floor
            self._seen[key] = floor
            if deadline is None:
                self._deadline.pop(key, None)
            elif self._deadline.get(key) != deadline:
                self._deadline[key] = deadline
                heapq.heappush(self._heap, (deadline, key))
                self._start()
                self._wake.notify()
        if changed:
            self._request(namespace, name)
        return changed

    def forget(self, namespace: str, name: str) -> None:
        with self._wake:
            self._seen.pop((namespace, name), None)
            self._deadline.pop((namespace, name), None)

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()

    def _start(self) -> None:
        if self._thread is None:
            # In the context (contextvars) of the kopf handler that starts it: kopf.event, posted by
            # the converges it requests, reads kopf's settings from there.
            context = contextvars.copy_context()
            self._thread = threading.Thread(target=context.run, args=(self._run,), name="forecast-expiry", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._heap or self._heap[0][0] > self._clock()):
                    self._wake.wait(None if not self._heap else max(0.05, self._heap[0][0] - self._clock()))
                if self._stopped:
                    return
                when, key = heapq.heappop(self._heap)
                if self._deadline.get(key) != when:
                    continue  # superseded by a newer heartbeat, or forgotten
                del self._deadline[key]
                self._seen[key] = None  # stale from now on
            try:
                self._request(*key)
            except Exception:  # the resync timer retries; never let the expiry thread die
                log.exception("converge after the forecast of %s/%s went stale failed", *key)
