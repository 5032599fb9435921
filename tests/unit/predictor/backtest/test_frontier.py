"""Tuned reactive's frontier and the interpolation at equal cost / equal attainment, by hand."""
import pytest

from autoglm_predictor.backtest.frontier import FrontierError, Point, attainment_at, compare, cost_at, frontier

# Reactive swept over targets: cost falls and attainment falls as the target rises; the 0.65
# point is dominated (dearer than 0.7 and worse) and a duplicate cost keeps the better point.
SWEEP = [Point(0.5, 200.0, 99.0), Point(0.6, 150.0, 97.0), Point(0.65, 140.0, 90.0),
         Point(0.7, 120.0, 93.0), Point(0.9, 100.0, 85.0), Point(0.95, 100.0, 80.0)]
FRONT = frontier(SWEEP)


def test_the_frontier_keeps_the_pareto_points_cheapest_first():
    assert [p.target for p in FRONT.points] == [0.9, 0.7, 0.6, 0.5]


@pytest.mark.parametrize(("gpu_hours", "expected"), [
    (100.0, 85.0), (110.0, 89.0), (135.0, 95.0), (175.0, 98.0), (200.0, 99.0), (99.0, None), (201.0, None)])
def test_attainment_at_equal_cost_interpolates_linearly_and_never_extrapolates(gpu_hours, expected):
    assert attainment_at(FRONT, gpu_hours) == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(("attainment", "expected"), [
    (85.0, 100.0), (89.0, 110.0), (95.0, 135.0), (98.0, 175.0), (99.0, 200.0), (99.5, None), (80.0, None)])
def test_cost_at_equal_attainment_is_the_inverse(attainment, expected):
    assert cost_at(FRONT, attainment) == (None if expected is None else pytest.approx(expected))


def test_above_a_frontier_that_attains_everything_reactive_attains_everything():
    perfect = frontier([Point(0.8, 10.0, 99.0), Point(0.6, 12.0, 100.0)])
    assert attainment_at(perfect, 50.0) == 100.0 and attainment_at(FRONT, 250.0) is None
    assert compare(perfect, 50.0, 100.0).miss_ratio == 1.0 and compare(perfect, 50.0, 100.0).nothing_missed
    assert compare(perfect, 50.0, 99.0).miss_ratio == float("inf") and not compare(perfect, 50.0, 99.0).nothing_missed


def test_comparison_ratios():
    # At 135 GPU-hours reactive attains 95% (misses 5%); the policy misses 2%: 0.4 of reactive's misses.
    # Reactive needs 175 GPU-hours for the policy's 98%: the policy costs 135 / 175 of it.
    c = compare(FRONT, 135.0, 98.0)
    assert c.miss_ratio == pytest.approx(0.4) and c.cost_ratio == pytest.approx(135 / 175)
    outside = compare(FRONT, 90.0, 99.9)
    assert outside.miss_ratio is None and outside.cost_ratio is None


def test_a_frontier_needs_finite_points():
    with pytest.raises(FrontierError):
        frontier([])
    with pytest.raises(FrontierError):
        frontier([Point(0.5, float("nan"), 90.0)])
