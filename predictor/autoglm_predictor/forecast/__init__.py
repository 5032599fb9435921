"""The pure forecasting core shared by the live pipeline and the backtest: series, forecasters
(LSTM included), which forecaster a deployment gets, the scaling policy, the simulator."""
