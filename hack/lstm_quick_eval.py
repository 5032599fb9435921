"""Train the LSTM on a trace's training part and print its median-forecast MAE beside the linear AR's.

A 1-3 minute loop for LSTM work instead of a 10-minute `autoglm backtest`: the backtest's own
bucket series (backtest.evaluation.prepare) and the NASA default scenario's split, bucket, horizon,
window, seasons and CLI defaults (64 units, 40 epochs, quantiles 0.5 and 0.95), with any
LSTMSettings field overridden from JSON. Two parts:
- "val": the last `validation_fraction` of the training period, the part early stopping watches
  (so slightly optimistic for the LSTM; the base AR is fitted on it too). Choose settings here.
- "test": from --test-start on, the backtest's test period; reported for the numbers you publish,
  never to choose settings by (issue 16: acceptance is measured on traces we do not have).

    .venv/bin/python hack/lstm_quick_eval.py '{"seed": 1, "threads": 1}'

Issue 16's "more series" experiments add training series to the network, never to the AR it is
compared with: --phases 5 also trains on the trace bucketed at the 4 other whole-step phase
offsets (minute 1..4 of each 5-minute bucket: the same process, every target a real bucket, the
trace's AR base and scale); --extra-buckets 4min,6min also on the trace at other bucket sizes and
--extra-traces on other shipped traces (a global model: each extra series its own linear-AR base,
p99 scale and seasons). Extra windows from the trace itself end before the validation part, which
early stopping watches on the trace's own buckets only (--validate-phases: on every phase's).
Measured: docs/benchmarks.md, "Attempts at 0.9x the linear AR's MAE".

Prints one JSON line: training seconds, the load average at the start, epochs, the base chosen and
per part and report horizon "LSTM MAE / linear-AR MAE = ratio".
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from autoglm_predictor.backtest.evaluation import Scenario, prepare, seasons as usable_seasons
from autoglm_predictor.backtest.scenarios import Ramp, staged_ramp
from autoglm_predictor.forecast.forecasters import LinearAR, gather, observed
from autoglm_predictor.forecast.lstm import BASE_LAGS, LSTMForecaster, LSTMSettings
from autoglm_predictor.forecast.series import load_trace, resample
from autoglm_predictor.forecast.simulator import ClusterConfig
from autoglm_predictor.traces import AZURE_CODE_PER_SECOND, AZURE_CONV_PER_SECOND

NASA = "predictor/autoglm_predictor/traces/nasa_http_1995_per_minute.csv.gz"
# --extra-traces names -> (per-step requests, step, bucket): 10-second buckets like the Azure backtests,
# the staged ramp at its scenario's 15 s steps and 1-minute buckets (its last day left out: its test).
EXTRA_TRACES = {"azure-code": (lambda: load_trace(AZURE_CODE_PER_SECOND), "1s", "10s"),
                "azure-conv": (lambda: load_trace(AZURE_CONV_PER_SECOND), "1s", "10s"),
                "ramp": (lambda: staged_ramp(Ramp()).iloc[:-int(86400 / 15)], "15s", "1min")}


@dataclass(frozen=True)
class Extra:
    """One more training series: its buckets, whether it gets its own AR base and scale, its seasons."""

    buckets: pd.Series
    own_base: bool
    seasons: tuple[int, ...]
    same_trace: bool  # the trace itself: windows reaching into the validation part are left out


def peak_buckets(steps: pd.Series, bucket: pd.Timedelta, phase: pd.Timedelta) -> pd.Series:
    """prepare()'s bucket load (peak step x steps per bucket) with buckets starting `phase` later."""
    step = steps.index[1] - steps.index[0]
    shifted = steps.set_axis(steps.index - phase)
    out = resample(shifted, bucket, how="max") * round(bucket / step)
    return out.set_axis(out.index + phase)


