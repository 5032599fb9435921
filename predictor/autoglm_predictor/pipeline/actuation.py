"""Writing the forecast into `status.forecast` of an AutoGLMDeployment: the predictor's only write.

The predictor never touches ScaledObjects or HPAs: the operator renders minReplicaCount /
minReplicas from the floor (`recommendedMinReplicas`, clamped by api.forecast.clamp_floor) while
`updatedAt` is fresh. So there is one writer per field, and a dead predictor is noticed by its
silence.
Writes are rare on purpose (KEDA re-reads on every change; kedacore/keda#5281): only when the
floor or the error changes, or as a heartbeat that keeps `updatedAt` fresh.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from autoglm_operator.api.spec import GROUP, PLURAL, VERSION
from autoglm_operator.api.timestamps import format_time, parse_time

FIELD_MANAGER = "autoglm-predictor"
HEARTBEAT_SECONDS = 60.0


@dataclass(frozen=True)
class ForecastStatus:
    """status.forecast in code: `floor` is the wire's `recommendedMinReplicas`, `updated_at` its `updatedAt`."""

    horizon_seconds: int
    predicted: float | None  # None when there is no usable forecast (then `error` says why)
    floor: int
    updated_at: datetime  # aware UTC
    error: str | None
    forecaster: str | None = None  # which forecaster answered (forecast.models.LADDER), None without a forecast
    calibration: str | None = None  # how its upper quantile was calibrated (forecast.calibration)

    def __post_init__(self) -> None:
        if self.predicted is not None and not (math.isfinite(self.predicted) and self.predicted >= 0):
            raise ValueError(f"predicted must be finite and >= 0, got {self.predicted}")
        if self.floor < 0 or self.horizon_seconds < 0:
            raise ValueError("floor and horizon_seconds must be >= 0")

    @classmethod
    def from_status(cls, forecast: dict[str, Any] | None) -> ForecastStatus | None:
        """What is in the API server now (written by an earlier predictor), or None if unusable."""
        try:
            return cls(horizon_seconds=int(forecast["horizonSeconds"]),
                       predicted=None if forecast.get("predicted") is None else float(forecast["predicted"]),
                       floor=int(forecast["recommendedMinReplicas"]),
                       updated_at=parse_time(forecast["updatedAt"]), error=forecast.get("error"),
                       forecaster=forecast.get("forecaster"), calibration=forecast.get("calibration"))
        except (KeyError, TypeError, ValueError):
            return None


def status_patch(forecast: ForecastStatus) -> dict[str, Any]:
    """A JSON merge patch touching only status.forecast; null deletes a key (the schema is not nullable)."""
    return {"status": {"forecast": {
        "horizonSeconds": forecast.horizon_seconds,
        "predicted": None if forecast.predicted is None else round(forecast.predicted, 3),
        "recommendedMinReplicas": forecast.floor,
        "updatedAt": format_time(forecast.updated_at),
        "error": forecast.error,
        "forecaster": forecast.forecaster,
        "calibration": forecast.calibration,
    }}}


def should_write(last: ForecastStatus | None, new: ForecastStatus, heartbeat_seconds: float = HEARTBEAT_SECONDS) -> bool:
    """Only a changed floor, a changed error state or a due heartbeat is worth a write."""
    if last is None:
        return True
    if new.floor != last.floor or (new.error is None) != (last.error is None):
        return True
    return (new.updated_at - last.updated_at).total_seconds() >= heartbeat_seconds


def write(api: Any, namespace: str, name: str, forecast: ForecastStatus) -> None:
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, status_patch(forecast),
        field_manager=FIELD_MANAGER, _content_type="application/merge-patch+json")
