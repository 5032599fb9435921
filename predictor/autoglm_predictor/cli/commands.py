"""Subcommands of `autoglm` that belong to this package (see autoglm_operator.cli.main).

Heavy imports (pandas, TensorFlow, matplotlib) happen inside the command functions so that
`autoglm --help` and the operator's subcommands stay fast.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autoglm_predictor import traces as sample_traces
from autoglm_predictor.backtest import scenarios
from autoglm_predictor.forecast.calibration import DEFAULT_RATE

# The NASA trace shipped with the package, so the default works from any directory and any install.
DEFAULT_TRACE = str(sample_traces.NASA_PER_MINUTE)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this package's subcommands; each sets `func(args) -> int`."""
    train = subparsers.add_parser("train", help="fit the LSTM forecaster on a trace and save it (.keras + .json)",
                                  formatter_class=_ShowDefaults)
    _data_arguments(train, ("trace",))  # no --scenario: the trace defaults
    _scenario_argument(train, "--step", "the step whose peak a bucket holds (as the backtest's --step)", shown=("trace",))
    _model_arguments(train, ("trace",))
    train.add_argument("--out", required=True, help="model path ending in .keras (a .json sidecar is written beside it)")
    train.set_defaults(func=train_command)

    backtest = subparsers.add_parser(
        "backtest", help="forecast accuracy per horizon and closed-loop replay of every scaling policy",
        formatter_class=_ShowDefaults)
    _data_arguments(backtest, scenarios.SCENARIOS)
    _model_arguments(backtest, scenarios.SCENARIOS)
    backtest.add_argument("--scenario", choices=scenarios.SCENARIOS, default="trace",
                          help="trace: --trace on the NASA fleet; staged-ramp: llm-d's staged ramp (--ramp-*), which "
                               "changes the defaults marked 'staged-ramp:'")
    backtest.add_argument("--ramp-rates", default="2,4,6,8,10,4,1", help="staged-ramp: req/s per stage")
    backtest.add_argument("--ramp-stage", default="6min", help="staged-ramp: length of a stage")
    backtest.add_argument("--ramp-idle", type=float, default=1.0, help="staged-ramp: req/s outside the daily ramp")
    backtest.add_argument("--ramp-days", type=int, default=7, help="staged-ramp: days generated; the last one is tested")
    _scenario_argument(backtest, "--step", "decision step of the simulated control loop")
    _scenario_argument(backtest, "--report-horizons", "horizons to score (comma-separated)")
    _scenario_argument(backtest, "--capacity", "requests one replica serves within the base TTFT, e.g. 15/min or 2/s")
    backtest.add_argument("--target", type=float, default=0.8,
                          help="reactive target utilisation (the floor covers its forecast at utilisation 1)")
    backtest.add_argument("--sweep", default="0.6,0.7,0.75,0.8,0.9",
                          help="reactive target utilisations for the trade-off curve (above the same floor)")
    backtest.add_argument("--reactive-targets", default="0.1,0.2,0.3,0.4,0.5,0.55,0.6,0.65,0.7,0.75,0.8,0.85,0.9,0.95",
                          help="reactive target utilisations whose Pareto points form the tuned reactive frontier")
    backtest.add_argument("--cold-starts", default="20s,100s,300s",
                          help="cold starts of the sweep against the frontier (the --cold-start is added; empty: none)")
    backtest.add_argument("--break-even-cold-start", default="0s",
                          help="below this cold start the policy keeps no floor (reactive scaling alone)")
    _scenario_argument(backtest, "--cold-start", "time for a new pod to become Ready")
    backtest.add_argument("--calibration-rate", type=float, default=DEFAULT_RATE,
                          help="online quantile tracking of the upper forecast: log-factor step per miss, in units of "
                               "the training series' mean one-bucket change over its mean level (0: off)")
    backtest.add_argument("--ttft-slo", default="3s", help="per-request TTFT SLO of the fluid queue")
    backtest.add_argument("--base-ttft", default="0.5s", help="the engine's TTFT without queueing")
    backtest.add_argument("--sync-period", default="15s", help="HPA sync period")
    backtest.add_argument("--scale-up-window", default="0s", help="HPA scale-up stabilisation window")
    backtest.add_argument("--scale-down-window", default="5min", help="HPA scale-down stabilisation window")
    _scenario_argument(backtest, "--min-replicas", "reactive minimum replicas", int)
    _scenario_argument(backtest, "--max-replicas", "maximum replicas", int)
    backtest.add_argument("--p99-fraction", type=float, default=None,
                          help="rescale the trace so its p99 is this fraction of max replicas x capacity "
                               "(default: off, the trace as recorded)")
    backtest.add_argument("--pipeline-lag", type=int, default=1, help="decision steps before a forecast is usable")
    backtest.add_argument("--model", default=None, help="load this trained .keras model instead of training one")
    backtest.add_argument("--save-model", default=None, help="save the LSTM trained here (.keras)")
    backtest.add_argument("--no-lstm", action="store_true", help="baselines only (fast)")
    backtest.add_argument("--report", default="out/backtest", help="directory for report.md and the PNG plots")
    backtest.add_argument("--json", default=None, help="also write the results as JSON to this path")
    backtest.set_defaults(func=backtest_command)

    from autoglm_predictor.pipeline import connections

    collector = subparsers.add_parser("collector", help="publish per-deployment load from Prometheus to Kafka every step",
                                      formatter_class=_ShowDefaults)
    connections.add_arguments(collector)
    collector.add_argument("--metrics-port", type=int, default=9100, help="port of this process's /metrics (0: off)")
    collector.add_argument("--step-seconds", type=int, default=15, help="sampling step (records are aligned to it)")
    collector.add_argument("--rate-window", default="1m", help="PromQL rate() window for requests/s and TTFT")
    collector.add_argument("--backfill-seconds", type=int, default=300, help="re-published on start (duplicates are harmless)")
    collector.add_argument("--refresh-seconds", type=float, default=15.0, help="how often deployments are re-listed")
    collector.set_defaults(func=collector_command)

    predictor = subparsers.add_parser("predictor", help="consume load records, forecast, write status.forecast floors",
                                      formatter_class=_ShowDefaults)
    connections.add_arguments(predictor)
    predictor.add_argument("--metrics-port", type=int, default=9101, help="port of this process's /metrics (0: off)")
    predictor.add_argument("--group", default="autoglm-predictor", help="Kafka consumer group (replicas share it)")
    predictor.add_argument("--step-seconds", type=int, default=15, help="the collector's step (part of the lead time)")
    predictor.add_argument("--bucket-seconds", type=int, default=60, help="forecast aggregation (peak load per bucket)")
    predictor.add_argument("--season-seconds", type=int, default=86400, help="length of the demand cycle")
    predictor.add_argument("--decision-seconds", type=float, default=15.0, help="decision interval per deployment")
    predictor.add_argument("--heartbeat-seconds", type=float, default=60.0, help="rewrite an unchanged floor this often")
    predictor.add_argument("--stale-after-seconds", type=float, default=180.0,
                           help="no sample for this long: decay the floor to the reactive minimum")
    predictor.add_argument("--history-seconds", type=int, default=8 * 86400, help="history kept and replayed on start")
    predictor.add_argument("--retrain-seconds", type=float, default=600.0, help="LSTM re-training interval (fallbacks refit on every new bucket)")
    predictor.add_argument("--no-lstm", action="store_true", help="fallback forecasters only (no TensorFlow)")
    predictor.add_argument("--break-even-cold-start", type=float, default=0.0,
                           help="seconds: deployments whose pods start faster get no floor (reactive scaling alone; "
                                "the backtest's cold-start sweep measures it)")
    predictor.add_argument("--calibration-rate", type=float, default=DEFAULT_RATE,
                           help="online quantile tracking of the upper forecast, as the backtest's --calibration-rate (0: off)")
    predictor.set_defaults(func=predictor_command)


