"""kopf wiring that decides how fast the operator recovers from an API server outage."""
from __future__ import annotations

from typing import Any

from autoglm_operator.runtime.handlers import RETRY_SECONDS, ROLLOUT_TICK_SECONDS, build_registry


class _Reconciler:
    def request(self, namespace: str, name: str) -> None:
        pass


def _timers(resync_seconds: float) -> dict[str, Any]:
    registry = build_registry(_Reconciler(), resync_seconds=resync_seconds)  # type: ignore[arg-type]
    return {handler.id: handler for handler in registry._spawning.get_all_handlers()}


def test_a_failed_timer_runs_again_soon_not_after_kopfs_default_minute() -> None:
    timers = _timers(300)
    assert timers["rollout"].backoff == ROLLOUT_TICK_SECONDS, "a canary step would wait a minute after an outage"
    assert timers["resync"].backoff == RETRY_SECONDS
    assert _timers(2)["resync"].backoff == 2, "never later than the next regular resync"
