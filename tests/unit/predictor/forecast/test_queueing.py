"""The fluid FIFO queue against answers computed by hand (forecast/queueing.py)."""
import numpy as np
import pytest

from autoglm_predictor.forecast.queueing import QueueError, attainment, departures
from autoglm_predictor.forecast.simulator import ClusterConfig, score, simulate

# 10 s steps; 2 req/s arrive throughout; 1 req/s is Ready for 30 s, then 3 req/s (two pods that
# took 30 s to start). Backlog: 30 requests at 30 s, drained at 1 req/s by 60 s. The request
# arriving at s waits s (s <= 15) or 20 - s/3 (15 <= s <= 60); the longest wait is 15 s at s = 15.
ARRIVALS = np.full(10, 20.0)
CAPACITY = np.array([10.0] * 3 + [30.0] * 7)


def test_departures_follow_the_capacity_while_a_backlog_remains_then_the_arrivals():
    times, served = departures(ARRIVALS, CAPACITY, 10.0)
    assert np.interp([10, 30, 45, 60, 100], times, served).tolist() == [10, 30, 75, 120, 200]


@pytest.mark.parametrize(("slack", "late"), [
    (10.0, 40.0),  # wait > 10 s for arrivals in (10, 30): 20 s x 2 req/s
    (0.0, 120.0),  # every arrival in (0, 60) waits
    (15.0, 0.0),  # the longest wait is exactly the slack: met
    (12.0, 2 * (24 - 12)),  # wait > 12 s for s in (12, 24)
])
def test_late_requests_of_a_demand_step_with_a_known_cold_start(slack, late):
    result = attainment(ARRIVALS, CAPACITY, 10.0, slo_seconds=0.5 + slack, base_ttft_seconds=0.5)
    assert result.requests == 200
    assert result.late == pytest.approx(late)
    assert result.attainment_pct == pytest.approx(100 * (200 - late) / 200)
    assert result.final_backlog == pytest.approx(0.0)


def test_a_backlog_left_at_the_end_is_late_and_enough_capacity_is_never_late():
    stuck = attainment(np.array([10.0, 10.0]), np.array([0.0, 0.0]), 60.0, 3.0, 0.5)
    assert stuck.late == pytest.approx(20.0) and stuck.final_backlog == pytest.approx(20.0)
    exact = attainment(np.array([5.0, 7.0, np.nan]), np.array([5.0, 7.0, 0.0]), 60.0, 3.0, 3.0)
    assert exact.late == pytest.approx(0.0) and exact.requests == 12


@pytest.mark.parametrize(("arrivals", "capacity", "slo", "base"), [
    ([1.0], [1.0, 2.0], 3.0, 0.5), ([-1.0], [1.0], 3.0, 0.5), ([1.0], [1.0], 1.0, 2.0), ([np.inf], [1.0], 3.0, 0.5),
])
def test_bad_input_is_a_named_error(arrivals, capacity, slo, base):
    with pytest.raises(QueueError):
        attainment(np.array(arrivals), np.array(capacity), 60.0, slo, base)


def test_simulated_cold_start_gives_the_exact_count_of_late_requests():
    # 60 req/min per replica, 1 min steps, 2 min cold start, HPA at target 1.0 every step.
    # Demand jumps from 60 to 150 req/min at minute 3; 3 pods are asked for after step 3 and
    # are Ready from minute 6 (1 + 2 steps). Minutes 3..6: 1 req/s served, 2.5 arrive, so the
    # arrival at 180 + e waits 1.5 e (met for e <= 5/3 s); the backlog is 270 at minute 6 and
    # drains at 0.5 req/s under 3 req/s of service, so the arrival at s >= 360 waits
    # (270 - 0.5 (s - 360)) / 3 s: above the 2.5 s slack until s = 885.
    config = ClusterConfig(step_seconds=60, capacity_per_replica=60, max_replicas=10, cold_start_seconds=120,
                           target_utilisation=1.0, sync_period_seconds=60, ttft_slo_seconds=3.0,
                           base_ttft_seconds=0.5)
    demand = np.array([60.0] * 3 + [150.0] * 17)
    trajectory = simulate(config, demand)
    assert trajectory.ready[5] == 1 and trajectory.ready[6] == 3
    outcome = score(config, demand, trajectory)
    assert outcome.late_requests == pytest.approx(2.5 * (885 - 180 - 5 / 3))
    assert outcome.avg_replicas == pytest.approx(np.mean(trajectory.ready + trajectory.starting))
    assert outcome.goodput_per_gpu_hour == pytest.approx((demand.sum() - outcome.late_requests) / outcome.gpu_hours)
