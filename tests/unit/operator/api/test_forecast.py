"""status.forecast: the one floor clamp both the operator and the predictor use."""
from __future__ import annotations

import pytest

from autoglm_operator.api.forecast import clamp_floor


@pytest.mark.parametrize(
    ("floor", "min_replicas", "max_replicas", "max_floor", "clamped"),
    [
        (5, 2, 10, None, 5),  # inside the bounds: unchanged
        (1, 2, 10, None, 2),  # never below minReplicas
        (50, 2, 10, None, 10),  # no maxFloor: maxReplicas caps it
        (50, 2, 10, 6, 6),  # maxFloor caps it
        (50, 2, 10, 20, 10),  # a maxFloor above maxReplicas does not lift the cap
        (50, 4, 10, 3, 4),  # minReplicas wins over a lower maxFloor
        (0, 0, 10, None, 0),  # scale to zero stays possible
    ],
)
def test_clamp_floor_keeps_the_floor_between_min_replicas_and_the_lower_of_max_floor_and_max_replicas(
    floor: int, min_replicas: int, max_replicas: int, max_floor: int | None, clamped: int
) -> None:
    assert clamp_floor(floor, min_replicas=min_replicas, max_replicas=max_replicas, max_floor=max_floor) == clamped
