"""The predictor's commit rule (at least once across two threads) and where replays start."""
import numpy as np
import pandas as pd

from autoglm_predictor.forecast.models import DeploymentModel, ModelSettings
from autoglm_operator.api.timestamps import from_epoch
from autoglm_predictor.pipeline.actuation import ForecastStatus
from autoglm_predictor.pipeline.history import History
from autoglm_predictor.pipeline.offsets import OffsetLedger, effects_from_metadata, effects_metadata, replay_start
from autoglm_predictor.pipeline.predictor import newest


def ledger_at(**ends):
    ledger = OffsetLedger()
    ledger.assigned({tp: 0 for tp in ends}, ends)
    return ledger


def test_no_decision_before_every_partition_caught_up():
    ledger = ledger_at(p0=10, p1=5)
    assert not ledger.ready()
    ledger.ingested({"p0": 10, "p1": 4})
    assert not ledger.ready()
    ledger.ingested({"p1": 5, "elsewhere": 99})
    assert ledger.ready() and "elsewhere" not in ledger.fed
    assert not OffsetLedger().ready() and not ledger_at().ready()  # nothing assigned: nothing to decide


def test_commit_covers_only_what_a_finished_round_saw():
    ledger = ledger_at(p0=10)
    ledger.ingested({"p0": 10})
    snapshot = ledger.round_started()
    ledger.ingested({"p0": 15})  # arrives while the round decides: not covered by it
    assert ledger.to_commit(["p0"]) == {}  # round not written yet
    ledger.round_written(snapshot)
    assert ledger.to_commit(["p0"]) == {"p0": (10, 0)}
    ledger.was_committed({"p0": (10, 0)})
    assert ledger.to_commit(["p0"]) == {}  # nothing new: no commit per poll


def test_a_failed_round_commits_nothing_and_the_next_one_covers_all():
    ledger = ledger_at(p0=10)
    ledger.ingested({"p0": 10})
    ledger.round_started()  # a write failed: round_written never called
    ledger.ingested({"p0": 12})
    ledger.round_written(ledger.round_started())
    assert ledger.to_commit(["p0"]) == {"p0": (12, 0)}


def test_a_round_straddling_a_rebalance_commits_nothing():
    ledger = ledger_at(p0=10, p1=10)
    ledger.ingested({"p0": 10, "p1": 10})
    snapshot = ledger.round_started()
    ledger.assigned({"p0": 10}, {"p0": 10})  # p1 went to another replica during the round
    ledger.round_written(snapshot)
    assert ledger.to_commit(["p0"]) == {} and "p1" not in ledger.fed
    ledger.round_written(ledger.round_started())
    assert ledger.to_commit(["p0"]) == {"p0": (10, 0)}


def test_commits_only_for_assigned_partitions_and_never_backwards():
    ledger = ledger_at(p0=10, p1=10)
    ledger.ingested({"p0": 10, "p1": 10})
    late = ledger.round_started()
    ledger.ingested({"p0": 20, "p1": 20})
    ledger.round_written(ledger.round_started())
    ledger.round_written(late)  # an older snapshot never lowers what is decided
    assert ledger.to_commit(["p0"]) == {"p0": (20, 0)}


def test_side_effects_happen_on_the_first_reading_only_across_replays_and_restarts():
    """Issue 15 fault 11: a replay (re-read after the seek, or a restart on the same group)
    dead-lettered and counted the same rejected records again."""
    ledger = ledger_at(p0=6)
    assert [ledger.first_reading("p0", o) for o in range(6)] == [True] * 6
    assert not any(ledger.first_reading("p0", o) for o in range(6))  # the seek back: history only
    assert ledger.first_reading("p0", 6)
    # Persisted with the commit: the decided offset may lag the watermark.
    ledger.ingested({"p0": 7})
    ledger.round_written(ledger.round_started())
    assert ledger.to_commit(["p0"], effects_too=True) == {"p0": (7, 7)}
    ledger.was_committed({"p0": (7, 7)})
    ledger.first_reading("p0", 7)  # a reject after the round: committed alone, at the decided offset
    assert ledger.to_commit(["p0"]) == {} and ledger.to_commit(["p0"], effects_too=True) == {"p0": (7, 8)}
    # A new process of the group reads the watermark back from the commit's metadata.
    restarted = OffsetLedger()
    restarted.assigned({"p0": 0}, {"p0": 9}, {"p0": effects_from_metadata(7, effects_metadata(8))})
    assert not any(restarted.first_reading("p0", o) for o in range(8)) and restarted.first_reading("p0", 8)
    # A partition held across a rebalance keeps the larger of its own and the group's watermark.
    ledger.assigned({"p0": 8}, {"p0": 9}, {"p0": 3})
    assert not ledger.first_reading("p0", 7)


def test_effects_watermark_metadata_is_read_tolerantly():
    assert effects_from_metadata(None, None) is None  # a new group: every reading is the first
    assert effects_from_metadata(40, "") == 40  # a committed record was ingested: a lower bound
    assert effects_from_metadata(40, effects_metadata(55)) == 55
    assert effects_from_metadata(40, effects_metadata(10)) == 40
    for foreign in ("not json", "[1]", '{"effects": "9"}', '{"effects": -3}', '{"effects": true}'):
        assert effects_from_metadata(None, foreign) is None, foreign


def test_replay_start():
    # New partition: the history window, never after the committed offset (no gap) ...
    assert replay_start(held=None, lookback=100, committed=None, end=500) == 100
    assert replay_start(held=None, lookback=100, committed=40, end=500) == 40
    assert replay_start(held=None, lookback=None, committed=None, end=500) == 500  # nothing recent
    # ... a partition given back (Kafka restart) goes on from what is in memory ...
    assert replay_start(held=480, lookback=100, committed=300, end=500) == 480
    # ... unless memory ends before the window (a long outage) or the topic was re-created.
    assert replay_start(held=50, lookback=100, committed=None, end=500) == 100
    assert replay_start(held=900, lookback=100, committed=None, end=500) == 100


def test_newest_status_wins():
    old = ForecastStatus(horizon_seconds=60, predicted=1.0, floor=2, updated_at=from_epoch(100), error=None)
    new = ForecastStatus(horizon_seconds=60, predicted=1.0, floor=3, updated_at=from_epoch(200), error=None)
    assert newest(old, None, new) is new and newest(None, None) is None


def test_history_copy_is_independent():
    history = History(step_seconds=1, keep_seconds=100)
    history.add(1, 1.0)
    twin = history.copy()
    history.add(2, 2.0)
    assert twin.latest == (1, 1.0) and history.latest == (2, 2.0)


def test_the_fallback_refits_on_every_new_complete_bucket_only():
    model = DeploymentModel(ModelSettings(bucket_seconds=60, lstm=False), trainer=None)
    index = pd.date_range("2026-01-01", periods=80, freq="60s")
    load = pd.Series(np.arange(80, dtype=float), index=index)
    _, first = model.forecast(load[:70], horizon=3, quantiles=(0.5, 0.95), now=0)
    assert first.kind == "linear-ar"
    _, same = model.forecast(load[:70], horizon=3, quantiles=(0.5, 0.95), now=30)
    assert same is first  # the same buckets: no refit
    values, refitted = model.forecast(load[:71], horizon=3, quantiles=(0.5, 0.95), now=60)
    assert refitted is not first and refitted.last_bucket == index[70]
    assert abs(values[0, 0] - 71) < 1e-6  # a trend the first fit never saw
