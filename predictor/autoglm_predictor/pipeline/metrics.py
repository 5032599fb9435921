"""The collector's and the predictor's own /metrics (prometheus-client), one registry each.

Separate registries let both run in one process (tests, benchmarks) without name clashes.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

DEPENDENCIES = ("prometheus", "kafka", "kubernetes")


class CollectorMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.up = Gauge("autoglm_collector_dependency_up", "1 when the last call to the dependency succeeded",
                        ["dependency"], registry=r)
        self.failures = Counter("autoglm_collector_dependency_failures", "Failed calls per dependency",
                                ["dependency"], registry=r)
        self.backoff = Gauge("autoglm_collector_backoff_seconds", "Current back-off delay (0 when healthy)", registry=r)
        self.published = Counter("autoglm_collector_records_published", "Records acknowledged by Kafka", registry=r)
        self.caught_up = Counter("autoglm_collector_steps_caught_up",
                                 "Steps published late, after an outage (range queries)", registry=r)
        self.dropped = Counter("autoglm_collector_steps_dropped",
                               "Steps older than the catch-up limit, given up (logged)", registry=r)
        self.ambiguous = Counter("autoglm_collector_ambiguous_answers",
                                 "Queries refused for answering several series (steps published as gaps)",
                                 ["signal"], registry=r)
        self.lag = Gauge("autoglm_collector_lag_seconds", "Age of the oldest step not yet published", registry=r)
        self.deployments = Gauge("autoglm_collector_deployments", "Predictive deployments collected", registry=r)
        for dependency in DEPENDENCIES:
            self.up.labels(dependency).set(1)
            self.failures.labels(dependency)


class PredictorMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.consumed = Counter("autoglm_predictor_records_consumed", "Records read from the topic", registry=r)
        self.replayed = Counter("autoglm_predictor_records_replayed",
                                "Records read again to rebuild history; their side effects happened at the first reading",
                                registry=r)
        self.rejected = Counter("autoglm_predictor_records_rejected", "Records sent to the dead-letter topic",
                                ["reason"], registry=r)
        self.duplicates = Counter("autoglm_predictor_records_duplicate", "Records whose sample was already known",
                                  registry=r)
        self.predicted = Gauge("autoglm_predictor_predicted_load", "Upper-quantile load forecast over the lead time",
                               ["deployment", "horizon_seconds"], registry=r)
        self.floor = Gauge("autoglm_predictor_recommended_min_replicas", "Floor last decided",
                           ["deployment"], registry=r)
        self.forecast_error = Gauge("autoglm_predictor_forecast_abs_error",
                                    "|actual - median forecast| of the last bucket forecast one step ahead",
                                    ["deployment"], registry=r)
        self.model_age = Gauge("autoglm_predictor_model_age_seconds", "Since the forecaster in use was fitted",
                               ["deployment", "model"], registry=r)
        self.forecaster = Gauge("autoglm_predictor_forecaster",
                                "1 for the forecaster that answered the last decision (a better one may have refused)",
                                ["deployment", "model"], registry=r)
        self.missing_steps = Gauge("autoglm_predictor_history_missing_steps",
                                   "Step instants never received between the first and last sample",
                                   ["deployment"], registry=r)
        self.decision_latency = Histogram(
            "autoglm_predictor_decision_latency_seconds", "Sample time to status written",
            buckets=(0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120), registry=r)
        self.writes = Counter("autoglm_predictor_status_writes", "status.forecast patches", ["result"], registry=r)
        self.stale = Gauge("autoglm_predictor_forecast_stale", "1 while the deployment has no fresh forecast",
                           ["deployment"], registry=r)

    def forget(self, deployment: str) -> None:
        """Stop exporting every series of a deployment that gets no more decisions (deleted, or no
        longer predictive): a gauge keeps its last value, so a dashboard would show the floor of a
        deleted deployment until the predictor restarts. Its series come back at its next decision."""
        for gauge in (self.predicted, self.floor, self.forecast_error, self.model_age, self.forecaster,
                      self.missing_steps, self.stale):
            gauge.remove_by_labels({"deployment": deployment})


def serve(registry: CollectorRegistry, port: int) -> None:
    """Expose /metrics on all interfaces (the Service's metrics port); 0 disables it."""
    if port:
        start_http_server(port, registry=registry)
