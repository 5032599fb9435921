"""The operator's own resync and rollout ticks (periodic.py), on a fake clock."""
from __future__ import annotations

from autoglm_operator.runtime.periodic import Key, Periodic, Tick


def at(manual, periodic: Periodic, now: float) -> None:
    manual.now = now
    periodic.scheduler.run_due()


def test_resync_every_interval_and_rollout_ticks_only_while_rolling(manual) -> None:
    runs: list[tuple[Key, Tick]] = []
    periodic = Periodic(lambda key, tick: runs.append((key, tick)) or True, resync_seconds=10, rollout_seconds=2,
                        executor=manual, clock=manual)
    periodic.observe("ml", "glm", rolling=False)
    periodic.observe("ml", "glm", rolling=False)  # a second event schedules nothing more
    at(manual, periodic, 9.9)
    assert runs == []
    at(manual, periodic, 10)
    assert runs == [(("ml", "glm"), Tick.RESYNC)]

    periodic.observe("ml", "glm", rolling=True)  # at 10: ticks at 12, 14 ...
    periodic.observe("ml", "glm", rolling=True)
    at(manual, periodic, 12)
    assert runs[1:] == [(("ml", "glm"), Tick.ROLLOUT)]
    periodic.observe("ml", "glm", rolling=False)
    at(manual, periodic, 16)
    assert runs[1:] == [(("ml", "glm"), Tick.ROLLOUT)], "the tick stops with the rollout"

    periodic.forget("ml", "glm")
    at(manual, periodic, 40)
    assert len(runs) == 2, "a forgotten resource is not resynced"


def test_a_failing_tick_does_not_stop_the_next(manual) -> None:
    runs: list[Key] = []

    def work(key: Key, tick: Tick) -> bool:
        runs.append(key)
        raise RuntimeError("API server unavailable")

    periodic = Periodic(work, resync_seconds=1, rollout_seconds=1, executor=manual, clock=manual)
    periodic.observe("ml", "glm", rolling=False)
    at(manual, periodic, 1)
    at(manual, periodic, 2)
    assert runs == [("ml", "glm")] * 2


def test_a_failed_resync_runs_again_after_the_retry_delay_and_keeps_its_schedule(manual) -> None:
    runs: list[float] = []

    def work(key: Key, tick: Tick) -> bool:
        runs.append(manual.now)
        if len(runs) == 1:
            raise RuntimeError("API server unavailable")
        return True

    periodic = Periodic(work, resync_seconds=30, rollout_seconds=2, executor=manual, clock=manual, retry_seconds=10)
    periodic.observe("ml", "glm", rolling=False)
    at(manual, periodic, 30)
    at(manual, periodic, 40)
    assert runs == [30, 40], "retried 10 s after the failure, not 30 s"
    at(manual, periodic, 59)
    assert runs == [30, 40]
    at(manual, periodic, 60)
    assert runs == [30, 40, 60], "the regular schedule is unchanged by the retry"


def test_a_resource_found_gone_on_a_tick_ticks_no_more(manual) -> None:
    """Its DELETED event was missed (the operator's rights in the namespace went first)."""
    runs: list[tuple[Key, Tick]] = []
    gone = {("ml", "old")}

    def work(key: Key, tick: Tick) -> bool:
        runs.append((key, tick))
        return key not in gone

    periodic = Periodic(work, resync_seconds=10, rollout_seconds=2, executor=manual, clock=manual)
    periodic.observe("ml", "old", rolling=True)
    periodic.observe("ml", "glm", rolling=False)
    at(manual, periodic, 2)
    assert runs == [(("ml", "old"), Tick.ROLLOUT)]
    assert periodic.scheduler.keys() == [("ml", "glm", Tick.RESYNC)], "both ticks of the gone resource dropped"
    at(manual, periodic, 10)
    at(manual, periodic, 20)
    assert runs[1:] == [(("ml", "glm"), Tick.RESYNC)] * 2


def test_ticks_skip_while_a_higher_priority_replica_works(manual) -> None:
    runs: list[float] = []
    active = [True]
    periodic = Periodic(lambda key, tick: runs.append(manual.now) or True, resync_seconds=10, rollout_seconds=2,
                        executor=manual, clock=manual, active=lambda: active[0])
    periodic.observe("ml", "glm", rolling=False)
    at(manual, periodic, 10)
    active[0] = False
    at(manual, periodic, 20)
    active[0] = True
    at(manual, periodic, 30)
    assert runs == [10, 30]
