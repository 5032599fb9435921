"""The operator's own Prometheus metrics: how often it reconciles and, above all, how often it writes.

A steady state should show reconciles rising and writes flat; writes climbing on every resync
mean a child the operator cannot converge (see docs/operator.md).
"""
from __future__ import annotations

from prometheus_client import Counter, Histogram

RECONCILES = Counter(
    "autoglm_operator_reconciles_total", "Reconciles of AutoGLMDeployments by outcome.", ["result"]
)
# Fine around 1-2 s: `make bench` reads the p99 from these buckets against a 2 s target.
RECONCILE_SECONDS = Histogram(
    "autoglm_operator_reconcile_seconds", "Duration of one reconcile.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 5, 10, 30),
)
WRITES = Counter(
    "autoglm_operator_writes_total", "API writes by verb (apply, delete, status) and kind.", ["verb", "kind"]
)
