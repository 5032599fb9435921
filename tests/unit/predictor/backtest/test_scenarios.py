"""The built-in staged ramp (backtest/scenarios.py)."""
import pytest

from autoglm_predictor.backtest.scenarios import Ramp, RampError, parse_rates, staged_ramp


def test_the_ramp_runs_daily_at_its_rates_with_idle_load_between():
    ramp = Ramp(days=2)
    series = staged_ramp(ramp)
    assert len(series) == 2 * 86400 // 15
    day2 = series["2026-01-06"]
    per_second = day2 / 15
    assert per_second["2026-01-06 08:59:45"] == 1.0  # idle
    assert per_second["2026-01-06 09:00:00"] == 2.0
    assert per_second["2026-01-06 09:24:00"] == 10.0 and per_second["2026-01-06 09:29:45"] == 10.0
    assert per_second["2026-01-06 09:41:45"] == 1.0 and per_second["2026-01-06 09:42:00"] == 1.0
    ramp_rows = per_second.between_time("09:00", "09:41:45")
    assert ramp_rows.value_counts().to_dict() == {1.0: 24, 2.0: 24, 4.0: 48, 6.0: 24, 8.0: 24, 10.0: 24}
    assert ramp.test_window() == ("2026-01-06 08:50:00", "2026-01-06 09:52:00")


@pytest.mark.parametrize("settings", [dict(days=1), dict(rates=()), dict(rates=(-1.0,)), dict(stage_seconds=20),
                                      dict(start_seconds=23.5 * 3600)])
def test_impossible_ramps_are_named_errors(settings):
    with pytest.raises(RampError):
        Ramp(**settings)
    with pytest.raises(RampError):
        parse_rates("2,x")
