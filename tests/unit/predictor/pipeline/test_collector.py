from autoglm_predictor.pipeline.collector import Backoff, build_records, first_cursor, plan_steps, values_by_ts
from autoglm_predictor.pipeline.targets import target_from


def test_plan_is_the_settled_steps_from_the_cursor():
    assert plan_steps(cursor=100, now=131.5, step=10, settle=1, max_steps=100).steps == [100, 110, 120, 130]
    assert plan_steps(cursor=140, now=141.0, step=10, settle=2, max_steps=100).steps == []


def test_plan_after_an_outage_keeps_the_newest_steps_and_counts_the_rest():
    plan = plan_steps(cursor=0, now=1000, step=10, settle=0, max_steps=5)
    assert plan.steps == [960, 970, 980, 990, 1000] and plan.dropped == 96


def test_first_cursor_backfills_aligned():
    assert first_cursor(1005, 10, 30) == 970


def test_backoff_doubles_to_a_limit_and_resets():
    backoff = Backoff(1, 5)
    assert [backoff.failed() for _ in range(4)] == [1, 2, 4, 5]
    backoff.reset()
    assert backoff.failed() == 1


def test_range_result_to_values_skips_non_finite():
    result = [{"metric": {}, "values": [[100.0, "3"], [110.0, "NaN"], [120.0, "-0"]]}]
    assert values_by_ts(result) == {100: 3.0, 120: 0.0}


def test_steps_without_a_sample_become_gaps():
    target = target_from({"metadata": {"namespace": "ml", "name": "glm"},
                          "spec": {"autoscaling": {"enabled": True, "predictive": {"enabled": True}}}})
    out = build_records(target, [100, 110], 10, {"load": {100: 2.0}, "queue_depth": {110: 1.0}})
    assert [(r.ts, r.load, r.queue_depth) for r in out] == [(100, 2.0, None), (110, None, 1.0)]
    assert out[0].deployment == "ml/glm"


def test_a_load_query_answering_one_series_per_pod_is_refused_not_read_from_its_first():
    """Issue 15 fault 10, in the collector: the user's query without aggregation answers 0.40 and
    0.99; the steps become gaps (the predictor decays and says so), counted and logged once."""
    import logging

    from autoglm_predictor.pipeline.collector import Collector, CollectorSettings
    from autoglm_predictor.pipeline.metrics import CollectorMetrics

    per_pod = [{"metric": {"pod": "a"}, "values": [[100.0, "0.40"]]}, {"metric": {"pod": "b"}, "values": [[100.0, "0.99"]]}]

    class Prometheus:
        def client(self):
            return self

        def custom_query_range(self, query, **_):
            return per_pod if query == "my_load" else [{"metric": {}, "values": [[100.0, "1"]]}]

    target = target_from({"metadata": {"namespace": "ml", "name": "glm"},
                          "spec": {"autoscaling": {"enabled": True, "predictive": {"enabled": True},
                                                   "target": {"query": "my_load"}}}})
    metrics = CollectorMetrics()
    collector = Collector(CollectorSettings(), Prometheus(), None, None, metrics)
    logs = []
    handler = logging.Handler()
    handler.emit = logs.append
    logging.getLogger("autoglm_predictor.pipeline.collector").addHandler(handler)
    try:
        for _ in range(2):
            signals = collector._query(target, [100])
    finally:
        logging.getLogger("autoglm_predictor.pipeline.collector").removeHandler(handler)
    assert "load" not in signals and signals["queue_depth"] == {100: 1.0}
    assert [r.load for r in build_records(target, [100], 10, signals)] == [None]
    assert metrics.registry.get_sample_value("autoglm_collector_ambiguous_answers_total", {"signal": "load"}) == 2
    assert len(logs) == 1 and '2 series answered ({pod="a"}; {pod="b"})' in logs[0].getMessage()
