import numpy as np
import pytest

from autoglm_predictor.forecast.simulator import ClusterConfig, SimulationError, score, simulate

# One-minute steps, 10 requests per replica per step, 5-minute cold start, HPA every step.
CONFIG = ClusterConfig(step_seconds=60, capacity_per_replica=10, max_replicas=10, min_replicas=1,
                       cold_start_seconds=300, target_utilisation=1.0, sync_period_seconds=60,
                       scale_down_window_seconds=300)
STEP = np.array([10.0] * 10 + [40.0] * 20)


def test_reactive_step_violates_for_detection_plus_cold_start():
    trajectory = simulate(CONFIG, STEP)
    # Demand jumps at step 10; the HPA sees it after step 10, pods are Ready from step 16.
    assert trajectory.ready[15] == 1 and trajectory.ready[16] == 4
    assert trajectory.starting[11:16].tolist() == [3] * 5
    outcome = score(CONFIG, STEP, trajectory)
    assert outcome.violation_minutes == 6  # steps 10..15
    assert outcome.cold_start_gpu_minutes == 15
    assert outcome.gpu_hours == pytest.approx((30 * 1 + 3 * 5 + 3 * 14) / 60)
    assert outcome.scale_events == 1
    assert outcome.elasticity.tau_u == pytest.approx(100 * 6 / 30)


def test_oracle_floor_started_one_cold_start_ahead_has_no_violations():
    floors = np.ones(len(STEP))
    floors[4:] = 4  # after step 4 the pods are Ready at step 10
    outcome = score(CONFIG, STEP, simulate(CONFIG, STEP, floors))
    assert outcome.violation_minutes == 0
    assert outcome.elasticity.tau_u == 0


def test_scale_down_waits_for_the_stabilisation_window_and_drops_starting_pods_first():
    demand = np.array([40.0] * 3 + [10.0] * 10)
    trajectory = simulate(CONFIG, demand, initial_replicas=4)
    # Recommendations of 1 from step 3; the window still holds 4s until step 7.
    assert trajectory.ready.tolist()[:8] == [4, 4, 4, 4, 4, 4, 4, 4]
    assert trajectory.ready[8] == 1
    floors = np.array([1.0] * 3 + [6.0] + [1.0] * 9)
    trajectory = simulate(CONFIG, demand, floors, initial_replicas=4)
    assert trajectory.starting[4] == 2  # the floor started two pods
    # The floor falls back at step 4: the HPA's own window (still 4) wins, so the two starting
    # pods are dropped and the Ready ones kept.
    assert trajectory.ready[5] == 4 and trajectory.starting[5] == 0


def test_tolerance_suppresses_small_changes():
    demand = np.array([40.0, 43.0, 43.0])
    assert simulate(CONFIG, demand, initial_replicas=4).scale_events == 0


def test_max_replicas_caps_and_gaps_are_not_scored():
    demand = np.array([10.0, np.nan, 500.0, 500.0, 500.0, 500.0, 500.0, 500.0, 500.0, 500.0])
    trajectory = simulate(CONFIG, demand)
    assert trajectory.ready.max() <= CONFIG.max_replicas and trajectory.ready[-1] == 10
    outcome = score(CONFIG, demand, trajectory)
    assert outcome.violation_pct == pytest.approx(100.0 * 8 / 9)


@pytest.mark.parametrize("demand", [np.array([]), np.array([np.nan]), np.array([1.0, -1.0]), np.array([np.inf])])
def test_bad_demand_raises(demand):
    with pytest.raises(SimulationError):
        simulate(CONFIG, demand)


def test_bad_floors_raise():
    with pytest.raises(SimulationError, match="floors"):
        simulate(CONFIG, STEP, floors=np.full(len(STEP), np.nan))
