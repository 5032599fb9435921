"""`status.forecast`: written by the predictor, read by the operator, and when it counts as fresh.

One definition for both sides (issue 14): the predictor writes `updatedAt` (api.timestamps) and
the floor (`recommendedMinReplicas`) from autoglm_predictor.pipeline.actuation; the operator
renders the floor, clamped by `clamp_floor`, only while `forecast_floor` finds it fresh
(`|now - updatedAt| <= STALENESS_WINDOW`, render.autoscaling) and converges once more just after
it goes stale (`forecast_expiry`, runtime.forecast_watch); a restarted predictor trusts its last
write only within the same window.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from autoglm_operator.api.timestamps import parse_time

# Several missed predictor heartbeats (60 s each): after this the floor decays to the reactive minimum.
STALENESS_WINDOW_SECONDS = 300.0
STALENESS_WINDOW = timedelta(seconds=STALENESS_WINDOW_SECONDS)


def forecast_updated_at(forecast: Mapping[str, Any] | None) -> datetime | None:
    """`updatedAt` of a status.forecast (None: absent or unreadable; the predictor's write is untrusted input)."""
    if not isinstance(forecast, Mapping):
        return None
    try:
        return parse_time(str(forecast["updatedAt"]))
    except (KeyError, TypeError, ValueError):
        return None


def forecast_expiry(forecast: Mapping[str, Any] | None) -> datetime | None:
    """When the forecast no longer counts (None: unreadable or absent)."""
    updated = forecast_updated_at(forecast)
    return None if updated is None else updated + STALENESS_WINDOW


def forecast_floor(forecast: Mapping[str, Any] | None, now: datetime) -> int | None:
    """`recommendedMinReplicas` while fresh: updated within the staleness window (and not far in the future)."""
    updated = forecast_updated_at(forecast)
    if updated is None or abs(now - updated) > STALENESS_WINDOW:
        return None
    floor = forecast.get("recommendedMinReplicas")  # type: ignore[union-attr]
    if isinstance(floor, bool) or not isinstance(floor, int) or floor < 0:
        return None
    return floor


def clamp_floor(floor: int, *, min_replicas: int, max_replicas: int, max_floor: int | None) -> int:
    """The floor the autoscaler may get: at least `minReplicas`, at most `maxFloor` and `maxReplicas`.

    The one clamp for both sides: the operator renders it (render.autoscaling) and the predictor
    decides within the same bound (pipeline.targets), so neither can exceed what the other allows.
    """
    cap = max_replicas if max_floor is None else min(max_floor, max_replicas)
    return max(min_replicas, min(floor, cap))
