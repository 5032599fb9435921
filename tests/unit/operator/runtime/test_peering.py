"""The peering rule the operator's ticks follow (peering.py), as kopf applies it to its handlers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from kubernetes.client.exceptions import ApiException

from autoglm_operator.runtime.peering import CHECK_SECONDS, PeeringGate, outranked

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def _peer(priority: int, seen_seconds_ago: float, lifetime: int = 60) -> dict[str, Any]:
    return {"priority": priority, "lifetime": lifetime, "lastseen": (NOW - timedelta(seconds=seen_seconds_ago)).isoformat()}


def test_a_live_higher_priority_peer_outranks_and_nothing_else_does() -> None:
    me = _peer(100, 1)
    assert outranked([{"status": {"me": me, "high": _peer(200, 10)}}], 100, NOW)
    assert not outranked([{"status": {"me": me, "high": _peer(200, 61)}}], 100, NOW), "dead after its lifetime"
    assert not outranked([{"status": {"me": me, "same": _peer(100, 1)}}], 100, NOW), "equal priorities both run (kopf)"
    assert not outranked([{"status": {"me": me, "low": _peer(50, 1)}}], 100, NOW)
    assert not outranked([{}, {"status": {"junk": "x", "bad": {"priority": 300}}}], 100, NOW)
    assert outranked([{"status": {}}, {"status": {"high": _peer(200, 1)}}], 100, NOW), "any watched namespace's peering"


def test_the_gate_reads_at_most_every_few_seconds_and_keeps_its_answer_on_errors() -> None:
    reads: list[int] = []
    answers: list[Any] = [[{"status": {"high": _peer(200, 1)}}], ApiException(status=503), [{"status": {}}]]
    clock = [0.0]

    def read() -> list[dict[str, Any]]:
        reads.append(1)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    gate = PeeringGate(read, 100, clock=lambda: NOW, monotonic=lambda: clock[0])
    assert not gate.active() and not gate.active() and len(reads) == 1
    clock[0] += CHECK_SECONDS
    assert not gate.active(), "an unreadable peering object keeps the last answer"
    clock[0] += CHECK_SECONDS
    assert gate.active() and len(reads) == 3


def test_the_gate_reports_each_change_of_its_answer() -> None:
    """How a standby replica drops its per-resource metrics (run.py, reconcile/metrics.py)."""
    answers: list[Any] = [[{"status": {"high": _peer(200, 1)}}], ApiException(status=429), [{"status": {}}], [{"status": {}}]]
    clock = [0.0]
    changes: list[bool] = []

    def read() -> list[dict[str, Any]]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    gate = PeeringGate(read, 100, clock=lambda: NOW, monotonic=lambda: clock[0], changed=changes.append)
    for _ in range(4):
        gate.active()
        clock[0] += CHECK_SECONDS
    assert changes == [False, True]
