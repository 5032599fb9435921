"""Render a backtest as markdown tables, PNG plots and a JSON document."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import matplotlib.figure
import numpy as np
import pandas as pd

from autoglm_predictor.backtest.evaluation import FLOOR_UTILISATION, STATIC_PEAK, Backtest, Data, Scenario, horizon_label
from autoglm_predictor.backtest.frontier import Comparison, Frontier
from autoglm_predictor.forecast.simulator import Outcome

PLOT_DAYS = 2  # demand-vs-capacity plots show the first days of the test period; minutes blur beyond


def hours(value: float) -> str:
    """Whole hours for long replays; short (Azure-hour) replays need decimals to compare."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def accuracy_table(scenario: Scenario, result: Backtest) -> str:
    q = scenario.quantile
    header = ["forecaster", "horizon", "MAE", "RMSE", "sMAPE %", "MASE", f"under q{q:g} %",
              f"under q{q:g} % before calibration", f"pinball q{q:g}"]
    rows = []
    for name, per_horizon in result.accuracy.items():
        for h, a in per_horizon.items():
            rows.append([name, horizon_label(scenario, h), f"{a.mae:.1f}", f"{a.rmse:.1f}", f"{a.smape:.1f}",
                         f"{a.mase:.2f}", f"{a.under_rate:.1f}", f"{result.raw_under_rate[name][h]:.1f}",
                         f"{a.pinball:.2f}"])
    return table(header, rows)


def closed_loop_table(result: Backtest) -> str:
    oracle = result.replays["oracle"].outcome.gpu_hours
    header = ["policy", "SLO attainment %", "avg replicas", "GPU-hours", "x oracle", "goodput / GPU-h",
              "SLO-violation min", "violation %", "theta_U %", "theta_O %",
              "tau_U %", "tau_O %", "scale events", "cold-start GPU-min"]
    rows = []
    for name, replay in result.replays.items():
        o, e = replay.outcome, replay.outcome.elasticity
        rows.append([name, f"{o.slo_attainment_pct:.2f}", f"{o.avg_replicas:.2f}", hours(o.gpu_hours),
                     f"{o.gpu_hours / oracle:.2f}", f"{o.goodput_per_gpu_hour:,.0f}",
                     f"{o.violation_minutes:,.1f}", f"{o.violation_pct:.2f}", f"{e.theta_u:.2f}", f"{e.theta_o:.1f}", f"{e.tau_u:.2f}",
                     f"{e.tau_o:.1f}", f"{o.scale_events:,}", f"{o.cold_start_gpu_minutes:,.0f}"])
    return table(header, rows)


def sweep_table(result: Backtest) -> str:
    targets = list(result.sweep)
    policies = list(next(iter(result.sweep.values())))
    header = ["policy"] + [f"target {t:.2f}: viol % / GPU-h" for t in targets]
    rows = [[p] + [f"{result.sweep[t][p].violation_pct:.2f} / {hours(result.sweep[t][p].gpu_hours)}" for t in targets]
            for p in policies]
    return table(header, rows)


def _maybe(value: float | None, fmt: str) -> str:
    return "outside the sweep" if value is None else format(value, fmt)


def ratio(value: float) -> str:
    """Two decimals, or two significant digits below 0.1: a policy that misses 0.002 of reactive's
    missed requests must not read as 0.00 (none missed)."""
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def comparison_cells(c: Comparison) -> list[str]:
    """The comparison columns; "-" for the miss ratio when neither side misses anything (0 / 0)."""
    missed = "-" if c.nothing_missed else "outside the sweep" if c.miss_ratio is None else ratio(c.miss_ratio)
    return [_maybe(c.reactive_attainment_at_equal_cost, ".2f"), missed,
            _maybe(c.reactive_gpu_hours_at_equal_attainment, ",.2f"), _maybe(c.cost_ratio, ".2f")]


COMPARISON_HEADER = ["tuned reactive attainment % at equal GPU-h", "missed / reactive's missed",
                     "tuned reactive GPU-h at equal attainment", "GPU-h / reactive's"]


