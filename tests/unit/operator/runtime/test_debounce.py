"""A burst of child events becomes one converge, after the burst (debounce.py), on a fake clock."""
from __future__ import annotations

from autoglm_operator.runtime.debounce import Debouncer


def test_a_burst_converges_once_and_a_later_event_once_more(manual) -> None:
    runs: list[tuple[float, object]] = []
    debouncer = Debouncer(lambda key: runs.append((manual.now, key)), delay=1.0, executor=manual, clock=manual)
    assert debouncer.request(("ml", "glm"))
    manual.now = 0.5
    assert not debouncer.request(("ml", "glm"))  # the same burst
    assert debouncer.request(("ml", "other"))
    manual.now = 1.0
    debouncer.scheduler.run_due()
    assert runs == [(1.0, ("ml", "glm"))], "1 s after the first event of the burst"
    manual.now = 1.5
    debouncer.scheduler.run_due()
    assert runs[1:] == [(1.5, ("ml", "other"))]

    assert debouncer.request(("ml", "glm"))  # after the run: a new burst
    manual.now = 2.5
    debouncer.scheduler.run_due()
    assert runs[2:] == [(2.5, ("ml", "glm"))]


def test_a_forgotten_resource_is_not_converged(manual) -> None:
    runs: list[object] = []
    debouncer = Debouncer(runs.append, delay=1.0, executor=manual, clock=manual)
    debouncer.request(("ml", "glm"))
    debouncer.forget(("ml", "glm"))
    manual.now = 5
    assert debouncer.scheduler.run_due() == 0 and runs == []


def test_a_failing_converge_does_not_stop_later_ones(manual) -> None:
    runs: list[object] = []

    def work(key: object) -> None:
        runs.append(key)
        if key == "bad":
            raise RuntimeError("API server unavailable")

    debouncer = Debouncer(work, delay=0.05, executor=manual, clock=manual)
    debouncer.request("bad")
    debouncer.request("good")
    manual.now = 1
    debouncer.scheduler.run_due()
    assert runs == ["bad", "good"]
