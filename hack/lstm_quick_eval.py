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

Prints one JSON line: training seconds, the load average at the start, epochs, the base chosen and
per part and report horizon "LSTM MAE / linear-AR MAE = ratio".
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import numpy as np
import pandas as pd

from autoglm_predictor.backtest.evaluation import Scenario, prepare
from autoglm_predictor.forecast.forecasters import LinearAR, gather
from autoglm_predictor.forecast.lstm import LSTMForecaster, LSTMSettings
from autoglm_predictor.forecast.series import load_trace
from autoglm_predictor.forecast.simulator import ClusterConfig

NASA = "predictor/autoglm_predictor/traces/nasa_http_1995_per_minute.csv.gz"


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
    args = parser.parse_args()
    bucket, step = pd.Timedelta(args.bucket), pd.Timedelta(args.step)
    report = tuple(int(h) for h in args.report.split(","))
    # The cluster only matters to the backtest's replays; prepare() needs a valid scenario.
    scenario = Scenario(step=step, bucket=bucket, horizon=args.horizon, report_horizons=report, quantile=0.95,
                        cluster=ClusterConfig(step_seconds=step.total_seconds(), capacity_per_replica=1.0,
                                              max_replicas=1, cold_start_seconds=0.0))
    data = prepare(load_trace(args.trace), scenario, args.test_start, None, None).buckets
    train = data.train
    values = pd.concat([data.train, data.test])
    seasons = tuple(s for s in (int(pd.Timedelta("1D") / bucket), int(pd.Timedelta("7D") / bucket))
                    if 2 * s <= len(train))
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(args.overrides).items()}
    settings = dataclasses.replace(LSTMSettings(horizon=args.horizon, quantiles=(0.5, 0.95), window=args.window,
                                                seasons=seasons, units=64, epochs=40), **overrides)
    lstm = LSTMForecaster(settings)
    load, started = os.getloadavg()[0], time.perf_counter()
    lstm.fit(train)
    took = time.perf_counter() - started
    ar = LinearAR(args.horizon, lags=12, seasons=seasons, quantiles=(0.5,))
    ar.fit(train)
    cut = int(len(train) * (1 - settings.validation_fraction))
    result: dict[str, object] = {"overrides": overrides, "train_seconds": round(took, 1), "load": round(load, 1),
                                 "epochs": len(lstm.scaler.history), "base": lstm.scaler.base}
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
