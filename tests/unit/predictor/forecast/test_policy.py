import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoglm_predictor.forecast.policy import PolicyConfig, PolicyError, PolicyInput, PolicyState, decide

CONFIG = PolicyConfig(capacity_per_replica=10, max_replicas=20, min_replicas=1, target_utilisation=1.0,
                      max_step_up=5, max_step_down=2, hysteresis=0.2, stale_after_seconds=300)


def step(floor: int, forecast, now: float = 1000, made: float | None = 1000, observed: float | None = None):
    return decide(CONFIG, PolicyState(floor), PolicyInput(now, forecast, made, observed))


def test_floor_rises_ahead_of_demand_bounded_by_the_step():
    decision, state = step(1, [30, 45])
    assert decision.min_replicas == 5 and state.floor == 5  # wants 5
    decision, _ = step(1, [200])
    assert decision.min_replicas == 6  # wants 20, may only rise by 5
    assert decision.target_per_replica == 10


def test_observed_load_beats_a_low_forecast():
    decision, _ = step(1, [10], observed=70)
    assert decision.min_replicas == 6  # 7 wanted, +5 step from 1


def test_hysteresis_holds_small_drops_and_steps_large_ones():
    assert step(10, [85])[0].min_replicas == 10  # wants 9, within 20% band
    assert step(10, [75])[0].min_replicas == 10  # wants 8: exactly on the band edge, holds
    assert step(10, [65])[0].min_replicas == 8  # wants 7: below the band, falls by the max step


def test_large_drop_is_rate_limited():
    decision, _ = step(10, [10])
    assert decision.min_replicas == 8  # wants 1, may only fall by 2


@pytest.mark.parametrize("forecast, made", [([], 1000), ([50], None), ([50], 100), ([float("nan")], 1000)])
def test_stale_or_broken_forecasts_decay_to_the_reactive_minimum(forecast, made):
    decision, state = step(6, forecast, made=made)
    assert decision.stale and decision.min_replicas == 4
    for _ in range(5):
        decision, state = decide(CONFIG, state, PolicyInput(1000, forecast, made))
    assert decision.min_replicas == CONFIG.min_replicas


def test_floor_stays_within_min_and_max():
    assert step(1, [10_000])[0].min_replicas <= CONFIG.max_replicas
    assert step(0, [0])[0].min_replicas == CONFIG.min_replicas
    assert step(50, [10_000])[0].min_replicas == CONFIG.max_replicas


@pytest.mark.parametrize("kwargs", [dict(capacity_per_replica=0), dict(target_utilisation=1.5),
                                    dict(min_replicas=5, max_replicas=2), dict(max_step_down=0), dict(hysteresis=1)])
def test_bad_config_raises(kwargs):
    base = dict(capacity_per_replica=10, max_replicas=20)
    with pytest.raises(PolicyError):
        PolicyConfig(**{**base, **kwargs})


@settings(max_examples=200, deadline=None)
@given(
    floor=st.integers(-5, 50),
    forecast=st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=8),
    observed=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    age=st.one_of(st.none(), st.floats(-1e6, 1e6)),
)
def test_never_returns_nan_or_out_of_range_floors(floor, forecast, observed, age):
    made = None if age is None else 1000 - age
    decision, state = decide(CONFIG, PolicyState(floor), PolicyInput(1000, forecast, made, observed))
    assert isinstance(decision.min_replicas, int)
    assert CONFIG.min_replicas <= decision.min_replicas <= CONFIG.max_replicas
    assert state.floor == decision.min_replicas


def test_a_swinging_forecast_holds_the_floor_within_the_scale_down_window():
    # The issue-13 demo: perReplica 8, max 8, decisions every 2 s, a forecast swinging between a
    # runaway (300) and 0.0 with every 5-second bucket, and an observed load of 4.
    config = PolicyConfig(capacity_per_replica=8, max_replicas=8, min_replicas=1, target_utilisation=1.0,
                          scale_down_window_seconds=10, stale_after_seconds=30)
    state, floors = PolicyState(1), []
    for now in range(0, 40, 2):
        forecast = [300.0] if (now // 5) % 2 == 0 else [0.0]
        decision, state = decide(config, state, PolicyInput(now, forecast, now, observed_load=4.0))
        floors.append(decision.min_replicas)
    assert floors == [8] * 20  # without the window: 8, 8, 8, 6, 4, 8, ... (a flip every few seconds)
    for now in range(40, 60, 2):  # the need stays low: the floor falls once the window has passed
        decision, state = decide(config, state, PolicyInput(now, [0.0], now, observed_load=4.0))
        floors.append(decision.min_replicas)
    assert floors[20:] == [8, 8, 6, 4, 2, 1, 1, 1, 1, 1]
    held, _ = decide(config, PolicyState(8, ((50.0, 8),)), PolicyInput(52, [0.0], 52, observed_load=4.0))
    assert held.min_replicas == 8 and "needed 8 within 10 s" in held.reason


@settings(max_examples=100, deadline=None)
@given(loads=st.lists(st.floats(0, 300), min_size=1, max_size=40), window=st.sampled_from([0, 4, 10, 60]))
def test_the_floor_never_falls_below_a_need_inside_the_window(loads, window):
    config = PolicyConfig(capacity_per_replica=8, max_replicas=8, min_replicas=1, target_utilisation=1.0,
                          max_step_up=8, scale_down_window_seconds=window, stale_after_seconds=30)
    state, needs = PolicyState(1), []
    for i, load in enumerate(loads):
        now = 2.0 * i
        needs.append((now, config.replicas_for(load)))
        decision, new_state = decide(config, state, PolicyInput(now, [load], now))
        assert config.min_replicas <= decision.min_replicas <= config.max_replicas
        if decision.min_replicas < state.floor:
            assert decision.min_replicas >= max(n for t, n in needs if now - t < max(window, 1e-9))
        state = new_state


def test_below_the_break_even_cold_start_the_policy_backs_off_to_reactive():
    from dataclasses import replace

    short = replace(CONFIG, cold_start_seconds=20, break_even_cold_start_seconds=60)
    decision, state = decide(short, PolicyState(8), PolicyInput(1000, [150], 1000, 120))
    assert decision.min_replicas == 1 and state.floor == 1 and not decision.stale
    assert "break-even" in decision.reason
    long = replace(CONFIG, cold_start_seconds=100, break_even_cold_start_seconds=60)
    assert decide(long, PolicyState(1), PolicyInput(1000, [50], 1000, None))[0].min_replicas == 5
    with pytest.raises(PolicyError):
        replace(CONFIG, break_even_cold_start_seconds=-1)
