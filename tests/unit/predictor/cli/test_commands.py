import argparse
import json
import re

import numpy as np
import pandas as pd
import pytest

from autoglm_predictor.backtest.evaluation import bucket_loads
from autoglm_predictor.cli.commands import register
from autoglm_predictor.forecast.series import load_trace, split


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def generic_csv(tmp_path):
    """Three days of a daily cycle at one-minute resolution, as a generic timestamp,value CSV."""
    index = pd.date_range("2024-03-01", periods=3 * 1440, freq="1min")
    minute = np.arange(len(index))
    values = np.random.default_rng(0).poisson(40 + 30 * np.sin(2 * np.pi * minute / 1440))
    path = tmp_path / "load.csv"
    pd.DataFrame({"timestamp": index.strftime("%Y-%m-%dT%H:%M:%S"), "value": values}).to_csv(path, index=False)
    return path


def test_backtest_on_a_generic_csv_writes_report_plots_and_json(generic_csv, tmp_path, capsys):
    report, out = tmp_path / "report", tmp_path / "result.json"
    code = run(["backtest", "--trace", str(generic_csv), "--no-lstm", "--sweep", "0.7,0.9",
                "--report", str(report), "--json", str(out)])
    assert code == 0
    written = ", ".join(str(report / name) for name in ("report.md", "demand_vs_capacity.png", "tradeoff.png", "frontier.png"))
    assert capsys.readouterr().err.splitlines()[-1] == f"wrote {written}, {out}"
    assert {"report.md", "demand_vs_capacity.png", "tradeoff.png"} <= {p.name for p in report.iterdir()}
    result = json.loads(out.read_text())
    assert result["closed_loop"]["oracle"]["violation_minutes"] == 0
    reactive = result["closed_loop"]["reactive"]
    assert 0 < reactive["slo_attainment_pct"] <= 100 and reactive["avg_replicas"] >= 1
    assert reactive["goodput_per_gpu_hour"] > 0
    frontier = result["reactive_frontier"]
    assert frontier["points"] and set(frontier["comparisons"]) == set(result["closed_loop"])
    sweep = result["cold_start_sweep"]
    assert set(sweep["rows"]) == {"20", "100", "300"} and sweep["policy"] == "linear-AR floor"
    assert (report / "frontier.png").is_file()
    assert set(result["accuracy"]) >= {"persistence", "linear-AR"}
    assert "| reactive |" in (report / "report.md").read_text()


