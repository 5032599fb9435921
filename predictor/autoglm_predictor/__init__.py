"""The predictive floor: forecasting and the scaling policy (forecast), their offline evaluation
(backtest), the Kafka services (pipeline) and the shipped sample traces (traces).
Layers, top to bottom: cli > pipeline | backtest > forecast > traces; from the operator only
autoglm_operator.api (.importlinter)."""
