"""Offline evaluation: backtests of forecasters and scaling policies, and their reports."""
