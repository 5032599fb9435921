"""Backtests: forecast accuracy per horizon, and closed-loop replay of every scaling policy.

Both use a chronological split. Forecasts for the test period are made at every bucket
boundary from the data before it, and the closed loop only uses a forecast once the pipeline
would have delivered it, so no policy except the oracle sees the future.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from autoglm_predictor.backtest.frontier import Comparison, Frontier, Point, compare, frontier
from autoglm_predictor.forecast.calibration import DEFAULT_RATE, calibrate, relative_scale
from autoglm_predictor.forecast.forecasters import ForecastError, Forecaster, LinearAR, Persistence, SeasonalNaive
from autoglm_predictor.forecast.policy import PolicyConfig, PolicyInput, decide, initial_state
from autoglm_predictor.forecast.scores import Accuracy, accuracy, naive_scale
from autoglm_predictor.forecast.series import Split, rescale_factor, resample, span, split
from autoglm_predictor.forecast.simulator import ClusterConfig, Outcome, Trajectory, score, simulate

DAY = pd.Timedelta(days=1)
# The floor covers the forecast's upper quantile at the full capacity per replica, the rate a
# replica serves within the TTFT SLO (forecast/queueing.py): the quantile is the floor's margin,
# and reactive's target headroom stays the reactive path's. The live predictor does the same
# (pipeline/predictor.py: policy_config). Issue 16: at the reactive target (0.8) on top of the
# peak bucket's 0.95 quantile the NASA linear-AR floor spent 1.29x the oracle's GPU-hours for
# 0.02% violation minutes.
FLOOR_UTILISATION = 1.0
LAGS = 12  # the linear AR's recent lags (forecasting.md)
STATIC_PEAK = "static peak"  # the policy of a fixed fleet sized for the training peak (closed_loop)


class ScenarioError(ValueError):
    """An inconsistent backtest scenario (message says which setting to change)."""


def horizon_label(scenario: Scenario, h: int) -> str:
    """`h` buckets ahead in the units a user writes: "5 min", or "90 s" when not whole minutes."""
    seconds = int((scenario.bucket * h).total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def steps_per_bucket(step: pd.Timedelta, bucket: pd.Timedelta) -> int:
    """How many decision steps a bucket holds; ScenarioError unless a whole number >= 1."""
    if step <= pd.Timedelta(0) or bucket % step != pd.Timedelta(0):
        raise ScenarioError(f"--bucket {span(bucket)} must be a whole multiple of --step {span(step)}")
    return int(bucket / step)


def bucket_loads(raw: pd.Series, step: pd.Timedelta, bucket: pd.Timedelta) -> pd.Series:
    """Each bucket's load: its peak `step` times the steps per bucket (the bucket's requests at its
    busiest step's rate). Capacity runs out in the busiest step, so that is what a floor must cover,
    and it is what the live predictor forecasts (pipeline/history.py: peak load per bucket). Issue
    16: with the bucket's total the NASA floor covered the 5-minute mean and missed the peak minutes
    inside. `autoglm train` uses it too, so a saved model learns the series a backtest feeds it."""
    return resample(resample(raw, step), bucket, how="max") * steps_per_bucket(step, bucket)


@dataclass(frozen=True)
class Scenario:
    """Steps and buckets as Timedeltas; cluster capacity is in requests per decision step."""

    step: pd.Timedelta
    bucket: pd.Timedelta
    horizon: int  # forecast buckets (must cover the lead time)
    report_horizons: tuple[int, ...]  # buckets ahead to score, 1-based
    quantile: float
    cluster: ClusterConfig
    pipeline_lag_steps: int = 1
    max_step_up: int = 10
    max_step_down: int = 2
    hysteresis: float = 0.1
    break_even_cold_start_seconds: float = 0.0  # below it the policy backs off to reactive (forecast/policy.py)
    calibration_rate: float = DEFAULT_RATE  # online quantile tracking of the upper forecast; 0 = off

    def __post_init__(self) -> None:
        if not 0 < self.quantile < 1:
            raise ScenarioError(f"--quantile must lie in (0, 1), got {self.quantile}")
        if not self.calibration_rate >= 0:
            raise ScenarioError(f"--calibration-rate must be >= 0 (0: off), got {self.calibration_rate}")
        steps_per_bucket(self.step, self.bucket)
        if not self.report_horizons or not all(1 <= h <= self.horizon for h in self.report_horizons):
            shown = ", ".join(horizon_label(self, h) for h in self.report_horizons)
            raise ScenarioError(f"report horizons {shown} must lie within the forecast horizon "
                                f"({horizon_label(self, self.horizon)}): pass --report-horizons up to it "
                                "or raise --horizon")
        if self.pipeline_lag_steps < 0:
            raise ScenarioError("pipeline lag must be >= 0")
        # The last bucket a lead window can reach, counted from the forecast's origin.
        k = self.steps_per_bucket
        needed = (k + self.pipeline_lag_steps + self.cluster.lead_steps - 2) // k + 1
        if self.horizon < needed:
            raise ScenarioError(f"forecast horizon of {self.horizon} buckets does not cover the lead time "
                                f"(cold start + sync + pipeline lag need {needed}); raise --horizon")

    @property
    def steps_per_bucket(self) -> int:
        return steps_per_bucket(self.step, self.bucket)

    def policy(self, target: float) -> PolicyConfig:
        c = self.cluster
        return PolicyConfig(capacity_per_replica=c.capacity_per_replica, max_replicas=c.max_replicas,
                            min_replicas=c.min_replicas, target_utilisation=target,
                            max_step_up=self.max_step_up, max_step_down=self.max_step_down,
                            hysteresis=self.hysteresis, cold_start_seconds=c.cold_start_seconds,
                            break_even_cold_start_seconds=self.break_even_cold_start_seconds,
                            stale_after_seconds=2 * self.bucket.total_seconds() + self.step.total_seconds())


@dataclass(frozen=True)
class Data:
    """The same trace at the decision step and at the forecast bucket, split the same way."""

    steps: Split
    buckets: Split

    @property
    def all_buckets(self) -> pd.Series:
        return pd.concat([self.buckets.train, self.buckets.test])


def prepare(raw: pd.Series, scenario: Scenario, test_start: str | None, test_end: str | None,
            train_start: str | None, p99_fraction: float | None = None) -> Data:
    """Optionally rescale, resample to the step, take each bucket's load (`bucket_loads`: its peak
    step) and split both at the same bucket boundary."""
    if p99_fraction is not None:
        c = scenario.cluster
        raw = raw * rescale_factor(resample(raw, scenario.step), p99_fraction, c.max_replicas, c.capacity_per_replica)
    buckets = bucket_loads(raw, scenario.step, scenario.bucket)
    bucket_split = split(buckets, test_start, test_end, train_start)
    reach = max(scenario.report_horizons)
    if len(bucket_split.test) < reach:
        raise ScenarioError(f"the test period holds {len(bucket_split.test)} buckets of {span(scenario.bucket)}; "
                            f"scoring the {horizon_label(scenario, reach)} horizon needs at least {reach}: move "
                            f"--test-start earlier or --test-end later (the trace runs {buckets.index[0]} .. "
                            f"{buckets.index[-1]}), or give a longer trace")
    boundary = str(bucket_split.test.index[0])
    end = None if test_end is None else str(bucket_split.test.index[-1] + scenario.bucket)
    steps = split(resample(raw, scenario.step), boundary, end, str(bucket_split.train.index[0]))
    return Data(steps=steps, buckets=bucket_split)


def seasons(bucket: pd.Timedelta, history: int) -> dict[str, int]:
    """The daily and weekly seasons in buckets ("1 day" -> 288 at 5 minutes) that a `history` of that
    many buckets holds twice; a season that is not a whole number of buckets (7-minute buckets) is
    left out, since a lag off by a fraction of a bucket drifts through the cycle."""
    lengths = {"1 day": DAY, "7 days": 7 * DAY}
    return {label: int(length / bucket) for label, length in lengths.items()
            if length % bucket == pd.Timedelta(0) and 2 * int(length / bucket) <= history}


def baselines(scenario: Scenario, data: Data) -> list[Forecaster]:
    """Persistence, seasonal-naive (1 and 7 days when the history holds two seasons), linear AR.

    ScenarioError when the training period is shorter than the linear AR needs without gaps
    (`LinearAR.min_history`): it is the default policy's forecaster without the LSTM.
    """
    quantiles = tuple(sorted({0.5, scenario.quantile}))
    history = len(data.buckets.train)
    needed = LinearAR.min_history(scenario.horizon, LAGS)
    if history < needed:
        raise ScenarioError(f"the training period holds {history} buckets of {span(scenario.bucket)}; a "
                            f"{horizon_label(scenario, scenario.horizon)} horizon needs at least {needed} "
                            f"({span(needed * scenario.bucket)}): give a longer trace or a later --test-start, "
                            "or a shorter --bucket or --horizon")
    usable = seasons(scenario.bucket, history)
    forecasters: list[Forecaster] = [Persistence(scenario.horizon, quantiles)]
    forecasters += [SeasonalNaive(s, scenario.horizon, quantiles, label=f" ({label})") for label, s in usable.items()]
    forecasters.append(LinearAR(scenario.horizon, lags=LAGS, seasons=tuple(usable.values()), quantiles=quantiles))
    return forecasters


def fit(forecasters: Sequence[Forecaster], data: Data) -> None:
    """Fit each forecaster on the training buckets; a refused fit (gaps leave too few complete rows,
    an explosive AR) becomes a ScenarioError that says how much of the training period is missing."""
    train = data.buckets.train
    for forecaster in forecasters:
        try:
            forecaster.fit(train)
        except ForecastError as error:
            raise ScenarioError(f"{forecaster.name} refused the training period ({len(train)} buckets, "
                                f"{int(train.isna().sum())} of them missing): {error}") from None


def test_forecasts(forecaster: Forecaster, data: Data) -> np.ndarray:
    """Forecasts at every test bucket boundary: shape (test buckets, horizon, quantiles)."""
    start = len(data.buckets.train)
    return forecaster.predict(data.all_buckets, np.arange(start, start + len(data.buckets.test)))


def calibrated(scenario: Scenario, data: Data, forecasts: np.ndarray, forecaster: Forecaster) -> np.ndarray:
    """The forecasts with the upper quantile tracked online (forecast/calibration.py); a copy."""
    out = forecasts.copy()
    if scenario.calibration_rate > 0:
        upper, median = forecaster.quantile_index(scenario.quantile), forecaster.quantile_index(0.5)
        out[:, :, upper] = calibrate(forecasts[:, :, upper], forecasts[:, :, median], data.all_buckets.to_numpy(),
                                     len(data.buckets.train), scenario.quantile,
                                     relative_scale(data.buckets.train.to_numpy()), scenario.calibration_rate)
    return out


def forecast_accuracy(scenario: Scenario, data: Data, forecasts: np.ndarray, forecaster: Forecaster) -> dict[int, Accuracy]:
    """Score each reported horizon on the test buckets it can still reach."""
    values = data.all_buckets.to_numpy()
    start = len(data.buckets.train)
    scale = naive_scale(data.buckets.train.to_numpy())
    median, upper = forecaster.quantile_index(0.5), forecaster.quantile_index(scenario.quantile)
    scores = {}
    for h in scenario.report_horizons:
        rows = np.arange(len(forecasts) - h + 1)
        actual = values[start + rows + h - 1]
        scores[h] = accuracy(actual, forecasts[rows, h - 1, median], forecasts[rows, h - 1, upper],
                             scenario.quantile, scale)
    return scores


def lead_forecasts(scenario: Scenario, upper: np.ndarray, n_steps: int) -> tuple[list[np.ndarray], np.ndarray]:
    """For each control point, the forecast load per step over its lead window, and its age.

    The control point after step t may use the forecast from bucket boundary b once
    `b * k - 1 + lag <= t`; its lead window is steps t+1 .. t+lead.
    """
    k, lead = scenario.steps_per_bucket, scenario.cluster.lead_steps
    per_step = upper / k
    windows, made = [], np.full(n_steps, np.nan)
    for t in range(n_steps):
        b = (t + 1 - scenario.pipeline_lag_steps) // k
        if b < 0 or b >= len(per_step):
            windows.append(np.empty(0))
            continue
        first, last = (t + 1) // k - b, (t + lead) // k - b
        windows.append(per_step[b, first : last + 1])
        made[t] = b * k - 1 + scenario.pipeline_lag_steps
    return windows, made


def oracle_windows(scenario: Scenario, demand: np.ndarray) -> list[np.ndarray]:
    lead = scenario.cluster.lead_steps
    return [np.nan_to_num(demand[t + 1 : t + 1 + lead]) for t in range(len(demand))]


def floors(scenario: Scenario, target: float, demand: np.ndarray, windows: Sequence[np.ndarray],
           made: np.ndarray | None) -> np.ndarray:
    """Run the pure policy over the replay; `made=None` means always fresh (the oracle)."""
    config = scenario.policy(target)
    seconds = scenario.step.total_seconds()
    state = initial_state(config)
    out = np.empty(len(demand))
    for t, window in enumerate(windows):
        made_at = t if made is None else made[t]
        inputs = PolicyInput(now_seconds=t * seconds, forecast=window,
                             forecast_seconds=None if np.isnan(made_at) else made_at * seconds,
                             observed_load=None if np.isnan(demand[t]) else float(demand[t]))
        decision, state = decide(config, state, inputs)
        out[t] = decision.min_replicas
    return out


def static_peak(scenario: Scenario, data: Data, target: float) -> int:
    """Provision for the training peak at the target utilisation, all the time."""
    peak = np.nanmax(data.steps.train.to_numpy())
    return scenario.policy(target).replicas_for(float(peak))


def opening_replicas(cluster: ClusterConfig, demand: np.ndarray) -> int:
    """Every policy starts with what the opening lead window needs: nobody could have acted earlier."""
    return int(cluster.needed(np.nan_to_num(demand[: cluster.lead_steps + 1]), cluster.target_utilisation).max())


def reactive_frontier(scenario: Scenario, data: Data, targets: Sequence[float]) -> tuple[Frontier, dict[float, Outcome]]:
    """Reactive replays over `targets` and their Pareto frontier (attainment vs GPU-hours)."""
    demand = data.steps.test.to_numpy()
    outcomes = {}
    for target in targets:
        cluster = replace(scenario.cluster, target_utilisation=target)
        outcomes[target] = score(cluster, demand, simulate(cluster, demand, None, opening_replicas(cluster, demand)))
    points = [Point(t, o.gpu_hours, o.slo_attainment_pct) for t, o in outcomes.items()]
    return frontier(points), outcomes


@dataclass(frozen=True)
class ColdStart:
    """The default predictive policy against tuned reactive at one cold start."""

    cold_start_seconds: float
    reactive_only: bool  # the policy backed off (cold start below the break-even)
    policy: Outcome
    frontier: Frontier
    comparison: Comparison


def cold_start_sweep(scenario: Scenario, data: Data, upper: np.ndarray, cold_starts: Sequence[float],
                     reactive_targets: Sequence[float], progress=print) -> tuple[dict[float, ColdStart], dict[float, str]]:
    """Replay the default policy (forecasts `upper`) and the reactive frontier at every cold start.

    Returns the evaluated rows and the skipped cold starts with the reason: one whose lead time the
    forecast horizon cannot cover is not evaluated, and the report must say so rather than drop it
    (a break-even "at every longer cold start" would otherwise speak of cold starts never replayed).
    """
    rows, skipped = {}, {}
    for seconds in cold_starts:
        try:
            changed = replace(scenario, cluster=replace(scenario.cluster, cold_start_seconds=seconds))
        except ScenarioError as error:
            progress(f"cold start {seconds:g} s skipped: {error}")
            skipped[seconds] = str(error)
            continue
        progress(f"cold start {seconds:g} s: reactive frontier and the default policy")
        front, _ = reactive_frontier(changed, data, reactive_targets)
        replays = closed_loop(changed, data, {"default": upper}, changed.cluster.target_utilisation, include_static=False)
        outcome = replays["default floor"].outcome
        rows[seconds] = ColdStart(cold_start_seconds=seconds, reactive_only=changed.policy(changed.cluster.target_utilisation).reactive_only,
                                  policy=outcome, frontier=front,
                                  comparison=compare(front, outcome.gpu_hours, outcome.slo_attainment_pct))
    return rows, skipped


def break_even_cold_start(rows: dict[float, ColdStart]) -> float | None:
    """The shortest evaluated cold start (`rows`: skipped ones are absent) from which the floor (not
    backed off) misses fewer requests than tuned reactive at equal GPU-hours at every longer evaluated
    cold start; None if it never does."""
    beating = [(s, r.comparison.miss_ratio is not None and r.comparison.miss_ratio < 1 and not r.reactive_only)
               for s, r in sorted(rows.items())]
    answer = None
    for seconds, beats in reversed(beating):
        if not beats:
            break
        answer = seconds
    return answer


@dataclass(frozen=True)
class Replay:
    outcome: Outcome
    trajectory: Trajectory


def closed_loop(scenario: Scenario, data: Data, uppers: dict[str, np.ndarray], target: float,
                include_static: bool = True) -> dict[str, Replay]:
    """Replay the test period under every policy at one target utilisation.

    `uppers` maps a forecaster name to its upper-quantile test forecasts (buckets x horizon).
    """
    demand = data.steps.test.to_numpy()
    cluster = replace(scenario.cluster, target_utilisation=target)
    opening = opening_replicas(cluster, demand)

    def run(config: ClusterConfig, floor: np.ndarray | None = None, initial: int | None = None) -> Replay:
        trajectory = simulate(config, demand, floor, opening if initial is None else initial)
        return Replay(score(config, demand, trajectory), trajectory)

    replays: dict[str, Replay] = {}
    if include_static:
        fixed = static_peak(scenario, data, target)
        replays[STATIC_PEAK] = run(replace(cluster, min_replicas=fixed, max_replicas=fixed), initial=fixed)
    replays["reactive"] = run(cluster)
    for name, upper in uppers.items():
        windows, made = lead_forecasts(scenario, upper, len(demand))
        replays[f"{name} floor"] = run(cluster, floors(scenario, FLOOR_UTILISATION, demand, windows, made))
    replays["oracle"] = run(cluster, floors(scenario, FLOOR_UTILISATION, demand, oracle_windows(scenario, demand), None))
    return replays


@dataclass(frozen=True)
class Backtest:
    accuracy: dict[str, dict[int, Accuracy]]  # forecaster -> horizon (buckets) -> scores (calibrated upper)
    raw_under_rate: dict[str, dict[int, float]]  # the same forecasts' under-prediction % before calibration
    replays: dict[str, Replay]  # policy -> replay at the scenario's target utilisation
    sweep: dict[float, dict[str, Outcome]]  # target utilisation -> policy -> outcome
    frontier: Frontier  # tuned reactive: Pareto points of reactive over reactive_targets
    reactive_sweep: dict[float, Outcome]  # reactive target -> outcome
    comparisons: dict[str, Comparison]  # policy (scenario target) -> against the frontier
    default_policy: str  # the predictive policy the cold-start sweep replays
    cold_starts: dict[float, ColdStart]  # cold start (s) -> default policy vs frontier
    skipped_cold_starts: dict[float, str]  # cold start (s) -> why it was not evaluated
    break_even_cold_start_seconds: float | None  # measured from cold_starts

    @property
    def break_even_is_shortest_swept(self) -> bool:
        """The break-even is the shortest evaluated cold start: the floor may pay off below it too,
        so it is an upper bound ("20 s or less"), not a measured crossing."""
        even = self.break_even_cold_start_seconds
        return even is not None and even == min(self.cold_starts)


def backtest(scenario: Scenario, data: Data, forecasters: Sequence[Forecaster], targets: Sequence[float],
             reactive_targets: Sequence[float] = (0.8,), cold_starts: Sequence[float] = (),
             progress=print) -> Backtest:
    """Score fitted forecasters, then replay every policy at the scenario target and the sweep,
    reactive over `reactive_targets` (its frontier), and the default policy (the last forecaster's
    floor) against that frontier at each of `cold_starts` seconds."""
    scores, uppers, raw = {}, {}, {}
    for forecaster in forecasters:
        uncalibrated = test_forecasts(forecaster, data)
        raw[forecaster.name] = {h: a.under_rate for h, a in
                                forecast_accuracy(scenario, data, uncalibrated, forecaster).items()}
        forecasts = calibrated(scenario, data, uncalibrated, forecaster)
        scores[forecaster.name] = forecast_accuracy(scenario, data, forecasts, forecaster)
        uppers[forecaster.name] = forecasts[:, :, forecaster.quantile_index(scenario.quantile)]
    target = scenario.cluster.target_utilisation
    progress(f"closed loop at target {target:.2f}")
    replays = closed_loop(scenario, data, uppers, target)
    sweep = {}
    for swept in targets:
        if swept == target:  # replayed just above (the replay is deterministic): not again
            sweep[swept] = {name: replay.outcome for name, replay in replays.items() if name != STATIC_PEAK}
            continue
        progress(f"closed loop at target {swept:.2f}")
        sweep[swept] = {name: replay.outcome for name, replay in closed_loop(scenario, data, uppers, swept, False).items()}
    progress(f"reactive frontier over {len(reactive_targets)} targets")
    front, reactive_sweep = reactive_frontier(scenario, data, reactive_targets)
    comparisons = {name: compare(front, r.outcome.gpu_hours, r.outcome.slo_attainment_pct) for name, r in replays.items()}
    default = forecasters[-1].name
    rows, skipped = cold_start_sweep(scenario, data, uppers[default], cold_starts, reactive_targets, progress)
    return Backtest(accuracy=scores, raw_under_rate=raw, replays=replays, sweep=sweep, frontier=front, reactive_sweep=reactive_sweep,
                    comparisons=comparisons, default_policy=f"{default} floor", cold_starts=rows,
                    skipped_cold_starts=skipped, break_even_cold_start_seconds=break_even_cold_start(rows))
