import numpy as np
import pandas as pd
import pytest

from autoglm_predictor.forecast.forecasters import ForecastError, LinearAR, Persistence, SeasonalNaive


def series(values) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=float), index=pd.date_range("2024-01-01", periods=len(values), freq="5min"))


SINE = series(100 + 50 * np.sin(2 * np.pi * np.arange(400) / 24))


def test_persistence_repeats_last_value_and_fills_gaps():
    history = series([1, 2, 3, np.nan])
    forecaster = Persistence(horizon=3)
    forecaster.fit(series([1, 2, 3, 4, 5, 6]))
    forecast = forecaster.predict(history, [3, 4])
    assert forecast[:, :, 0].tolist() == [[3, 3, 3], [3, 3, 3]]  # the gap holds the last value
    assert np.all(forecast[:, :, 1] >= forecast[:, :, 0])


def test_seasonal_naive_is_exact_on_a_pure_sine():
    forecaster = SeasonalNaive(season=24, horizon=6)
    forecaster.fit(SINE[:300])
    forecast = forecaster.predict(SINE, [300, 350])
    expected = SINE.to_numpy()[np.array([300, 350])[:, None] + np.arange(6)]
    np.testing.assert_allclose(forecast[:, :, 0], expected, atol=1e-9)
    np.testing.assert_allclose(forecast[:, :, 1], expected, atol=1e-6)  # zero residuals -> no margin


def test_seasonal_naive_needs_a_season_covering_the_horizon():
    with pytest.raises(ForecastError, match="season"):
        SeasonalNaive(season=3, horizon=6)


def test_linear_ar_recovers_a_trend_and_a_sine():
    trend = series(np.arange(200) * 2.0 + 10)
    forecaster = LinearAR(horizon=4, lags=3)
    forecaster.fit(trend[:150])
    np.testing.assert_allclose(forecaster.predict(trend, [150])[0, :, 0], [310, 312, 314, 316], atol=1e-6)
    sine = LinearAR(horizon=6, lags=12, seasons=(24,))
    sine.fit(SINE[:300])
    expected = SINE.to_numpy()[300:306]
    np.testing.assert_allclose(sine.predict(SINE, [300])[0, :, 0], expected, atol=1e-6)


def test_linear_ar_drops_seasons_longer_than_the_history():
    forecaster = LinearAR(horizon=2, lags=2, seasons=(24, 10_000))
    forecaster.fit(SINE[:100])
    assert forecaster.seasons == (24,)


def test_linear_ar_fits_without_a_season_until_its_rows_suffice():
    # 70 buckets: the 12 lags alone have 70 - 12 - 4 + 1 = 55 complete rows for 13 coefficients
    # (52 needed); the 20-bucket season (within half the history) leaves 47 for 14 (56 needed).
    history = SINE[:70]
    forecaster = LinearAR(horizon=4, lags=12, seasons=(20,))
    forecaster.fit(history)
    assert forecaster.seasons == ()
    assert np.isfinite(forecaster.predict(history, [70])).all()
    longer = LinearAR(horizon=4, lags=12, seasons=(20,))
    longer.fit(SINE[:100])  # 100 - 4 - 20 + 1 = 77 rows >= 56
    assert longer.seasons == (20,)


def test_step_change_raises_the_upper_quantile_above_the_median():
    step = series([10.0] * 50 + [30.0] * 50 + [10.0] * 50 + [30.0] * 50)
    forecaster = Persistence(horizon=2, quantiles=(0.5, 0.95))
    forecaster.fit(step)
    forecast = forecaster.predict(step, [60])
    assert forecast[0, 0, 0] == 30 and forecast[0, 0, 1] >= 30


def test_constant_series_gives_constant_finite_forecasts():
    constant = series([7.0] * 100)
    for forecaster in (Persistence(3), SeasonalNaive(24, 3), LinearAR(3, lags=4, seasons=(24,))):
        forecaster.fit(constant)
        forecast = forecaster.predict(constant, [50, 100])
        assert np.isfinite(forecast).all()
        np.testing.assert_allclose(forecast, 7.0, atol=1e-6)


def test_bad_arguments_raise():
    with pytest.raises(ForecastError, match="horizon"):
        Persistence(horizon=0)
    with pytest.raises(ForecastError, match="quantiles"):
        Persistence(horizon=1, quantiles=(0.9, 0.5))
    forecaster = Persistence(horizon=2)
    forecaster.fit(series([1, 2, 3]))
    with pytest.raises(ForecastError, match="origins"):
        forecaster.predict(series([1, 2, 3]), [0])
    with pytest.raises(ForecastError, match="no observed values"):
        forecaster.predict(series([np.nan, np.nan]), [1])
    with pytest.raises(ForecastError, match="shorter than the horizon"):
        Persistence(horizon=5).fit(series([1, 2]))


def test_linear_ar_restored_from_its_coefficients_forecasts_the_same_point():
    fitted = LinearAR(horizon=6, lags=12, seasons=(24,))
    fitted.fit(SINE[:300] + np.arange(300) % 7)  # a non-trivial fit
    restored = LinearAR.from_coefficients(6, 12, fitted.seasons, [c.tolist() for c in fitted._coefficients])
    origins = [100, 300, 350]
    np.testing.assert_allclose(restored.predict(SINE, origins)[:, :, 0], fitted.predict(SINE, origins)[:, :, 0])
    with pytest.raises(ForecastError, match="coefficient rows"):
        LinearAR.from_coefficients(6, 12, (24,), [c.tolist() for c in fitted._coefficients][:5])