def test_backtest_help_shows_every_default(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # argparse wraps at the terminal width; no hyphenated breaks
    with pytest.raises(SystemExit):
        run(["backtest", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: trace: 15/min; staged-ramp: 1.25/s)", "(default: 0.8)",
                    "(default: trace: 1; staged-ramp: 3)", "(default: trace: 40; staged-ramp: 8)",
                    "(default: trace: 5min; staged-ramp: 100s)", "(default: 3s)", "(default: 0.5s)",
                    "(default: 20s,100s,300s)"):
        assert default in text
    assert "(default: None)" not in text and text.count("(default:") >= 30
    assert "--p99-fraction P99_FRACTION rescale the trace so its p99 is this fraction of max replicas x capacity " \
           "(default: off, the trace as recorded)" in text
    # A bucket holds its busiest step's load (docs/forecasting.md), not its total nor "minute peaks inside" it.
    assert "busiest --step's requests times the steps per bucket" in text and "minute peaks" not in text


def test_train_help_shows_the_trace_defaults_only(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit):
        run(["train", "--help"])  # train has no --scenario: it uses the trace's defaults
    text = " ".join(capsys.readouterr().out.split())
    assert "staged-ramp" not in text and "(default: 30min)" in text and "(default: 64)" in text
    assert "busiest --step's requests" in text and "(default: 1min)" in text  # as the backtest's buckets


@pytest.mark.parametrize("command, defaults", [
    ("collector", ("(default: 9100)", "sampling step (records are aligned to it) (default: 15)", "(default: 1m)")),
    ("predictor", ("(default: 9101)", "the collector's step (part of the lead time) (default: 15)",
                   "(default: autoglm-predictor)", "(default: 180.0)")),
])
def test_pipeline_help_shows_defaults(capsys, monkeypatch, command, defaults):
    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit):
        run([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(default in text for default in defaults) and "(default: None)" not in text


def test_the_staged_ramp_scenario_tests_the_last_days_ramp_on_its_own_fleet(tmp_path, capsys):
    out = tmp_path / "ramp.json"
    code = run(["backtest", "--scenario", "staged-ramp", "--ramp-days", "3", "--no-lstm", "--sweep", "0.8",
                "--reactive-targets", "0.6,0.8", "--cold-starts", "", "--report", str(tmp_path / "r"), "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["settings"]["replicas"] == "3..8" and result["settings"]["cold start"] == "100s"
    assert result["settings"]["test"].startswith("2026-01-07 08:50")
    assert result["closed_loop"]["static peak"]["avg_replicas"] == 8  # the 10 req/s peak needs all 8
    assert result["closed_loop"]["static peak"]["slo_attainment_pct"] == 100
    assert result["cold_start_sweep"]["rows"] == {}
    assert capsys.readouterr().err.count("closed loop at target 0.80") == 1  # the sweep reuses that replay


def test_train_saves_a_model_and_tensorflow_logs_no_errors(generic_csv, tmp_path, capfd):
    out = tmp_path / "model.keras"
    code = run(["train", "--trace", str(generic_csv), "--window", "1h", "--units", "4", "--epochs", "2",
                "--threads", "1", "--out", str(out)])
    assert code == 0 and out.is_file() and out.with_suffix(".json").is_file()
    err = capfd.readouterr().err
    # TensorFlow's C++ log writes "E0000 <time> <thread> <file>:<line>] ..." straight to fd 2.
    errors = [line for line in err.splitlines() if re.match(r"[EF]\d{4} ", line)]
    assert errors == []
    epochs = [line for line in err.splitlines() if line.strip().startswith("epoch ")]
    assert epochs and all(re.search(r"\(\d+\.\d s since training started\)$", line) for line in epochs)  # cumulative
    # The model learns what a backtest feeds it: each bucket's peak minute x 5, not the bucket's total.
    loads = split(bucket_loads(load_trace(str(generic_csv)), pd.Timedelta("1min"), pd.Timedelta("5min")), None, None, None)
    scale = json.loads(out.with_suffix(".json").read_text())["scaler"]["scale"]
    assert scale == pytest.approx(np.nanpercentile(loads.train.to_numpy(), 99))


@pytest.mark.parametrize("extra, message", [
    (["--capacity", "fast"], "capacity"),
    (["--horizon", "7min"], "whole number"),
    (["--horizon", "5min", "--report-horizons", "5min"], "does not cover the lead time"),
    (["--horizon", "10min"], "report horizons 5 min, 15 min, 30 min must lie within the forecast horizon (10 min): "
                             "pass --report-horizons"),
    (["--horizon", "30"], "--horizon '30' must be a positive duration with a unit"),  # pandas: 30 ns
    (["--horizon=-5min"], "--horizon '-5min' must be a positive duration"),
    (["--bucket", "0s"], "--bucket '0s' must be a positive duration"),
    (["--bucket", "30s"], "--bucket 30s must be a whole multiple of --step 1min"),
    (["--cold-start=-1min"], "--cold-start '-1min' must be a non-negative duration"),
    (["--cold-starts", "20s,soon"], "--cold-starts 'soon'"),
    (["--quantile", "1.5"], "--quantile must lie in (0, 1)"),
    (["--capacity", "0/min"], "capacity must be a positive number per unit of time"),
    (["--capacity", "inf/min"], "capacity must be a positive number per unit of time"),
    (["--capacity", "60"], "--capacity '60' must be a rate with a unit, such as 15/min or 2/s"),  # per step? per min?
    (["--model", "m.keras"], "--model is ignored with --no-lstm"),
    (["--save-model", "m.keras"], "--save-model is ignored with --no-lstm"),
    (["--min-replicas", "5", "--max-replicas", "2"], "need 0 <= --min-replicas <= --max-replicas and --max-replicas "
                                                     ">= 1, got 5 and 2"),
    (["--max-replicas", "0"], "--max-replicas >= 1, got 1 and 0"),
    (["--target", "0"], "--target must be a target utilisation in (0, 1], got 0.0"),
    (["--target", "1.2"], "--target must be a target utilisation in (0, 1], got 1.2"),
    (["--sweep", "0.5,1.5"], "--sweep must be comma-separated target utilisations in (0, 1]"),
    (["--reactive-targets", "0.5,x"], "--reactive-targets must be comma-separated target utilisations"),
    (["--calibration-rate", "-1"], "--calibration-rate must be >= 0"),
    (["--save-model", "model.h5"], "--save-model must end in .keras"),
    (["--test-start", "2030-01-01"], "leaves no test period: the trace runs 2024-03-01 00:00:00 .. 2024-03-03 23:55:00"),
    (["--test-start", "someday"], "--test-start 'someday' is not a date"),
    (["--test-start", "2024-03-03T23:50"], "the test period holds 2 buckets of 5min"),
    (["--test-start", "2024-03-01T02:00"], "the training period holds 24 buckets of 5min"),
    (["--step", "7min", "--bucket", "7min"], "whole number of 7min buckets"),
])
def test_invalid_input_exits_with_a_message(generic_csv, tmp_path, capsys, extra, message):
    code = run(["backtest", "--trace", str(generic_csv), "--no-lstm", "--sweep", "0.8",
                "--report", str(tmp_path / "r"), *extra])
    assert code == 2
    assert message in one_error_line(capsys.readouterr().err, "backtest")


@pytest.mark.parametrize("extra, message", [
    (["--save-model", "out/x.keras", "--json", "out/../out/x.json"], "--json out/../out/x.json is the settings file of "
                                                                     "--save-model out/x.keras"),
    (["--model", "out/x.keras", "--json", "out/x.json"], "--json out/x.json is the settings file of --model out/x.keras"),
    (["--model", "a.keras", "--save-model", "b.keras"], "with --model none is trained"),
])
def test_model_paths_that_would_be_overwritten_or_ignored_are_refused_before_the_trace_is_read(
        tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    assert run(["backtest", "--trace", "missing.csv", "--report", "r", *extra]) == 2
    assert message in one_error_line(capsys.readouterr().err, "backtest")
    assert list((tmp_path / "out").iterdir()) == []


def one_error_line(err: str, command: str) -> str:
    """The command's error: one line, no traceback, after any progress lines."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err and lines[-1].startswith(f"autoglm {command}: error: ")
    return lines[-1]


MINUTES = "\n".join(f"2024-03-01T{h:02d}:{m:02d}:00,{m % 7}" for h in range(24) for m in range(60))


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty"),
    ("timestamp,value\n", "trace is empty"),
    ("timestamp,value\n2024-03-01T00:00:00,5\n", "need at least two rows"),
    ("time,value\n2024-03-01T00:00:00,5\n", "no 'timestamp' column"),
    ("timestamp,value\n2024-03-01T00:00:00,5\n2024-03-01T00:01:00,5,6\n", "cannot be read as a CSV"),
    ("timestamp,value\n" + MINUTES.replace(",3\n", ",x\n", 1), "non-numeric value 'x' at line 5"),
    ("timestamp,value\n" + MINUTES.replace(",3\n", ",-3\n", 1), "negative value -3 at line 5"),
    ("timestamp,value\n" + MINUTES.replace(",3\n", ",inf\n", 1), "infinite value inf at line 5"),
    ("timestamp,value\n" + MINUTES.replace(",3\n", ",1e300\n", 1), "above 1e+15 requests per sample"),
    ("timestamp,value\n" + MINUTES.replace("T00:04:00", "T00:03:00", 1), "duplicate timestamp 2024-03-01 00:03:00"),
    ("timestamp,value\n" + MINUTES.replace("2024-03-01T00:02:00", "", 1), "unparseable timestamp '' at line 4"),
    ("timestamp,value\n" + "\n".join(MINUTES.splitlines()[:2]), "the trace covers 2min, less than one 5min"),
    ("timestamp,value\n" + "\n".join(f"2024-03-01T{h:02d}:00:00,5" for h in range(24)),
     "step 1min is not a whole multiple of the trace's step 1h"),
    ("timestamp,value\n" + "\n".join(f"2024-03-01T{h:02d}:{m:02d}:{s:02d},5" for (h, m), s in  # jittered
                                     zip(np.ndindex(24, 60), np.random.default_rng(0).integers(0, 60, 1440))),
     "irregular timestamps: only"),
    ("timestamp,value\n" + "\n".join(f"{1709251200 + 60 * i}000,5" for i in range(100)), "epoch milliseconds"),
])
def test_odd_traces_exit_with_one_line(tmp_path, capsys, text, message):
    path = tmp_path / "trace.csv"
    path.write_text(text + "\n" if text else "")
    assert run(["backtest", "--trace", str(path), "--no-lstm", "--report", str(tmp_path / "r")]) == 2
    assert message in one_error_line(capsys.readouterr().err, "backtest")


@pytest.mark.parametrize("stamp", [
    lambda t: t.strftime("%Y-%m-%dT%H:%M:%S+05:30"),  # a UTC offset: kept as wall-clock time
    lambda t: str(int(t.timestamp())),  # Unix epoch seconds (UTC)
])
def test_backtest_reads_offsets_and_epoch_seconds(tmp_path, stamp):
    index = pd.date_range("2024-03-01", periods=1440, freq="1min", tz="UTC")
    values = np.random.default_rng(0).poisson(30, len(index))
    path = tmp_path / "trace.csv"
    path.write_text("timestamp,value\n" + "\n".join(f"{stamp(t)},{v}" for t, v in zip(index, values)) + "\n")
    out = tmp_path / "r.json"
    code = run(["backtest", "--trace", str(path), "--no-lstm", "--sweep", "0.8", "--reactive-targets", "0.8",
                "--cold-starts", "", "--report", str(tmp_path / "r"), "--json", str(out)])
    assert code == 0
    assert json.loads(out.read_text())["settings"]["train"].startswith("2024-03-01 00:00:00")


@pytest.mark.parametrize("extra, message", [
    (["--out", "model.h5"], "--out must end in .keras"),
    (["--out", "m.keras", "--test-start", "2024-03-01T03:00"], "the LSTM's --window 3h and --horizon 30min need at least 61"),
    (["--out", "m.keras", "--window", "7min"], "--window 7min is not a whole number of 5min buckets"),
    (["--out", "m.keras", "--step", "2min"], "--bucket 5min must be a whole multiple of --step 2min"),
])
def test_train_refuses_before_training(generic_csv, capsys, extra, message):
    assert run(["train", "--trace", str(generic_csv), *extra]) == 2
    assert message in one_error_line(capsys.readouterr().err, "train")


def test_missing_trace_exits_with_a_message(tmp_path, capsys):
    assert run(["backtest", "--trace", str(tmp_path / "none.csv"), "--no-lstm"]) == 2
    assert "not found" in capsys.readouterr().err