def _data_arguments(parser: argparse.ArgumentParser, shown: tuple[str, ...]) -> None:
    """The trace and its split; `shown`: the scenarios whose defaults --help lists."""
    parser.add_argument("--trace", default=DEFAULT_TRACE,
                        help="CSV or .csv.gz with timestamp and requests (or value) columns (default: the shipped NASA trace)")
    parser.add_argument("--column", default=None, help="value column (default: requests, else value)")
    parser.add_argument("--train-start", default=None, help="first training timestamp (default: trace start)")
    parser.add_argument("--test-start", default=None, help="first test timestamp (default: after 70%% of the trace)")
    parser.add_argument("--test-end", default=None, help="end of the test period (exclusive; default: trace end)")
    _scenario_argument(parser, "--bucket", "forecast aggregation: a bucket's load is its busiest --step's requests "
                       "times the steps per bucket (docs/forecasting.md)", shown=shown)


def _model_arguments(parser: argparse.ArgumentParser, shown: tuple[str, ...]) -> None:
    """The forecaster's; `shown`: the scenarios whose defaults --help lists."""
    _scenario_argument(parser, "--horizon", "how far the forecast reaches (must cover the lead time)", shown=shown)
    parser.add_argument("--quantile", type=float, default=0.95,
                        help="upper quantile of the bucket forecast that the scaling floor covers")
    _scenario_argument(parser, "--window", "LSTM input window", shown=shown)
    parser.add_argument("--units", type=int, default=64, help="LSTM units")
    parser.add_argument("--epochs", type=int, default=40, help="maximum epochs (early stopping on the last 20%%)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the LSTM's weights and batches")
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads")