def frontier_table(result: Backtest) -> str:
    efficient = {p.target for p in result.frontier.points}
    header = ["reactive target", "SLO attainment %", "avg replicas", "GPU-hours", "goodput / GPU-h", "on the frontier"]
    rows = [[f"{t:.2f}", f"{o.slo_attainment_pct:.2f}", f"{o.avg_replicas:.2f}", hours(o.gpu_hours),
             f"{o.goodput_per_gpu_hour:,.0f}", "yes" if t in efficient else "no (dominated)"]
            for t, o in result.reactive_sweep.items()]
    return table(header, rows)


def comparison_table(result: Backtest) -> str:
    header = ["policy", "SLO attainment %", "GPU-hours"] + COMPARISON_HEADER
    rows = [[name, f"{c.attainment_pct:.2f}", hours(c.gpu_hours)] + comparison_cells(c)
            for name, c in result.comparisons.items()]
    return table(header, rows)


def cold_start_table(result: Backtest) -> str:
    """Every swept cold start, shortest first; a skipped one says why instead of vanishing."""
    header = ["cold start", "policy", "SLO attainment %", "avg replicas", "GPU-hours"] + COMPARISON_HEADER
    rows = {s: [f"{s:g} s", "backed off to reactive" if r.reactive_only else result.default_policy,
                f"{r.policy.slo_attainment_pct:.2f}", f"{r.policy.avg_replicas:.2f}", hours(r.policy.gpu_hours)]
            + comparison_cells(r.comparison) for s, r in result.cold_starts.items()}
    rows |= {s: [f"{s:g} s", f"skipped: {reason}"] + ["-"] * (len(header) - 2)
             for s, reason in result.skipped_cold_starts.items()}
    return table(header, [rows[s] for s in sorted(rows)])


def break_even_text(result: Backtest) -> str:
    """The break-even sentence of the cold-start sweep. It speaks of evaluated cold starts only, names
    the skipped ones, and at the shortest evaluated cold start gives an upper bound: the floor
    may pay off below it too, the sweep just did not go lower."""
    even = result.break_even_cold_start_seconds
    if even is None:
        value = "none among the evaluated cold starts"
    else:
        value = f"{even:g} s or less (the shortest swept)" if result.break_even_is_shortest_swept else f"{even:g} s"
    text = ("Break-even cold start (the floor beats the frontier at this and every longer evaluated cold start): "
            f"{value}.")
    if result.skipped_cold_starts:
        text += (" Not evaluated: " + ", ".join(f"{s:g} s" for s in sorted(result.skipped_cold_starts))
                 + " (skipped, the table says why).")
    return text


def fleet_too_small(result: Backtest) -> list[str]:
    """A warning paragraph (or none) when even the oracle misses requests: the oracle sees the true
    demand, so its misses come from demand beyond --max-replicas x --capacity (or from a rise
    steeper than the floor's step limit), and every policy is then judged partly on load no fleet
    of that size could serve (a new user's cron trace: the oracle at 33.88% attainment, with no
    word on why)."""
    attainment = result.replays["oracle"].outcome.slo_attainment_pct
    if attainment >= 99.995:
        return []
    return [f"**The fleet is too small for this trace:** even the oracle (the floor fed the true demand) meets "
            f"the SLO for only {attainment:.2f}% of requests, so demand exceeds what --max-replicas replicas of "
            "--capacity serve (or rises faster than the floor's step limit); raise --max-replicas (or lower the trace with --p99-fraction) to compare the "
            "policies on load a fleet can serve.", ""]


