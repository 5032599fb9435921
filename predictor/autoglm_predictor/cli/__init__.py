"""The predictor's `autoglm` subcommands: train, backtest, collector, predictor."""
