"""One deadline per key (scheduler.py), on a fake clock with runs in the test's thread."""
from __future__ import annotations

import contextvars
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from kubernetes.client.exceptions import ApiException

from autoglm_operator.runtime.scheduler import Scheduler


def at(manual, scheduler: Scheduler, now: float) -> int:
    manual.now = now
    return scheduler.run_due()


def test_a_key_runs_once_at_its_deadline_and_requests_while_it_waits_coalesce(manual) -> None:
    runs: list[tuple[float, str]] = []
    scheduler: Scheduler[str] = Scheduler("test", lambda key: runs.append((manual.now, key)), manual, clock=manual)
    assert scheduler.schedule("a", 1.0)
    assert not scheduler.schedule("a", 0.5), "waiting already: nothing changes"
    assert scheduler.schedule("b", 1.0)
    assert at(manual, scheduler, 0.99) == 0
    assert at(manual, scheduler, 1.0) == 2
    assert runs == [(1.0, "a"), (1.0, "b")], "equal deadlines run in the order asked"
    assert not scheduler.pending("a")
    assert at(manual, scheduler, 50) == 0, "one run only"
    assert scheduler.schedule("a", 1.0), "after its run a key can be asked for again"
    assert at(manual, scheduler, 51) == 1


def test_reschedule_moves_the_deadline_either_way_and_cancel_drops_it(manual) -> None:
    runs: list[float] = []
    scheduler: Scheduler[str] = Scheduler("test", lambda key: runs.append(manual.now), manual, clock=manual)
    scheduler.reschedule("a", 10)
    scheduler.reschedule("a", 20)
    assert at(manual, scheduler, 10) == 0, "the first deadline no longer counts"
    scheduler.reschedule("a", 5)  # at 10: due at 15
    assert at(manual, scheduler, 15) == 1 and runs == [15]
    scheduler.schedule("b", 1, every=1)
    scheduler.cancel("b")
    scheduler.reschedule("c", 1)
    scheduler.cancel("c")
    assert at(manual, scheduler, 100) == 0 and scheduler.keys() == []


def test_a_repeating_key_runs_every_period_until_cancelled(manual) -> None:
    runs: list[float] = []
    scheduler: Scheduler[str] = Scheduler("test", lambda key: runs.append(manual.now), manual, clock=manual)
    scheduler.schedule("a", 10, every=10)
    assert not scheduler.schedule("a", 1, every=1), "ticks already"
    for now in (9.9, 10, 15, 20, 30):
        at(manual, scheduler, now)
    assert runs == [10, 20, 30]
    scheduler.cancel("a")
    assert at(manual, scheduler, 40) == 0


def test_a_failed_repeating_run_is_retried_sooner_and_keeps_its_schedule(manual) -> None:
    runs: list[float] = []

    def work(key: str) -> None:
        runs.append(manual.now)
        if len(runs) == 1:
            raise RuntimeError("API server unavailable")

    scheduler: Scheduler[str] = Scheduler("test", work, manual, clock=manual, retry_seconds=10)
    scheduler.schedule("a", 30, every=30)
    for now in (30, 39, 40, 59, 60):
        at(manual, scheduler, now)
    assert runs == [30, 40, 60], "retried 10 s after the failure; the regular run still at 60"


def test_no_retry_when_the_next_regular_run_comes_sooner_nor_for_a_cancelled_key(manual) -> None:
    runs: list[float] = []

    def work(key: str) -> None:
        runs.append(manual.now)
        if key == "gone":
            scheduler.cancel(key)
        raise RuntimeError("API server unavailable")

    scheduler: Scheduler[str] = Scheduler("test", work, manual, clock=manual, retry_seconds=10)
    scheduler.schedule("a", 2, every=2)
    for now in (2, 4, 6):
        at(manual, scheduler, now)
    assert runs == [2, 4, 6]
    scheduler.cancel("a")
    scheduler.schedule("gone", 30, every=30)  # at 6
    for now in (36, 46, 66):
        at(manual, scheduler, now)
    assert runs == [2, 4, 6, 36], "a key cancelled by its own run is not retried"


def test_runs_happen_only_while_this_replica_is_active(manual) -> None:
    runs: list[float] = []
    active = [False]
    scheduler: Scheduler[str] = Scheduler("test", lambda key: runs.append(manual.now), manual, clock=manual,
                                          active=lambda: active[0])
    scheduler.schedule("tick", 1, every=1)
    scheduler.schedule("once", 1)
    at(manual, scheduler, 1)
    assert runs == [] and scheduler.keys() == ["tick"], "a one-shot run due on a standby is dropped"
    active[0] = True
    at(manual, scheduler, 2)
    assert runs == [2], "the repeating key kept its schedule"


def test_the_work_runs_in_the_context_of_the_first_request(manual) -> None:
    """kopf.event reads kopf's settings from context variables set in kopf's own tasks."""
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")
    seen: list[str] = []
    scheduler: Scheduler[str] = Scheduler("test", lambda key: seen.append(var.get("unset")), manual, clock=manual)
    var.set("kopf's settings")
    scheduler.schedule("a", 1, every=1)
    var.set("later")
    scheduler.schedule("a", 1, every=1)
    at(manual, scheduler, 1)
    at(manual, scheduler, 2)
    assert seen == ["kopf's settings"] * 2


def test_a_429_is_logged_at_debug_and_other_errors_with_their_traceback(manual, caplog) -> None:
    errors = iter([ApiException(status=429, reason="Too Many Requests"), RuntimeError("boom")])

    def work(key: str) -> None:
        raise next(errors)

    scheduler: Scheduler[str] = Scheduler("test", work, manual, clock=manual)
    caplog.set_level(logging.DEBUG, logger="autoglm.scheduler")
    scheduler.schedule("a", 1, every=1)
    at(manual, scheduler, 1)
    at(manual, scheduler, 2)
    levels = [(r.levelno, r.exc_info is not None) for r in caplog.records]
    assert levels == [(logging.DEBUG, False), (logging.ERROR, True)]


def test_the_thread_runs_due_keys_and_stop_ends_it() -> None:
    """The real loop, once: a key due at once runs on the pool; after stop nothing is accepted."""
    ran = threading.Event()
    scheduler: Scheduler[str] = Scheduler("test", lambda key: ran.set(), ThreadPoolExecutor(1))
    scheduler.start()
    scheduler.schedule("a", 0)
    assert ran.wait(5)
    scheduler.stop()
    assert scheduler._thread is not None
    scheduler._thread.join(5)
    assert not scheduler._thread.is_alive()
    scheduler.schedule("b", 0)
    assert scheduler.run_due() == 0, "stopped"


@pytest.mark.parametrize("after", [-5.0, 0.0])
def test_a_deadline_in_the_past_is_due_at_once(manual, after: float) -> None:
    runs: list[str] = []
    scheduler: Scheduler[str] = Scheduler("test", runs.append, manual, clock=manual)
    scheduler.reschedule("a", after)
    assert scheduler.run_due() == 1 and runs == ["a"]