def markdown(title: str, settings: dict[str, object], scenario: Scenario, result: Backtest,
             costs: dict[str, object], plots: list[Path]) -> str:
    # A setting left at None is an option switched off (--p99-fraction): "off", not Python's "None".
    values = [[k, "off" if v is None else str(v)] for k, v in settings.items()]
    parts = [f"# {title}", "", "## Settings", "", table(["setting", "value"], values),
             "", "## Forecast accuracy (test period)", "",
             "MAE/RMSE/sMAPE/MASE score the median; the under-prediction rate and pinball loss score the "
             f"q{scenario.quantile:g} forecast the floor uses. MASE is scaled by the training set's "
             "one-bucket naive error.", "", accuracy_table(scenario, result), "",
             f"## Closed loop (reactive target utilisation {scenario.cluster.target_utilisation:.2f}; "
             f"floors at utilisation {FLOOR_UTILISATION:g})", "",
             closed_loop_table(result), "", *fleet_too_small(result),
             "## Against tuned reactive scaling", "",
             "Reactive swept over its target utilisation; its Pareto points form the frontier, "
             "interpolated linearly between points and never extrapolated.", "", frontier_table(result), "",
             "Every policy above against that frontier (missed / reactive's missed < 1 and GPU-h / "
             "reactive's < 1 mean the policy is better):", "", comparison_table(result), "",
             "## Trade-off: sweeping reactive's target utilisation (above the same floors)", "",
             sweep_table(result), ""]
    if result.cold_starts or result.skipped_cold_starts:
        parts += ["## Cold-start sweep", "", f"The default policy ({result.default_policy}) at the scenario target "
                  "against the tuned reactive frontier at each cold start. " + break_even_text(result), "",
                  cold_start_table(result), ""]
    if costs:
        parts += ["## Cost", "", table(["measure", "value"], [[k, str(v)] for k, v in costs.items()]), ""]
    parts += [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(parts) + "\n"


def replay_title(name: str, outcome: Outcome) -> str:
    """A policy's plot title: per-request SLO attainment first, since violation minutes understate
    a spiky load (a cron trace: 8.26% violation minutes while only 31.85% of requests met the SLO)."""
    return (f"{name}: {outcome.slo_attainment_pct:.2f}% of requests within the TTFT SLO, "
            f"{outcome.violation_pct:.2f}% violation minutes, {hours(outcome.gpu_hours)} GPU-h")


def capacity_figure(scenario: Scenario, data: Data, result: Backtest) -> matplotlib.figure.Figure:
    """Demand vs Ready capacity per policy over the first PLOT_DAYS of the test period (the title says
    how much is shown); the titles' scores are the whole test period's."""
    demand = data.steps.test
    shown = demand.index < demand.index[0] + pd.Timedelta(days=PLOT_DAYS)
    names = [n for n in result.replays if n != STATIC_PEAK]
    fig = matplotlib.figure.Figure(figsize=(12, 2.2 * len(names) + 0.4))
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        capacity = result.replays[name].trajectory.ready * scenario.cluster.capacity_per_replica
        ax.plot(demand.index[shown], demand.to_numpy()[shown], lw=0.6, color="black", label="demand")
        ax.step(demand.index[shown], capacity[shown], lw=0.9, color="tab:blue", where="post", label="ready capacity")
        short = demand.to_numpy()[shown] > capacity[shown]
        ax.fill_between(demand.index[shown], 0, demand.to_numpy()[shown], where=short, color="tab:red", alpha=0.5,
                        step="post", label="SLO violation")
        ax.set_title(replay_title(name, result.replays[name].outcome), fontsize=9)
        ax.set_ylabel("req / step")
    axes[0, 0].legend(loc="upper right", fontsize=7)
    fig.suptitle("Demand vs Ready capacity over the test period" if shown.all() else
                 f"Demand vs Ready capacity over the first {PLOT_DAYS} days of the test period "
                 "(scores: the whole test period)", fontsize=10)
    fig.tight_layout()
    return fig


def tradeoff_figure(result: Backtest) -> matplotlib.figure.Figure:
    """Every policy over the target sweep: SLO attainment per GPU-hour first, violation minutes beside it."""
    fig = matplotlib.figure.Figure(figsize=(12, 5))
    attained, violated = fig.subplots(1, 2)
    outcomes = list(result.sweep.values())
    for name in outcomes[0]:
        for ax, measure in ((attained, "slo_attainment_pct"), (violated, "violation_pct")):
            points = np.array([(r[name].gpu_hours, getattr(r[name], measure)) for r in outcomes])
            ax.plot(points[:, 0], points[:, 1], marker="o", label=name)
            for target, (x, y) in zip(result.sweep, points):
                ax.annotate(f"{target:.2f}", (x, y), fontsize=6)
    for ax, label in ((attained, "requests within the TTFT SLO (%)"), (violated, "SLO-violation minutes (%)")):
        ax.set_xlabel("GPU-hours (pod-hours incl. starting pods)")
        ax.set_ylabel(label)
    attained.legend(fontsize=7)
    fig.suptitle("Trade-off when sweeping the target utilisation: SLO attainment (left), violation minutes (right)")
    fig.tight_layout()
    return fig


def plot(scenario: Scenario, data: Data, result: Backtest, directory: Path) -> list[Path]:
    """Write demand vs Ready capacity per policy, the target sweep's trade-off and the frontiers; the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    figures = {"demand_vs_capacity.png": capacity_figure(scenario, data, result), "tradeoff.png": tradeoff_figure(result),
               "frontier.png": frontier_figure(result)}
    for name, fig in figures.items():
        fig.savefig(directory / name, dpi=90)
    return [directory / name for name in figures]


def frontier_figure(result: Backtest) -> matplotlib.figure.Figure:
    """SLO attainment against GPU-hours: tuned reactive's frontier and every policy's target sweep."""
    fig = matplotlib.figure.Figure(figsize=(7, 5))
    ax = fig.subplots()
    swept = np.array([(o.gpu_hours, o.slo_attainment_pct) for o in result.reactive_sweep.values()])
    ax.scatter(swept[:, 0], swept[:, 1], s=10, color="grey", label="reactive (all targets)")
    front = result.frontier
    ax.plot(front.gpu_hours, front.attainment, color="black", lw=1.5, label="tuned reactive frontier")
    for name in next(iter(result.sweep.values()), {}):
        if name == "reactive":
            continue
        points = np.array(sorted((r[name].gpu_hours, r[name].slo_attainment_pct) for r in result.sweep.values()))
        ax.plot(points[:, 0], points[:, 1], marker="o", ms=3, lw=0.8, label=f"{name} (target sweep)")
    for name, c in result.comparisons.items():
        ax.scatter([c.gpu_hours], [c.attainment_pct], marker="x", s=30)
        ax.annotate(name, (c.gpu_hours, c.attainment_pct), fontsize=6)
    ax.set_xlabel("GPU-hours (pod-hours incl. starting pods)")
    ax.set_ylabel("requests within the TTFT SLO (%)")
    ax.set_title("SLO attainment per GPU-hour: tuned reactive vs predictive floors")
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def _frontier_json(front: Frontier) -> list[dict[str, float]]:
    return [asdict(p) for p in front.points]


def _comparison_json(c: Comparison) -> dict[str, object]:
    """Ratios are null outside the frontier, and the miss ratio also when reactive misses nothing at
    that cost but the policy does (infinite: strict JSON has no Infinity; the attainments say it)."""
    finite = lambda x: x if x is not None and np.isfinite(x) else None  # noqa: E731
    return {**asdict(c), "miss_ratio": finite(c.miss_ratio), "cost_ratio": finite(c.cost_ratio)}


def to_json(settings: dict[str, object], scenario: Scenario, result: Backtest, costs: dict[str, object]) -> str:
    document = {
        "settings": settings,
        "accuracy": {name: {horizon_label(scenario, h): {**asdict(a), "under_rate_uncalibrated": result.raw_under_rate[name][h]}
                              for h, a in per.items()}
                     for name, per in result.accuracy.items()},
        "closed_loop": {name: asdict(replay.outcome) for name, replay in result.replays.items()},
        "sweep": {f"{t:.2f}": {name: asdict(o) for name, o in per.items()} for t, per in result.sweep.items()},
        "reactive_frontier": {
            "points": _frontier_json(result.frontier),
            "sweep": {f"{t:.2f}": asdict(o) for t, o in result.reactive_sweep.items()},
            "comparisons": {name: _comparison_json(c) for name, c in result.comparisons.items()},
        },
        "cold_start_sweep": {
            "policy": result.default_policy,
            "break_even_cold_start_seconds": result.break_even_cold_start_seconds,
            "break_even_is_shortest_swept": result.break_even_is_shortest_swept,
            "rows": {f"{s:g}": {"reactive_only": r.reactive_only, "policy": asdict(r.policy),
                                "frontier": _frontier_json(r.frontier), "comparison": _comparison_json(r.comparison)}
                     for s, r in result.cold_starts.items()},
            "skipped": {f"{s:g}": reason for s, reason in sorted(result.skipped_cold_starts.items())},
        },
        "costs": costs,
    }
    return json.dumps(document, indent=2, default=str, allow_nan=False)
