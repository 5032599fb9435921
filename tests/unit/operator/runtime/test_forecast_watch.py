"""ForecastWatch: converge when the floor may change, and once when the forecast goes stale
(forecast_watch.py), on fake clocks."""
from __future__ import annotations

import contextvars
from datetime import datetime, timezone

from autoglm_operator.api.forecast import STALENESS_WINDOW_SECONDS
from autoglm_operator.api.timestamps import format_time, from_epoch
from autoglm_operator.runtime.forecast_watch import GRACE_SECONDS, ForecastWatch

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc).timestamp()


def body(floor: int | None, updated: float, enabled: bool = True) -> dict:
    status = {} if floor is None else {"forecast": {"recommendedMinReplicas": floor, "updatedAt": format_time(from_epoch(updated))}}
    return {"spec": {"autoscaling": {"predictive": {"enabled": enabled}}}, "status": status}


class Clocks:
    """The wall clock (epoch seconds) and the scheduler's monotonic clock, moved together."""

    def __init__(self, manual) -> None:
        self.manual = manual

    def wall(self) -> float:
        return NOW + self.manual.now

    def at(self, watch: ForecastWatch, wall: float) -> None:
        self.manual.now = wall - NOW
        watch.scheduler.run_due()


def watching(manual, requested: list) -> tuple[ForecastWatch, Clocks]:
    clocks = Clocks(manual)
    watch = ForecastWatch(lambda ns, n: requested.append((ns, n)), manual, wall_clock=clocks.wall, clock=manual)
    return watch, clocks


def test_watch_requests_only_floor_changes(manual) -> None:
    requested: list[tuple[str, str]] = []
    watch, _ = watching(manual, requested)
    assert not watch.observe("ml", "glm", body(3, NOW)), "first sight: the resume handler converges"
    assert not watch.observe("ml", "glm", body(3, NOW + 60)), "heartbeat: same floor"
    assert watch.observe("ml", "glm", body(5, NOW + 61))
    assert watch.observe("ml", "glm", body(5, NOW, enabled=False)), "kill switch: floor gone"
    assert not watch.observe("ml", "glm", body(None, NOW, enabled=False))
    assert requested == [("ml", "glm")] * 2


def test_watch_converges_once_when_the_forecast_goes_stale(manual) -> None:
    requested: list[tuple[str, str]] = []
    watch, clocks = watching(manual, requested)
    watch.observe("ml", "glm", body(4, NOW))
    watch.observe("ml", "other", body(4, NOW))
    watch.forget("ml", "other")
    expiry = NOW + STALENESS_WINDOW_SECONDS + GRACE_SECONDS
    clocks.at(watch, expiry - 0.01)
    assert requested == []
    clocks.at(watch, expiry)
    assert requested == [("ml", "glm")], "the forgotten resource is not converged"
    clocks.at(watch, expiry + 1000)
    assert requested == [("ml", "glm")], "once"
    assert not watch.observe("ml", "glm", body(4, NOW)), "known stale: nothing new"


def test_a_heartbeat_moves_the_expiry(manual) -> None:
    requested: list[tuple[str, str]] = []
    watch, clocks = watching(manual, requested)
    watch.observe("ml", "glm", body(4, NOW))
    clocks.at(watch, NOW + 60)
    watch.observe("ml", "glm", body(4, NOW + 60))
    clocks.at(watch, NOW + STALENESS_WINDOW_SECONDS + GRACE_SECONDS)
    assert requested == [], "the first expiry no longer counts"
    clocks.at(watch, NOW + 60 + STALENESS_WINDOW_SECONDS + GRACE_SECONDS)
    assert requested == [("ml", "glm")]


def test_the_stale_forecast_converge_runs_in_the_context_of_the_handler_that_saw_it(manual) -> None:
    """kopf.event reads kopf's settings from context variables: a converge from an expiry posts Events too."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("kopf_settings")
    seen: list[str] = []
    clocks = Clocks(manual)
    watch = ForecastWatch(lambda ns, n: seen.append(var.get("missing")), manual, wall_clock=clocks.wall, clock=manual)
    var.set("kopf's settings")
    watch.observe("ml", "glm", body(4, NOW))
    clocks.at(watch, NOW + STALENESS_WINDOW_SECONDS + GRACE_SECONDS)
    assert seen == ["kopf's settings"]
