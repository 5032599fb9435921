"""`spec.rollout`: how a new revision earns traffic (mirror steps, weight steps, analysis, controls).

Kept in its own module so the canary's API sits next to the code that drives it (canary.py,
analysis.py); spec.py only adds the `rollout` field. Durations are whole seconds, like every other
duration of the resource.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from autoglm_operator.api.schema import NOT_EMPTY, Rule, spec_field

HEADER_NAME = r"^[a-z0-9][-a-z0-9_]*$"
COOKIE_NAME = r"^[A-Za-z0-9_-]+$"


@dataclasses.dataclass(frozen=True)
class RolloutStep:
    """One step: either shadow traffic (mirror, canary weight 0) or a share of live traffic (weight)."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="has(self.mirror) != has(self.weight)",
            message="a rollout step sets exactly one of mirror and weight",
            check=lambda s: (s.mirror is None) != (s.weight is None),
        ),
    )

    mirror: int | None = spec_field(
        "Percent of live requests copied to the canary while it takes no live traffic; every copy is a full generation.",
        default=None, minimum=1, maximum=100,
    )
    weight: int | None = spec_field("Percent of live traffic routed to the canary.", default=None, minimum=1, maximum=99)


@dataclasses.dataclass(frozen=True)
class MetricCheck:
    """A user PromQL check; {{namespace}}, {{name}} and {{revision}} (the canary's) are filled in."""

    RULES: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="has(self.min) || has(self.max)",
            message="a metric check needs min or max",
            check=lambda m: m.min is not None or m.max is not None,
        ),
    )

    name: str = spec_field("Check name, shown in status and events.", pattern=r"^[a-zA-Z][-a-zA-Z0-9_]*$", max_length=63)
    query: str = spec_field("PromQL returning one number.", max_length=4096, rules=(NOT_EMPTY,))
    min: float | None = spec_field("Fail when the value is below this.", default=None)
    max: float | None = spec_field("Fail when the value is above this.", default=None)


@dataclasses.dataclass(frozen=True)
class Analysis:
    """What a step must show in Prometheus before the canary gets more traffic."""

    prometheus_address: str = spec_field(
        "Prometheus URL the operator queries; empty uses spec.autoscaling.prometheusAddress.", default="",
        pattern=r"^$|^https?://",
    )
    success_rate_min: float | None = spec_field(
        "Lowest share of finished requests that must succeed (the engine's request outcome counters; docs/rollouts.md).",
        default=0.99, minimum=0, maximum=1,
    )
    ttft_p95_max_seconds: float | None = spec_field(
        "Highest time-to-first-token p95 in seconds (the engine's TTFT histogram; refused for engines without one: tgi).",
        default=None, minimum=0,
    )
    queue_depth_max: float | None = spec_field(
        "Highest average of the engine's waiting-requests gauge per canary pod.", default=None, minimum=0,
    )
    max_relative_degradation: float | None = spec_field(
        "How much worse than the stable revision the canary may be, as a fraction (0.2 = 20%); unset: no comparison.",
        default=None, minimum=0, maximum=10,
    )
    metrics: list[MetricCheck] = spec_field("Extra PromQL checks.", default_factory=list, max_items=16, map_key="name")
    no_data: Literal["wait", "fail", "pass"] = spec_field(
        "What a check without data means: wait (up to noDataLimit intervals, then a failure), fail, or pass.",
        default="wait",
    )
    no_data_limit: int = spec_field(
        "Consecutive intervals without data tolerated by noData wait before they count as one failure.",
        default=3, minimum=1, maximum=100,
    )


@dataclasses.dataclass(frozen=True)
class HeaderRoute:
    """Requests carrying this header (exact value) always go to the canary: for testers."""

    name: str = spec_field("Header name (lower case).", pattern=HEADER_NAME, max_length=128)
    value: str = spec_field("Exact header value.", max_length=256, rules=(NOT_EMPTY,))


@dataclasses.dataclass(frozen=True)
class Rollout:
    """Progressive delivery of a new revision through the traffic provider (Istio, or a Gateway API HTTPRoute: traffic.provider); absent: traffic switches once it is Ready."""

    steps: list[RolloutStep] = spec_field(
        "Steps in order; the canary is promoted after the last one passes.",
        default_factory=lambda: [RolloutStep(mirror=20), RolloutStep(weight=5), RolloutStep(weight=25), RolloutStep(weight=50)],
        max_items=20,
    )
    interval_seconds: int = spec_field("How long each step is observed before its analysis.", default=300, minimum=1, maximum=86400)
    startup_budget_seconds: int = spec_field(
        "How long the canary may take to become Ready (weights loading) before the rollout is rolled back.",
        default=1800, minimum=1, maximum=86400,
    )
    failure_limit: int = spec_field("Failed analyses that roll the canary back.", default=2, minimum=1, maximum=100)
    drain_delay_seconds: int = spec_field(
        "Longest a retired revision keeps running after traffic left it, for its requests in flight: it is deleted "
        "as soon as Prometheus reports none (its engine's running and waiting gauges), at the latest after this.",
        default=60, minimum=0, maximum=86400,
    )
    analysis: Analysis = spec_field("Checks per step.", default_factory=Analysis)
    header: HeaderRoute | None = spec_field("Route requests with this header to the canary.", default=None)
    sticky_cookie: str = spec_field(
        "Cookie that keeps a client on the canary once a weighted request landed there; empty: no stickiness.",
        default="", pattern=r"^$|" + COOKIE_NAME, max_length=64,
    )
    paused: bool = spec_field("Hold the canary at its current step (weights kept) until set back to false.", default=False)
