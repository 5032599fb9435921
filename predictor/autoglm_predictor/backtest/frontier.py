"""The tuned reactive baseline: reactive scaling's cost/attainment frontier over its target utilisation.

A platform team without forecasts would tune the reactive target until attainment and cost suit
them, so a predictive policy is judged against the best reactive setting *at the same cost*,
not against reactive at one arbitrary target. The frontier is the Pareto-efficient subset of
the swept reactive replays (no other setting is both cheaper and better), sorted by GPU-hours;
between two of its points attainment and cost are interpolated linearly. Nothing is
extrapolated: a policy cheaper than the cheapest or dearer than the dearest reactive setting
gets None (the sweep must be widened), so a comparison is never invented; the one exception is
a dearest point at 100% attainment, which no extra GPU-hour can improve on.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class FrontierError(ValueError):
    """A frontier that cannot be built (message says why)."""


@dataclass(frozen=True)
class Point:
    target: float  # reactive target utilisation of this replay
    gpu_hours: float
    attainment_pct: float


@dataclass(frozen=True)
class Frontier:
    points: tuple[Point, ...]  # Pareto-efficient, GPU-hours and attainment both strictly rising

    @property
    def gpu_hours(self) -> np.ndarray:
        return np.array([p.gpu_hours for p in self.points])

    @property
    def attainment(self) -> np.ndarray:
        return np.array([p.attainment_pct for p in self.points])


def frontier(points: Sequence[Point]) -> Frontier:
    """Keep the points no other point beats on both cost and attainment, cheapest first.

    Of points with equal cost the best attainment stays; a dearer point must attain strictly more.
    Raises FrontierError for no points or non-finite values.
    """
    if not points:
        raise FrontierError("a frontier needs at least one reactive replay")
    if not all(np.isfinite([p.gpu_hours, p.attainment_pct]).all() for p in points):
        raise FrontierError("frontier points must be finite")
    kept: list[Point] = []
    for p in sorted(points, key=lambda p: (p.gpu_hours, -p.attainment_pct)):
        if not kept or p.attainment_pct > kept[-1].attainment_pct:
            if kept and p.gpu_hours == kept[-1].gpu_hours:
                continue
            kept.append(p)
    return Frontier(tuple(kept))


def attainment_at(front: Frontier, gpu_hours: float) -> float | None:
    """The best reactive attainment for `gpu_hours` (linear between frontier points); None outside it."""
    x = front.gpu_hours
    if gpu_hours > x[-1] and front.attainment[-1] >= 100.0 - 1e-9:
        return 100.0
    if not x[0] - 1e-9 <= gpu_hours <= x[-1] + 1e-9:
        return None
    # Cost above a frontier point buys at least its attainment, so the step below is not the
    # answer; linear interpolation assumes GPU-hours can be bought in between (a mix of targets).
    return float(np.interp(gpu_hours, x, front.attainment))


def cost_at(front: Frontier, attainment_pct: float) -> float | None:
    """The GPU-hours tuned reactive needs to reach `attainment_pct`; None outside the frontier's range.

    Below the cheapest point's attainment, a cheaper reactive setting that was not swept might
    reach it, so no cost is claimed there either (widen the sweep).
    """
    y = front.attainment
    if not y[0] - 1e-9 <= attainment_pct <= y[-1] + 1e-9:
        return None
    return float(np.interp(attainment_pct, y, front.gpu_hours))


@dataclass(frozen=True)
class Comparison:
    """One policy's replay against tuned reactive at equal cost and at equal attainment."""

    gpu_hours: float
    attainment_pct: float
    reactive_attainment_at_equal_cost: float | None
    reactive_gpu_hours_at_equal_attainment: float | None

    @property
    def nothing_missed(self) -> bool:
        """Neither the policy nor tuned reactive at the same GPU-hours misses a request: the miss ratio
        is 0 / 0, 1.0 in JSON by convention, and tables show "-" (as docs/benchmarks.md does)."""
        reactive = self.reactive_attainment_at_equal_cost
        return reactive is not None and 100.0 - reactive <= 1e-9 and 100.0 - self.attainment_pct <= 1e-9

    @property
    def miss_ratio(self) -> float | None:
        """Requests missed by the policy / missed by tuned reactive at the same GPU-hours (< 1: better)."""
        reactive = self.reactive_attainment_at_equal_cost
        if reactive is None:
            return None
        if self.nothing_missed:
            return 1.0
        missed, reactive_missed = 100.0 - self.attainment_pct, 100.0 - reactive
        return float("inf") if reactive_missed <= 1e-9 else missed / reactive_missed

    @property
    def cost_ratio(self) -> float | None:
        """Policy GPU-hours / tuned reactive's GPU-hours at the same attainment (< 1: cheaper)."""
        reactive = self.reactive_gpu_hours_at_equal_attainment
        return None if reactive is None or reactive <= 0 else self.gpu_hours / reactive


def compare(front: Frontier, gpu_hours: float, attainment_pct: float) -> Comparison:
    return Comparison(gpu_hours=gpu_hours, attainment_pct=attainment_pct,
                      reactive_attainment_at_equal_cost=attainment_at(front, gpu_hours),
                      reactive_gpu_hours_at_equal_attainment=cost_at(front, attainment_pct))