class _ShowDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` shows every default, except where the help text already says it (scenario-dependent
    ones, the shipped trace) or there is none (None, an off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if "default:" in (action.help or "") or action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _scenario_argument(parser: argparse.ArgumentParser, option: str, text: str, kind=str,
                       shown: tuple[str, ...] = scenarios.SCENARIOS) -> None:
    """An option whose default depends on --scenario: absent from the namespace until
    _scenario_defaults fills it. --help lists the default of each scenario in `shown`, without the
    scenario's name when it is the only one (a command without --scenario uses the trace's)."""
    name = option.lstrip("-").replace("-", "_")
    if len(shown) == 1:
        defaults = str(scenarios.DEFAULTS[shown[0]][name])
    else:
        defaults = "; ".join(f"{scenario}: {scenarios.DEFAULTS[scenario][name]}" for scenario in shown)
    parser.add_argument(option, type=kind, default=argparse.SUPPRESS, help=f"{text} (default: {defaults})")


def _scenario_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options the command line left out from the chosen scenario's defaults."""
    preset = scenarios.DEFAULTS[getattr(args, "scenario", "trace")]
    for name, value in preset.items():
        if not hasattr(args, name):
            setattr(args, name, int(value) if name.endswith("replicas") else value)
    return args


def _duration(text: str, option: str, zero: bool = False):
    """A command-line duration (5min, 30s, 1h) as a Timedelta; ScenarioError naming `option` when it
    has no unit (pandas would read "15" as 15 ns) or is negative, or zero unless `zero`."""
    import pandas as pd

    from autoglm_predictor.backtest.evaluation import ScenarioError

    try:
        value = pd.Timedelta(text) if text.strip() and not text.strip()[-1].isdigit() else None
    except ValueError:
        value = None
    if value is None or value < pd.Timedelta(0) or (value == pd.Timedelta(0) and not zero):
        raise ScenarioError(f"{option} {text!r} must be a {'non-negative' if zero else 'positive'} duration "
                            "with a unit, such as 30s, 5min or 1h")
    return value


def _utilisations(text: str, option: str) -> list[float]:
    """Comma-separated target utilisations in (0, 1] (empty items skipped); ScenarioError naming `option`."""
    from autoglm_predictor.backtest.evaluation import ScenarioError

    try:
        values = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        values = [float("nan")]
    if not all(0 < value <= 1 for value in values):
        raise ScenarioError(f"{option} must be comma-separated target utilisations in (0, 1], got {text!r}")
    return values


def _buckets(duration: str, option: str, bucket) -> int:
    """How many `bucket`s `duration` (the value of `option`) spans; it must be a whole number >= 1."""
    from autoglm_predictor.backtest.evaluation import ScenarioError
    from autoglm_predictor.forecast.series import span

    count = _duration(duration, option) / bucket
    if count != int(count):
        raise ScenarioError(f"{option} {duration} is not a whole number of {span(bucket)} buckets (--bucket)")
    return int(count)


def _lstm(args: argparse.Namespace, bucket, history_buckets: int):
    from autoglm_predictor.backtest import evaluation
    from autoglm_predictor.forecast.lstm import MIN_WINDOWS, LSTMForecaster, LSTMSettings
    from autoglm_predictor.forecast.series import span

    seasons = tuple(evaluation.seasons(bucket, history_buckets).values())
    settings = LSTMSettings(horizon=_buckets(args.horizon, "--horizon", bucket), quantiles=tuple(sorted({0.5, args.quantile})),
                            window=_buckets(args.window, "--window", bucket), seasons=seasons, units=args.units,
                            epochs=args.epochs, seed=args.seed, threads=args.threads)
    needed = settings.window + settings.horizon - 1 + MIN_WINDOWS
    if history_buckets < needed:
        raise evaluation.ScenarioError(
            f"the training period holds {history_buckets} buckets of {span(bucket)}; the LSTM's --window {args.window} "
            f"and --horizon {args.horizon} need at least {needed}: give a longer trace or a later --test-start, or a "
            "shorter --window, --horizon or --bucket")
    return LSTMForecaster(settings, progress=lambda line: print(f"  {line}", file=sys.stderr, flush=True))


def _reporting_errors(command):
    """Turn invalid input (every package error is a ValueError) into a message and exit code 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(_scenario_defaults(args))
        except ValueError as error:
            print(f"autoglm {args.command}: error: {error}", file=sys.stderr)
            return 2

    return run


@_reporting_errors
def train_command(args: argparse.Namespace) -> int:
    import time

    from autoglm_predictor.backtest.evaluation import ScenarioError, bucket_loads, steps_per_bucket
    from autoglm_predictor.forecast.series import load_trace, split

    if not args.out.endswith(".keras"):
        raise ScenarioError(f"--out must end in .keras, got {args.out!r}")
    step, bucket = _duration(args.step, "--step"), _duration(args.bucket, "--bucket")
    steps_per_bucket(step, bucket)  # refused before the trace is read
    buckets = split(bucket_loads(load_trace(args.trace, args.column), step, bucket), args.test_start, args.test_end,
                    args.train_start)
    forecaster = _lstm(args, bucket, len(buckets.train))
    print(f"training on {len(buckets.train)} buckets of {args.bucket} "
          f"({buckets.train.index[0]} .. {buckets.train.index[-1]})", file=sys.stderr)
    started = time.perf_counter()
    forecaster.fit(buckets.train)
    path = forecaster.save(args.out)
    print(f"trained in {time.perf_counter() - started:.1f} s; saved {path} and {path.with_suffix('.json')}")
    return 0


def _capacity_per_step(capacity: str, step) -> float:
    """`capacity` (requests one replica serves, as a rate: 15/min, 2/s, 45/30s) in requests per
    decision `step`; ScenarioError naming --capacity otherwise. A bare number is refused: read per
    step its meaning would change with --step, and any other reading is a unit the user did not write."""
    from autoglm_predictor.backtest.evaluation import ScenarioError

    amount, _, per = capacity.partition("/")
    try:
        value = float(amount)
        unit = _duration("1" + per if per and not per[0].isdigit() else per, "--capacity")
    except ValueError:
        raise ScenarioError(f"--capacity {capacity!r} must be a rate with a unit, such as 15/min or 2/s "
                            "(requests one replica serves)") from None
    if not 0 < value < float("inf"):
        raise ScenarioError(f"capacity must be a positive number per unit of time, got {capacity!r}")
    return value * (step / unit)


def _check_model_options(args: argparse.Namespace) -> None:
    """Refuse model paths that would be silently ignored or overwritten (ScenarioError naming both
    options): --model and --save-model need the LSTM, --save-model needs a trained one (not a
    --model), and the model's settings sidecar (the .json beside the .keras, LSTMForecaster.save)
    must not be the --json path, or the backtest JSON replaces the settings and the model no longer loads."""
    from autoglm_predictor.backtest.evaluation import ScenarioError

    if args.save_model and not args.save_model.endswith(".keras"):
        raise ScenarioError(f"--save-model must end in .keras, got {args.save_model!r}")
    for option, path in (("--model", args.model), ("--save-model", args.save_model)):
        if path and args.no_lstm:
            raise ScenarioError(f"{option} is ignored with --no-lstm (no LSTM is trained or loaded): drop one of them")
        if path and args.json and Path(path).with_suffix(".json").resolve() == Path(args.json).resolve():
            raise ScenarioError(f"--json {args.json} is the settings file of {option} {path}: the backtest JSON "
                                "would overwrite it; give --json another path")
    if args.model and args.save_model:
        raise ScenarioError("--save-model saves the LSTM trained here; with --model none is trained: drop one of them")


@_reporting_errors
def backtest_command(args: argparse.Namespace) -> int:
    from autoglm_predictor.backtest import evaluation
    from autoglm_predictor.backtest import report
    from autoglm_predictor.forecast.series import load_trace
    from autoglm_predictor.forecast.simulator import ClusterConfig

    _check_model_options(args)
    if not 0 <= args.min_replicas <= args.max_replicas or args.max_replicas < 1:
        raise evaluation.ScenarioError(f"need 0 <= --min-replicas <= --max-replicas and --max-replicas >= 1, got "
                                       f"{args.min_replicas} and {args.max_replicas}")
    if not 0 < args.target <= 1:
        raise evaluation.ScenarioError(f"--target must be a target utilisation in (0, 1], got {args.target}")
    step, bucket = _duration(args.step, "--step"), _duration(args.bucket, "--bucket")
    cluster = ClusterConfig(
        step_seconds=step.total_seconds(), capacity_per_replica=_capacity_per_step(args.capacity, step),
        max_replicas=args.max_replicas, min_replicas=args.min_replicas,
        cold_start_seconds=_duration(args.cold_start, "--cold-start", zero=True).total_seconds(),
        target_utilisation=args.target,
        sync_period_seconds=_duration(args.sync_period, "--sync-period").total_seconds(),
        scale_up_window_seconds=_duration(args.scale_up_window, "--scale-up-window", zero=True).total_seconds(),
        scale_down_window_seconds=_duration(args.scale_down_window, "--scale-down-window", zero=True).total_seconds(),
        ttft_slo_seconds=_duration(args.ttft_slo, "--ttft-slo").total_seconds(),
        base_ttft_seconds=_duration(args.base_ttft, "--base-ttft", zero=True).total_seconds())
    scenario = evaluation.Scenario(
        step=step, bucket=bucket, horizon=_buckets(args.horizon, "--horizon", bucket),
        report_horizons=tuple(_buckets(h, "--report-horizons", bucket) for h in args.report_horizons.split(",")),
        quantile=args.quantile, cluster=cluster, pipeline_lag_steps=args.pipeline_lag,
        break_even_cold_start_seconds=_duration(args.break_even_cold_start, "--break-even-cold-start",
                                                zero=True).total_seconds(),
        calibration_rate=args.calibration_rate)
    trace, test_start, test_end = args.trace, args.test_start, args.test_end
    if args.scenario == "staged-ramp":
        ramp = scenarios.Ramp(rates=scenarios.parse_rates(args.ramp_rates),
                              stage_seconds=_duration(args.ramp_stage, "--ramp-stage").total_seconds(),
                              idle_rate=args.ramp_idle, days=args.ramp_days, step_seconds=step.total_seconds())
        raw = scenarios.staged_ramp(ramp)
        trace = f"staged-ramp: {scenarios.describe(ramp)}"
        window = ramp.test_window()
        test_start, test_end = test_start or window[0], test_end or window[1]
    else:
        raw = load_trace(args.trace, args.column)
    data = evaluation.prepare(raw, scenario, test_start, test_end, args.train_start, args.p99_fraction)
    print(f"train {data.buckets.train.index[0]} .. {data.buckets.train.index[-1]}, "
          f"test {data.buckets.test.index[0]} .. {data.buckets.test.index[-1]}", file=sys.stderr)
    forecasters = evaluation.baselines(scenario, data)
    evaluation.fit(forecasters, data)
    costs: dict[str, object] = {}
    if not args.no_lstm:
        costs = _lstm_costs(args, bucket, data, forecasters)
    targets = _utilisations(args.sweep, "--sweep")
    reactive_targets = _utilisations(args.reactive_targets, "--reactive-targets")
    cold_starts = sorted({_duration(c, "--cold-starts", zero=True).total_seconds() for c in args.cold_starts.split(",") if c.strip()}
                         | ({cluster.cold_start_seconds} if args.cold_starts else set()))
    result = evaluation.backtest(scenario, data, forecasters, targets, reactive_targets, cold_starts,
                                 progress=lambda line: print(line, file=sys.stderr, flush=True))
    settings = {"trace": trace, "step": args.step, "bucket": args.bucket, "horizon": args.horizon,
                "quantile": args.quantile, "calibration rate": args.calibration_rate, "capacity": args.capacity,
                "capacity per replica per step": round(cluster.capacity_per_replica, 4),
                "replicas": f"{args.min_replicas}..{args.max_replicas}", "target": args.target,
                "cold start": args.cold_start, "break-even cold start": args.break_even_cold_start,
                "TTFT SLO / base TTFT": f"{args.ttft_slo} / {args.base_ttft}",
                "sync period": args.sync_period,
                "scale-up / scale-down windows": f"{args.scale_up_window} / {args.scale_down_window}",
                "pipeline lag (steps)": args.pipeline_lag, "p99 fraction": args.p99_fraction,
                "train": f"{data.buckets.train.index[0]} .. {data.buckets.train.index[-1]}",
                "test": f"{data.buckets.test.index[0]} .. {data.buckets.test.index[-1]}"}
    directory = Path(args.report)
    plots = report.plot(scenario, data, result, directory)
    text = report.markdown("Backtest", settings, scenario, result, costs, plots)
    (directory / "report.md").write_text(text)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(report.to_json(settings, scenario, result, costs))
    written = [directory / "report.md", *plots] + ([Path(args.json)] if args.json else [])
    print("wrote " + ", ".join(str(path) for path in written), file=sys.stderr)
    return 0


def _lstm_costs(args: argparse.Namespace, bucket, data, forecasters: list) -> dict[str, object]:
    """Train (or load) the LSTM, append it to `forecasters`, and measure what it costs."""
    import os
    import statistics
    import tempfile
    import time

    import numpy as np

    from autoglm_predictor.forecast.lstm import LSTMForecaster

    costs: dict[str, object] = {"load average before (1/5/15 min)": " / ".join(f"{x:.1f}" for x in os.getloadavg())}
    started = time.perf_counter()
    if args.model:
        lstm = LSTMForecaster.load(args.model)
        costs["LSTM load time (s)"] = round(time.perf_counter() - started, 2)
    else:
        lstm = _lstm(args, bucket, len(data.buckets.train))
        print(f"training the LSTM on {len(data.buckets.train)} buckets", file=sys.stderr)
        lstm.fit(data.buckets.train)
        costs["LSTM training time (s)"] = round(time.perf_counter() - started, 1)
        costs["LSTM epochs run"] = len(lstm.scaler.history)
        costs["load average after training"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
        if args.save_model:
            lstm.save(args.save_model)
    forecasters.append(lstm)
    history = data.all_buckets
    recent = history.iloc[-(lstm.settings.window + max(lstm.settings.seasons, default=0)):]

    def median_seconds(call, repeats: int) -> float:
        call()  # warm-up: the first call traces the graph
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            call()
            timings.append(time.perf_counter() - started)
        return statistics.median(timings)

    # One deployment: just the history the model reads. A batch: 500 origins in one call.
    single = median_seconds(lambda: lstm.predict(recent, [len(recent)]), 20)
    origins = np.resize(np.arange(max(1, len(history) - 499), len(history) + 1), 500)  # short traces repeat
    batch = median_seconds(lambda: lstm.predict(history, origins), 5)
    costs["predict one deployment (ms, median of 20)"] = round(1000 * single, 1)
    costs["predict batch of 500 (ms, median of 5)"] = round(1000 * batch, 1)
    with tempfile.TemporaryDirectory() as directory:
        path = lstm.save(Path(directory) / "model.keras")
        costs["model size (KB, .keras + .json)"] = round((path.stat().st_size + path.with_suffix(".json").stat().st_size) / 1024, 1)
    return costs


def _serve(args: argparse.Namespace, service_factory) -> int:
    """Run a pipeline service until SIGTERM/SIGINT; settings errors exit 2 with one line."""
    import logging
    import signal
    import threading

    from autoglm_predictor.pipeline import connections
    from autoglm_predictor.pipeline.metrics import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        prometheus, kafka = connections.from_environment(args)
    except connections.SettingsError as error:
        print(f"autoglm {args.command}: error: {error}", file=sys.stderr)
        return 2
    service, registry = service_factory(prometheus, kafka, connections.kubernetes_api())
    serve(registry, args.metrics_port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    service.run(stop)
    return 0


def collector_command(args: argparse.Namespace) -> int:
    from autoglm_predictor.pipeline.collector import Collector, CollectorSettings
    from autoglm_predictor.pipeline.metrics import CollectorMetrics

    def build(prometheus, kafka, kube_api):
        metrics = CollectorMetrics()
        settings = CollectorSettings(step_seconds=args.step_seconds, rate_window=args.rate_window,
                                     backfill_seconds=args.backfill_seconds, refresh_seconds=args.refresh_seconds)
        return Collector(settings, prometheus, kafka, kube_api, metrics), metrics.registry

    return _serve(args, build)


def predictor_command(args: argparse.Namespace) -> int:
    from autoglm_predictor.pipeline.predictor import Predictor, PredictorSettings
    from autoglm_predictor.forecast.models import ModelSettings
    from autoglm_predictor.pipeline.metrics import PredictorMetrics

    def build(prometheus, kafka, kube_api):
        metrics = PredictorMetrics()
        models = ModelSettings(bucket_seconds=args.bucket_seconds, season_seconds=args.season_seconds,
                               retrain_seconds=args.retrain_seconds, lstm=not args.no_lstm)
        settings = PredictorSettings(group=args.group, collector_step_seconds=args.step_seconds,
                                     decision_seconds=args.decision_seconds, heartbeat_seconds=args.heartbeat_seconds,
                                     stale_after_seconds=args.stale_after_seconds,
                                     history_seconds=args.history_seconds, models=models,
                                     break_even_cold_start_seconds=args.break_even_cold_start,
                                     calibration_rate=args.calibration_rate)
        return Predictor(settings, kafka, kube_api, metrics), metrics.registry

    return _serve(args, build)
