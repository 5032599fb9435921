"""The operator's own resync and rollout ticks (periodic.py), on a fake clock."""
from __future__ import annotations

import time

from autoglm_operator.runtime.periodic import Key, Periodic, Tick


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _run_until(periodic: Periodic, clock: _Clock, at: float, runs: list[tuple[Key, Tick]], expected: int) -> None:
    """Move the clock to `at`, wake the thread, and wait until `expected` runs happened (or 5 s)."""
    clock.now = at
    with periodic._wake:
        periodic._wake.notify()
    deadline = time.monotonic() + 5
    while len(runs) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # a run that should not happen has had its chance


def test_resync_every_interval_and_rollout_ticks_only_while_rolling() -> None:
    runs: list[tuple[Key, Tick]] = []
    clock = _Clock()
    periodic = Periodic(lambda key, tick: runs.append((key, tick)), resync_seconds=10, rollout_seconds=2,
                        workers=1, clock=clock)
    try:
        periodic.observe("ml", "glm", rolling=False)
        periodic.observe("ml", "glm", rolling=False)  # a second event schedules nothing more
        _run_until(periodic, clock, 9.9, runs, 0)
        assert runs == []
        _run_until(periodic, clock, 10, runs, 1)
        assert runs == [(("ml", "glm"), Tick.RESYNC)]

        periodic.observe("ml", "glm", rolling=True)  # at 10: ticks at 12, 14 ...
        periodic.observe("ml", "glm", rolling=True)
        _run_until(periodic, clock, 12, runs, 2)
        assert runs[1:] == [(("ml", "glm"), Tick.ROLLOUT)]
        periodic.observe("ml", "glm", rolling=False)
        _run_until(periodic, clock, 16, runs, 2)
        assert runs[1:] == [(("ml", "glm"), Tick.ROLLOUT)], "the tick stops with the rollout"

        periodic.forget("ml", "glm")
        _run_until(periodic, clock, 40, runs, 3)
        assert len(runs) == 2, "a forgotten resource is not resynced"
    finally:
        periodic.stop()


def test_a_failing_tick_does_not_stop_the_next() -> None:
    runs: list[Key] = []
    clock = _Clock()

    def work(key: Key, tick: Tick) -> None:
        runs.append(key)
        raise RuntimeError("API server unavailable")

    periodic = Periodic(work, resync_seconds=1, rollout_seconds=1, workers=1, clock=clock)
    try:
        periodic.observe("ml", "glm", rolling=False)
        _run_until(periodic, clock, 1, runs, 1)
        _run_until(periodic, clock, 2, runs, 2)
        assert runs == [("ml", "glm")] * 2
    finally:
        periodic.stop()


def test_a_failed_resync_runs_again_after_the_retry_delay_and_keeps_its_schedule() -> None:
    runs: list[float] = []
    clock = _Clock()

    def work(key: Key, tick: Tick) -> None:
        runs.append(clock.now)
        if len(runs) == 1:
            raise RuntimeError("API server unavailable")

    periodic = Periodic(work, resync_seconds=30, rollout_seconds=2, workers=1, clock=clock, retry_seconds=10)
    try:
        periodic.observe("ml", "glm", rolling=False)
        _run_until(periodic, clock, 30, runs, 1)
        _run_until(periodic, clock, 40, runs, 2)
        assert runs == [30, 40], "retried 10 s after the failure, not 30 s"
        _run_until(periodic, clock, 59, runs, 3)
        assert runs == [30, 40]
        _run_until(periodic, clock, 60, runs, 3)
        assert runs == [30, 40, 60], "the regular schedule is unchanged by the retry"
    finally:
        periodic.stop()
