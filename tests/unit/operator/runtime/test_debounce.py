"""A burst of child events becomes one converge, after the burst (debounce.py)."""
from __future__ import annotations

import threading
import time

from autoglm_operator.runtime.debounce import Debouncer


def test_a_burst_converges_once_and_a_later_event_once_more() -> None:
    runs: list[object] = []
    done = threading.Event()

    def work(key: object) -> None:
        runs.append(key)
        done.set()

    debouncer = Debouncer(work, delay=0.2, workers=2)
    started = time.monotonic()
    assert debouncer.request(("ml", "glm"))
    assert not debouncer.request(("ml", "glm"))  # the same burst
    assert debouncer.request(("ml", "other"))
    assert done.wait(5)
    time.sleep(0.3)
    assert sorted(runs) == [("ml", "glm"), ("ml", "other")]
    assert time.monotonic() - started >= 0.2

    done.clear()
    assert debouncer.request(("ml", "glm"))  # after the run: a new burst
    assert done.wait(5)
    assert runs.count(("ml", "glm")) == 2


def test_a_failing_converge_does_not_stop_later_ones() -> None:
    ran = threading.Event()

    def work(key: object) -> None:
        if key == "bad":
            raise RuntimeError("API server unavailable")
        ran.set()

    debouncer = Debouncer(work, delay=0.05, workers=1)
    debouncer.request("bad")
    debouncer.request("good")
    assert ran.wait(5)


def test_the_work_sees_the_context_of_its_request() -> None:
    """kopf.event reads kopf's settings from context variables set in kopf's own tasks."""
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")
    seen: list[str] = []
    done = threading.Event()

    def work(key: object) -> None:
        seen.append(var.get("unset"))
        done.set()

    debouncer = Debouncer(work, delay=0.05, workers=1)
    var.set("kopf's settings")
    debouncer.request("glm")
    assert done.wait(5)
    assert seen == ["kopf's settings"]
