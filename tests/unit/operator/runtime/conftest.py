"""A scheduler's time and threads made explicit (runtime/scheduler.py): tests move a fake clock
and run what is due at once, in the test's thread, with no sleeps."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

import pytest


class Manual(Executor):
    """A fake monotonic clock (call it) and an executor that runs submitted work at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        done: Future[Any] = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except Exception as exc:
            done.set_exception(exc)
        return done


@pytest.fixture
def manual() -> Manual:
    return Manual()
