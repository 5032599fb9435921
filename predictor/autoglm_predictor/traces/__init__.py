"""Request-arrival traces shipped inside the package, for the demo, the backtest default and tests.

Each is a gzip-compressed `timestamp,requests[,...]` CSV that `series.load_trace` reads like the
uncompressed original (pandas infers the compression from the `.gz` suffix). Attribution, licences
and how each file was derived: README.md beside this module. The paths resolve relative to
this file, so they hold for a source checkout, an editable install and an installed wheel alike
(pyproject.toml ships `traces/*` as package data).
"""
from __future__ import annotations

from pathlib import Path

TRACES_DIR: Path = Path(__file__).resolve().parent

# NASA Kennedy Space Center WWW server, requests per minute, 1995-07-01 to 08-31 (89,280 rows,
# empty = server down, not zero); the daily and weekly cycles the forecasters learn.
NASA_PER_MINUTE: Path = TRACES_DIR / "nasa_http_1995_per_minute.csv.gz"
# Azure LLM inference, one hour on 2023-11-16, per second with token sums: the bursty `code` service.
AZURE_CODE_PER_SECOND: Path = TRACES_DIR / "azure_llm_2023_code_per_second.csv.gz"
# The same hour of the smoother `conv` (conversation) service.
AZURE_CONV_PER_SECOND: Path = TRACES_DIR / "azure_llm_2023_conv_per_second.csv.gz"
