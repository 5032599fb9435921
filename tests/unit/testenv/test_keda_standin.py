"""The demo's KEDA/HPA stand-in: up at once, down only after the stabilisation window, within the floor and max."""
from __future__ import annotations

import pytest

from autoglm_testenv.keda_standin import Scaler, ScalerState, decide

SCALER = Scaler(per_replica=8.0, max_replicas=5, window_seconds=20.0)


def test_scales_up_at_once_to_the_load_within_the_floor_and_the_maximum() -> None:
    state = ScalerState(1)
    assert decide(SCALER, state, 0.0, load=17.0, min_replicas=1).replicas == 3  # ceil(17 / 8)
    assert decide(SCALER, state, 0.0, load=16.0, min_replicas=1).replicas == 2  # exactly full: no extra pod
    assert decide(SCALER, state, 0.0, load=0.0, min_replicas=4).replicas == 4  # the predictive floor
    assert decide(SCALER, state, 0.0, load=400.0, min_replicas=1).replicas == 5  # maxReplicaCount


def test_scales_down_to_the_highest_recommendation_of_the_window() -> None:
    state = decide(SCALER, ScalerState(1), 0.0, load=40.0, min_replicas=1)  # 5 pods
    state = decide(SCALER, state, 5.0, load=20.0, min_replicas=1)  # wants 3
    state = decide(SCALER, state, 10.0, load=1.0, min_replicas=1)  # wants 1
    assert state.replicas == 5  # the 5 at t=0 is still inside the window
    state = decide(SCALER, state, 20.0, load=1.0, min_replicas=1)
    assert state.replicas == 3  # t=0 left the window; t=5 wanted 3
    state = decide(SCALER, state, 25.0, load=1.0, min_replicas=1)
    assert state.replicas == 1


def test_a_lowered_floor_also_waits_for_the_window() -> None:
    state = decide(SCALER, ScalerState(1), 0.0, load=0.0, min_replicas=4)
    assert decide(SCALER, state, 10.0, load=0.0, min_replicas=1).replicas == 4
    assert decide(SCALER, state, 20.0, load=0.0, min_replicas=1).replicas == 1


@pytest.mark.parametrize("settings", [dict(per_replica=0.0, max_replicas=2, window_seconds=1.0),
                                      dict(per_replica=8.0, max_replicas=0, window_seconds=1.0),
                                      dict(per_replica=8.0, max_replicas=2, window_seconds=-1.0)])
def test_impossible_settings_are_refused(settings: dict) -> None:
    with pytest.raises(ValueError):
        Scaler(**settings)