class MultiSeriesLSTM(LSTMForecaster):
    """The LSTM trained on its history plus `extras`; forecasting is unchanged."""

    def fit_many(self, history: pd.Series, extras: list[Extra], validate_phases: bool = False) -> list[int]:
        """fit() with the extra series' windows added to the training part; returns the training
        windows per series (the history's first). `validate_phases`: early stopping also watches the
        phase-shifted series' windows in the validation part.

        With no extras it trains exactly like fit() (same windows, split and seed)."""
        s = self.settings
        self._prepare(history)
        origins = self._complete(history, self._origins(len(history)))
        sequence, aux, target = self._samples(history, origins)
        cut = int(len(target) * (1 - s.validation_fraction))
        validation_start = history.index[origins[cut]]
        parts = [(sequence[:cut], aux[:cut], target[:cut])]
        checks = [(sequence[cut:], aux[cut:], target[cut:])]
        own = (self.settings, self.scaler.scale, self.scaler.step_seconds, self._base)
        for extra in extras:
            series = observed(extra.buckets)
            if extra.own_base:
                p99 = float(np.nanpercentile(series.to_numpy(), 99))
                base = LinearAR(s.horizon, lags=BASE_LAGS, seasons=extra.seasons, quantiles=(0.5,))
                base.fit(series)
                self.scaler.scale, self._base = p99 if p99 > 0 else 1.0, base
            # A season the series is too short for looks further back than its start, so that input is
            # its last value (as _inputs does at a history's start): the network's inputs keep their width.
            missing = len(s.seasons) - len(extra.seasons)
            self.settings = dataclasses.replace(s, seasons=extra.seasons + (len(series) + s.horizon,) * missing)
            self.scaler.step_seconds = float((series.index[1] - series.index[0]).total_seconds())
            extra_origins = np.arange(max([s.window, *extra.seasons]), len(series) - s.horizon + 1)
            if extra.same_trace:  # no target inside the validation part
                ends = series.index[np.minimum(extra_origins + s.horizon, len(series) - 1)]
                if validate_phases and not extra.own_base:
                    checks.append(self._samples(series, extra_origins[series.index[extra_origins] >= validation_start]))
                extra_origins = extra_origins[ends <= validation_start]
            parts.append(self._samples(series, extra_origins))
            self.settings, self.scaler.scale, self.scaler.step_seconds, self._base = own
        self._model, self._inference = self._build(sequence.shape[-1], aux.shape[-1]), None
        self._compile(s.learning_rate)
        train = [np.concatenate(x) for x in zip(*parts)]
        validation = [np.concatenate(x) for x in zip(*checks)]
        self._train(train[:2], train[2], (validation[:2], validation[2]), s.epochs)
        return [len(part[2]) for part in parts]

    def _prepare(self, history: pd.Series) -> None:
        """fit()'s scaler and base (fit() for 0 epochs)."""
        settings = self.settings
        self.settings = dataclasses.replace(settings, epochs=0)
        self.fit(history)
        self.settings = settings
        self.scaler.history.clear()

    def _complete(self, history: pd.Series, origins: np.ndarray) -> np.ndarray:
        """The origins _samples keeps (no gap in inputs or targets), in order."""
        values = history.to_numpy(dtype=float)
        sequence, aux, base = self._inputs(values, history.index, origins, self.scaler.step_seconds)
        target = gather(values, origins[:, None] + np.arange(self.horizon))
        keep = np.isfinite(sequence).all(axis=(1, 2)) & np.isfinite(aux).all(axis=1) & np.isfinite(target).all(axis=1)
        return origins[keep]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="?", default="{}", help="LSTMSettings fields as JSON")
    parser.add_argument("--trace", default=NASA)
    parser.add_argument("--test-start", default="1995-08-15")
    parser.add_argument("--step", default="1min")
    parser.add_argument("--bucket", default="5min")
    parser.add_argument("--horizon", type=int, default=6, help="buckets")
    parser.add_argument("--window", type=int, default=36, help="buckets")
    parser.add_argument("--report", default="1,3,6", help="report horizons, buckets")
    parser.add_argument("--phases", type=int, default=1, help="bucket phase offsets to train on (step apart)")
    parser.add_argument("--validate-phases", action="store_true",
                        help="early stopping also watches the phase-shifted series' validation part")
    parser.add_argument("--extra-buckets", default="", help="other bucket sizes of the trace to train on")
    parser.add_argument("--extra-traces", default="", help=", ".join(EXTRA_TRACES))
    args = parser.parse_args()
    bucket, step = pd.Timedelta(args.bucket), pd.Timedelta(args.step)
    report = tuple(int(h) for h in args.report.split(","))
    # The cluster only matters to the backtest's replays; prepare() needs a valid scenario.
    scenario = Scenario(step=step, bucket=bucket, horizon=args.horizon, report_horizons=report, quantile=0.95,
                        cluster=ClusterConfig(step_seconds=step.total_seconds(), capacity_per_replica=1.0,
                                              max_replicas=1, cold_start_seconds=0.0))
    raw = load_trace(args.trace)
    data = prepare(raw, scenario, args.test_start, None, None).buckets
    train = data.train
    values = pd.concat([data.train, data.test])
    seasons = tuple(s for s in (int(pd.Timedelta("1D") / bucket), int(pd.Timedelta("7D") / bucket))
                    if 2 * s <= len(train))
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(args.overrides).items()}
    settings = dataclasses.replace(LSTMSettings(horizon=args.horizon, quantiles=(0.5, 0.95), window=args.window,
                                                seasons=seasons, units=64, epochs=40), **overrides)
    before_test = resample(raw, step)
    before_test = before_test[before_test.index < train.index[-1] + bucket]
    extras = [Extra(peak_buckets(before_test, bucket, k * step), False, seasons, True)
              for k in range(1, args.phases)]
    for size in filter(None, args.extra_buckets.split(",")):
        buckets = peak_buckets(before_test, pd.Timedelta(size), pd.Timedelta(0))
        extras.append(Extra(buckets, True, tuple(usable_seasons(pd.Timedelta(size), len(buckets)).values()), True))
    for name in filter(None, args.extra_traces.split(",")):
        load_steps, extra_step, extra_bucket = EXTRA_TRACES[name]
        buckets = peak_buckets(resample(load_steps(), pd.Timedelta(extra_step)), pd.Timedelta(extra_bucket),
                               pd.Timedelta(0))
        extra_seasons = tuple(usable_seasons(pd.Timedelta(extra_bucket), len(buckets)).values())
        extras.append(Extra(buckets, True, extra_seasons, False))
    lstm = MultiSeriesLSTM(settings)
    load, started = os.getloadavg()[0], time.perf_counter()
    windows = lstm.fit_many(train, extras, args.validate_phases)
    took = time.perf_counter() - started
    ar = LinearAR(args.horizon, lags=12, seasons=seasons, quantiles=(0.5,))
    ar.fit(train)
    cut = int(len(train) * (1 - settings.validation_fraction))
    result: dict[str, object] = {"overrides": overrides, "train_seconds": round(took, 1), "load": round(load, 1),
                                 "epochs": len(lstm.scaler.history), "base": lstm.scaler.base,
                                 "extras": f"phases {args.phases}{' validated' * args.validate_phases} "
                                           f"buckets {args.extra_buckets or '-'} traces {args.extra_traces or '-'}",
                                 "train_windows": windows,
                                 "loss / val_loss": " ".join(f"{r['loss']:.4f}/{r['val_loss']:.4f}"
                                                             for r in lstm.scaler.history)}
    for part, origins, end in (("val", np.arange(cut, len(train)), len(train)),
                               ("test", np.arange(len(train), len(values)), len(values))):
        positions = origins[:, None] + np.arange(args.horizon)
        actual = np.where(positions < end, gather(values.to_numpy(), positions), np.nan)
        forecasts = {"lstm": lstm.predict(values, origins)[:, :, 0], "ar": ar.predict(values, origins)[:, :, 0]}
        cells = []
        for h in report:
            scored = np.isfinite(actual[:, h - 1])
            mae = {name: float(np.abs(f[scored, h - 1] - actual[scored, h - 1]).mean()) for name, f in forecasts.items()}
            cells.append(f"{mae['lstm']:.1f}/{mae['ar']:.1f}={mae['lstm'] / mae['ar']:.3f}")
        result[part] = " ".join(cells)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
