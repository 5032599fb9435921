"""`status.forecast`: written by the predictor, read by the operator, and when it counts as fresh.

One definition for both sides (issue 14): the predictor writes `updatedAt` with `format_time`
(autoglm_predictor.pipeline.actuation); the operator renders the floor only while
`now - updatedAt <= STALENESS_WINDOW_SECONDS` (render.autoscaling) and converges once more just
after it goes stale (runtime.forecast_watch); a restarted predictor trusts its last write only
within the same window.
"""
from __future__ import annotations

from datetime import datetime, timezone

# Several missed predictor heartbeats (60 s each): after this the floor decays to the reactive minimum.
STALENESS_WINDOW_SECONDS = 300.0


def format_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def clamp_floor(floor: int, *, min_replicas: int, max_replicas: int, max_floor: int | None) -> int:
    """The floor the autoscaler may get: at least `minReplicas`, at most `maxFloor` and `maxReplicas`.

    The one clamp for both sides: the operator renders it (render.autoscaling) and the predictor
    decides within the same bound (pipeline.targets), so neither can exceed what the other allows.
    """
    cap = max_replicas if max_floor is None else min(max_floor, max_replicas)
    return max(min_replicas, min(floor, cap))
