"""Render a backtest as markdown tables, PNG plots and a JSON document."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from autoglm_predictor.backtest.evaluation import Backtest, Data, Scenario

PLOT_DAYS = 2  # demand-vs-capacity plots show the first days of the test period; minutes blur beyond


def horizon_label(scenario: Scenario, h: int) -> str:
    seconds = int((scenario.bucket * h).total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def hours(value: float) -> str:
    """Whole hours for long replays; short (Azure-hour) replays need decimals to compare."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def accuracy_table(scenario: Scenario, result: Backtest) -> str:
    q = scenario.quantile
    header = ["forecaster", "horizon", "MAE", "RMSE", "sMAPE %", "MASE", f"under q{q:g} %", f"pinball q{q:g}"]
    rows = []
    for name, per_horizon in result.accuracy.items():
        for h, a in per_horizon.items():
            rows.append([name, horizon_label(scenario, h), f"{a.mae:.1f}", f"{a.rmse:.1f}", f"{a.smape:.1f}",
                         f"{a.mase:.2f}", f"{a.under_rate:.1f}", f"{a.pinball:.2f}"])
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


def markdown(title: str, settings: dict[str, object], scenario: Scenario, result: Backtest,
             costs: dict[str, object], plots: list[Path]) -> str:
    parts = [f"# {title}", "", "## Settings", "", table(["setting", "value"], [[k, str(v)] for k, v in settings.items()]),
             "", "## Forecast accuracy (test period)", "",
             "MAE/RMSE/sMAPE/MASE score the median; the under-prediction rate and pinball loss score the "
             f"q{scenario.quantile:g} forecast the floor uses. MASE is scaled by the training set's "
             "one-bucket naive error.", "", accuracy_table(scenario, result), "",
             f"## Closed loop (target utilisation {scenario.cluster.target_utilisation:.2f})", "",
             closed_loop_table(result), "", "## Trade-off: sweeping the target utilisation", "", sweep_table(result), ""]
    if costs:
        parts += ["## Cost", "", table(["measure", "value"], [[k, str(v)] for k, v in costs.items()]), ""]
    parts += [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(parts) + "\n"


def plot(scenario: Scenario, data: Data, result: Backtest, directory: Path) -> list[Path]:
    """Demand vs Ready capacity per policy, and violations vs GPU-hours across the sweep."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    demand = data.steps.test
    shown = demand.index < demand.index[0] + pd.Timedelta(days=PLOT_DAYS)
    names = [n for n in result.replays if n != "static peak"]
    fig, axes = plt.subplots(len(names), 1, figsize=(12, 2.2 * len(names)), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        capacity = result.replays[name].trajectory.ready * scenario.cluster.capacity_per_replica
        ax.plot(demand.index[shown], demand.to_numpy()[shown], lw=0.6, color="black", label="demand")
        ax.step(demand.index[shown], capacity[shown], lw=0.9, color="tab:blue", where="post", label="ready capacity")
        short = demand.to_numpy()[shown] > capacity[shown]
        ax.fill_between(demand.index[shown], 0, demand.to_numpy()[shown], where=short, color="tab:red", alpha=0.5,
                        step="post", label="SLO violation")
        o = result.replays[name].outcome
        ax.set_title(f"{name}: {o.violation_pct:.2f}% violation, {hours(o.gpu_hours)} GPU-h", fontsize=9)
        ax.set_ylabel("req / step")
    axes[0, 0].legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    capacity_path = directory / "demand_vs_capacity.png"
    fig.savefig(capacity_path, dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 5))
    for name in next(iter(result.sweep.values())):
        points = np.array([(r[name].gpu_hours, r[name].violation_pct) for r in result.sweep.values()])
        ax.plot(points[:, 0], points[:, 1], marker="o", label=name)
        for target, (x, y) in zip(result.sweep, points):
            ax.annotate(f"{target:.2f}", (x, y), fontsize=6)
    ax.set_xlabel("GPU-hours (pod-hours incl. starting pods)")
    ax.set_ylabel("SLO-violation minutes (%)")
    ax.set_title("Trade-off when sweeping the target utilisation")
    ax.legend(fontsize=7)
    fig.tight_layout()
    tradeoff_path = directory / "tradeoff.png"
    fig.savefig(tradeoff_path, dpi=90)
    plt.close(fig)
    return [capacity_path, tradeoff_path]


def to_json(settings: dict[str, object], scenario: Scenario, result: Backtest, costs: dict[str, object]) -> str:
    document = {
        "settings": settings,
        "accuracy": {name: {horizon_label(scenario, h): asdict(a) for h, a in per.items()}
                     for name, per in result.accuracy.items()},
        "closed_loop": {name: asdict(replay.outcome) for name, replay in result.replays.items()},
        "sweep": {f"{t:.2f}": {name: asdict(o) for name, o in per.items()} for t, per in result.sweep.items()},
        "costs": costs,
    }
    return json.dumps(document, indent=2, default=str)
