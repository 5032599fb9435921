"""Built-in backtest scenarios: the fleet and trace settings each one implies.

`trace` is the default: a CSV trace (the shipped NASA one unless --trace says otherwise) on the
fleet the NASA benchmarks use. `staged-ramp` is shaped like llm-d's SLO-aware autoscaling
benchmark (Qwen3-32B TP=2 on H100, KEDA, TTFT <= 3 s, about 100 s warm-up; it reports 95.8% SLO
attainment at 5.93 average replicas against 100% at 8 static replicas): request rates of
2 -> 4 -> 6 -> 8 -> 10 -> 4 -> 1 req/s in stages of 6 minutes, a per-replica capacity such that
8 replicas just serve the 10 req/s peak (1.25 req/s), 3 to 8 replicas, 15 s metric cadence.

llm-d runs its ramp once; a forecast can only know a ramp it has seen, so here the ramp happens
every day at the same time (a daily peak) and the test period is the last day's ramp, with
every earlier day as training history. Arrivals are the stage rates exactly (no noise): the
published 100% at 8 static replicas says the peak is served, which a Poisson stream at exactly
full capacity would not be in a fluid queue.

No numpy/pandas at import: the CLI reads SCENARIOS and DEFAULTS to build `--help`.
"""
from __future__ import annotations

from dataclasses import dataclass

SCENARIOS = ("trace", "staged-ramp")

# Settings each scenario implies unless the command line gives them (CLI option -> value).
DEFAULTS: dict[str, dict[str, str]] = {
    "trace": {"step": "1min", "bucket": "5min", "horizon": "30min", "report_horizons": "5min,15min,30min",
              "capacity": "15/min", "min_replicas": "1", "max_replicas": "40", "cold_start": "5min", "window": "3h"},
    "staged-ramp": {"step": "15s", "bucket": "1min", "horizon": "10min", "report_horizons": "1min,5min,10min",
                    "capacity": "1.25/s", "min_replicas": "3", "max_replicas": "8", "cold_start": "100s",
                    "window": "30min"},
}


class RampError(ValueError):
    """Staged-ramp settings that make no trace (message says which)."""


@dataclass(frozen=True)
class Ramp:
    rates: tuple[float, ...] = (2, 4, 6, 8, 10, 4, 1)  # requests per second, one per stage
    stage_seconds: float = 360.0
    idle_rate: float = 1.0  # requests per second outside the ramp
    days: int = 7
    first_day: str = "2026-01-05"  # a Monday
    start_seconds: float = 9 * 3600.0  # the ramp starts at 09:00 every day
    step_seconds: float = 15.0

    def __post_init__(self) -> None:
        if not self.rates or min(self.rates) < 0 or self.idle_rate < 0:
            raise RampError("ramp rates and the idle rate must be >= 0 (and at least one stage)")
        if self.days < 2:
            raise RampError(f"need at least 2 days (one to train on, one to test), got {self.days}")
        if self.step_seconds <= 0 or self.stage_seconds <= 0 or self.stage_seconds % self.step_seconds:
            raise RampError(f"the stage ({self.stage_seconds:g} s) must be a whole number of steps ({self.step_seconds:g} s)")
        if self.start_seconds + self.length_seconds > 86400:
            raise RampError("the ramp must end within its day")

    @property
    def length_seconds(self) -> float:
        return self.stage_seconds * len(self.rates)

    def test_window(self, margin_seconds: float = 600.0) -> tuple[str, str]:
        """The last day's ramp with `margin_seconds` of idle load either side: (test start, test end)."""
        import pandas as pd

        last = pd.Timestamp(self.first_day) + pd.Timedelta(days=self.days - 1, seconds=self.start_seconds)
        return (str(last - pd.Timedelta(seconds=margin_seconds)),
                str(last + pd.Timedelta(seconds=self.length_seconds + margin_seconds)))


def staged_ramp(ramp: Ramp):
    """Requests per step (a pandas Series indexed by step start): idle load all day, the ramp daily."""
    import numpy as np
    import pandas as pd

    begin = pd.Timestamp(ramp.first_day)
    index = pd.date_range(begin, periods=int(ramp.days * 86400 // ramp.step_seconds), freq=f"{ramp.step_seconds:g}s")
    offset = ((index - begin).total_seconds().to_numpy() % 86400) - ramp.start_seconds
    stage = np.floor(offset / ramp.stage_seconds).astype(int)
    inside = (offset >= 0) & (stage < len(ramp.rates))
    rate = np.where(inside, np.asarray(ramp.rates, dtype=float)[np.clip(stage, 0, len(ramp.rates) - 1)], ramp.idle_rate)
    return pd.Series(rate * ramp.step_seconds, index=index, name="requests")


def parse_rates(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise RampError(f"--ramp-rates must be comma-separated numbers (req/s), got {text!r}") from None


def describe(ramp: Ramp) -> str:
    hours, minutes = divmod(int(ramp.start_seconds) // 60, 60)
    return (f"{' -> '.join(f'{r:g}' for r in ramp.rates)} req/s, {ramp.stage_seconds:g} s stages, daily at "
            f"{hours:02d}:{minutes:02d} for {ramp.days} days (idle {ramp.idle_rate:g} req/s)")
