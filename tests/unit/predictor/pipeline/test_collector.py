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
