"""The canary state machine: every transition, from status + observations to the next status and route."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from autoglm_operator.api.rollout_spec import Rollout
from autoglm_operator.api.schema import parse
from autoglm_operator.api.status import Phase
from autoglm_operator.rollout.canary import (
    CanaryState, Check, Observed, analysis_due, decide, drain_checks, parse_action, retirement, without_rollout,
)
from autoglm_operator.render.drain_hook import SETTLE_SECONDS
from autoglm_operator.api.timestamps import format_time

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
OK = [Check("successRate", "Pass", 1.0, 1.0), Check("ttftP95", "Pass", 0.2, 0.2)]
SLOW = [Check("successRate", "Pass", 1.0), Check("ttftP95", "Fail", 3.5, 0.2, "above 2s")]
NODATA = [Check("successRate", "NoData"), Check("ttftP95", "NoData")]


def rollout(**fields: Any) -> Rollout:
    body = {"steps": [{"mirror": 20}, {"weight": 5}, {"weight": 25}, {"weight": 50}], "intervalSeconds": 10,
            "startupBudgetSeconds": 60, "failureLimit": 2, "drainDelaySeconds": 30, **fields}
    return parse(Rollout, body, "spec.rollout")


def obs(seconds: float, **fields: Any) -> Observed:
    base: dict[str, Any] = {"name": "glm", "namespace": "ml", "desired": "new", "stable": "old", "stable_serving": True,
                            "canary_ready": True}
    return Observed(now=T0 + timedelta(seconds=seconds), **{**base, **fields})


class Driver:
    """Feeds the machine like the reconciler does: analysis only when due."""

    def __init__(self, r: Rollout, status: dict[str, Any] | None = None, stable: str = "old") -> None:
        self.r, self.status, self.stable = r, status, stable
        self.events: list[str] = []

    def at(self, seconds: float, checks: list[Check] | None = OK, **fields: Any):
        now = T0 + timedelta(seconds=seconds)
        due = analysis_due(self.r, self.status, fields.get("desired", "new"), now)
        d = decide(self.r, self.status, obs(seconds, stable=self.stable, analysis=checks if due else None, **fields))
        self.status, self.stable = d.canary, d.stable
        self.events += [e.reason for e in d.events]
        return d


def test_no_stable_yet_serves_the_desired_revision_at_once():
    d = decide(rollout(), None, obs(0, stable=None, canary_ready=False))
    assert d.stable == "new" and d.route.canary is None and d.route.revisions == ["new"]
    assert d.canary is None and d.verdict is None


def test_unchanged_spec_is_idle_and_deterministic():
    a = decide(rollout(), None, obs(0, desired="old"))
    b = decide(rollout(), a.canary, obs(100, desired="old"))
    assert a == b and a.route.revisions == ["old"] and a.keep == {"old"}


def test_healthy_canary_walks_every_step_then_promotes_and_drains_the_old_stable():
    drv = Driver(rollout())
    d = drv.at(0, canary_ready=False)
    assert d.canary["phase"] == "Starting" and (d.route.weight, d.route.mirror) == (0, 0)
    assert d.route.canary == "new" and d.keep == {"old", "new"}
    assert d.verdict.reason == "CanaryProgressing" and d.verdict.progress
    seen = []
    d = drv.at(2)  # Ready: step 0 (mirror)
    seen.append((d.route.weight, d.route.mirror))
    for t in (12, 22, 32):
        d = drv.at(t)
        seen.append((d.route.weight, d.route.mirror))
    assert seen == [(0, 20), (5, 0), (25, 0), (50, 0)]
    assert drv.status["step"] == 3
    d = drv.at(35)  # interval not over: nothing changes
    assert d.canary == drv.status and (d.route.weight, d.route.mirror) == (50, 0)
    d = drv.at(42)
    assert d.stable == "new" and d.canary["phase"] == "Promoted" and d.route.canary is None
    assert d.route.revisions == ["new"] and d.keep == {"new", "old"}, "old stable drains first"
    assert d.canary["retiring"] == [{"revision": "old", "since": format_time(T0 + timedelta(seconds=42)),
                                     "at": format_time(T0 + timedelta(seconds=72))}]
    assert d.canary["history"][0]["result"] == "Promoted" and d.verdict is None
    d = drv.at(80, desired="new")  # no reading of its requests: the drain budget decides
    assert d.keep == {"new"} and "retiring" not in d.canary
    assert drv.events == ["CanaryStarted", "CanaryStep", "CanaryStep", "CanaryStep", "CanaryStep", "CanaryPromoted",
                          "RevisionRetired"]


def test_failing_analysis_rolls_back_at_the_failure_limit_with_the_check_and_value():
    drv = Driver(rollout())
    drv.at(0)  # Starting -> step 0 at once (Ready)
    assert drv.status["phase"] == "Progressing"
    drv.at(10)
    assert drv.status["step"] == 1
    d = drv.at(20, SLOW)
    assert d.canary["failedChecks"] == 1 and d.canary["phase"] == "Progressing" and d.route.weight == 5
    assert d.canary["stepStartedAt"] == format_time(T0 + timedelta(seconds=20)), "the step is observed again"
    d = drv.at(30, SLOW)
    assert d.canary["phase"] == "RolledBack" and (d.route.weight, d.route.mirror) == (0, 0)
    assert d.route.canary == "new" and d.stable == "old"
    assert d.verdict.reason == "RolledBack" and not d.verdict.ready and "ttftP95=3.5" in d.verdict.message
    assert {"name": "ttftP95", "result": "Fail", "value": 3.5, "stable": 0.2, "message": "above 2s"} in d.canary["analysis"]
    assert d.keep == {"old", "new"}
    d = drv.at(61)  # drain delay over: canary gone, rollback sticks while the spec asks for it
    assert d.keep == {"old"} and d.route.revisions == ["old"] and d.verdict.reason == "RolledBack"
    assert "CanaryRolledBack" in drv.events and "CanaryAnalysisFailed" in drv.events


def test_failures_count_across_steps():
    drv = Driver(rollout(failureLimit=2))
    drv.at(0)
    drv.at(10, SLOW)
    assert drv.status["failedChecks"] == 1 and drv.status["step"] == 0
    drv.at(20)
    assert drv.status["step"] == 1
    drv.at(30, SLOW)
    assert drv.status["phase"] == "RolledBack"


def test_canary_that_never_gets_ready_is_rolled_back_when_the_startup_budget_ends_not_before():
    drv = Driver(rollout(startupBudgetSeconds=60))
    for t in (0, 30, 60):
        d = drv.at(t, canary_ready=False)
        assert d.canary["phase"] == "Starting", t
    d = drv.at(61, canary_ready=False)
    assert d.canary["phase"] == "RolledBack" and "startupBudget" in d.canary["message"]
    assert d.verdict.reason == "RolledBack"


def test_no_data_waits_then_counts_as_one_failure():
    drv = Driver(rollout(analysis={"noDataLimit": 2}))
    drv.at(0)
    d = drv.at(10, NODATA)
    assert d.canary["noDataIntervals"] == 1 and d.canary["step"] == 0 and "waiting for data" in d.canary["message"]
    assert d.canary.get("failedChecks") == 0
    d = drv.at(20, NODATA)
    assert d.canary["failedChecks"] == 1 and d.canary["noDataIntervals"] == 0
    d = drv.at(30, OK)
    assert d.canary["step"] == 1


@pytest.mark.parametrize(("rule", "phase", "step"), [("pass", "Progressing", 1), ("fail", "Progressing", 0)])
def test_no_data_rules(rule, phase, step):
    drv = Driver(rollout(analysis={"noData": rule}))
    drv.at(0)
    d = drv.at(10, NODATA)
    assert d.canary["phase"] == phase and d.canary["step"] == step
    assert d.canary["failedChecks"] == (1 if rule == "fail" else 0)


def test_missing_analysis_result_is_no_data():
    drv = Driver(rollout(analysis={"noData": "fail"}, failureLimit=1))
    drv.at(0)
    d = drv.at(10, None)
    assert d.canary["phase"] == "RolledBack" and "prometheus" in d.canary["message"]


def test_canary_losing_readiness_fails_the_analysis_instead_of_advancing():
    drv = Driver(rollout())
    drv.at(0)
    d = drv.at(10, OK, canary_ready=False)
    assert d.canary["step"] == 0 and d.canary["failedChecks"] == 1 and "canaryReady" in d.canary["message"]


def test_restart_resumes_from_status_without_resetting_weights_or_the_timer():
    drv = Driver(rollout())
    drv.at(0)
    drv.at(10)
    saved = dict(drv.status)
    # A fresh machine (new operator process) with the stored status, 4 s later: nothing changes.
    d = decide(rollout(), saved, obs(14))
    assert d.canary == saved and d.route.weight == 5 and not d.events
    assert not analysis_due(rollout(), saved, "new", T0 + timedelta(seconds=14))
    assert analysis_due(rollout(), saved, "new", T0 + timedelta(seconds=20))


def test_clock_skew_small_backwards_waits_large_forward_restarts_timer_but_keeps_weights():
    drv = Driver(rollout())
    drv.at(0)
    drv.at(10)
    d = decide(rollout(), drv.status, obs(5))  # our clock is 5 s behind whoever wrote the status
    assert d.canary == drv.status
    skewed = {**drv.status, "stepStartedAt": format_time(T0 + timedelta(hours=1))}
    d = decide(rollout(), skewed, obs(20))
    assert d.canary["stepStartedAt"] == format_time(T0 + timedelta(seconds=20)) and d.route.weight == 5
    assert [e.reason for e in d.events] == ["CanaryClockSkew"]
    garbled = {**drv.status, "stepStartedAt": "yesterday"}
    d = decide(rollout(), garbled, obs(20))
    assert d.canary["stepStartedAt"] == format_time(T0 + timedelta(seconds=20)) and d.route.weight == 5


def test_status_with_missing_fields_is_repaired_not_reset():
    d = decide(rollout(), {"revision": "new", "stable": "old", "phase": "Progressing"}, obs(0))
    assert d.canary["step"] == 0 and d.route.mirror == 20
    d = decide(rollout(steps=[{"weight": 10}]), {"revision": "new", "stable": "old", "phase": "Progressing",
                                                  "step": 3, "stepStartedAt": format_time(T0)}, obs(1))
    assert d.canary["step"] == 0 and d.route.weight == 10


def test_pause_holds_weights_across_intervals_and_resume_gives_a_fresh_interval():
    drv = Driver(rollout())
    drv.at(0)
    drv.at(10)
    paused = rollout(paused=True)
    drv.r = paused
    for t in (12, 25, 40, 90):
        d = drv.at(t, SLOW)
        assert d.canary["phase"] == "Paused" and d.route.weight == 5 and d.canary["step"] == 1
        assert d.verdict.reason == "RolloutPaused" and d.verdict.progress
    drv.r = rollout()
    d = drv.at(91)
    assert d.canary["phase"] == "Progressing" and d.canary["stepStartedAt"] == format_time(T0 + timedelta(seconds=91))
    assert d.route.weight == 5
    d = drv.at(101)
    assert d.canary["step"] == 2
    assert drv.events.count("CanaryPaused") == 1 and drv.events.count("CanaryResumed") == 1


def test_pause_while_starting_resumes_into_starting():
    drv = Driver(rollout(paused=True))
    d = drv.at(0, canary_ready=False)
    assert d.canary["phase"] == "Paused" and d.route.weight == 0
    drv.r = rollout()
    d = drv.at(500, canary_ready=False)
    assert d.canary["phase"] == "Starting" and d.canary["startedAt"] == format_time(T0 + timedelta(seconds=500))


def test_promote_skips_the_remaining_steps_and_is_idempotent():
    drv = Driver(rollout())
    drv.at(0)
    d = drv.at(3, action="promote:1")
    assert d.stable == "new" and d.canary["phase"] == "Promoted" and d.canary["lastAction"] == "promote:1"
    again = drv.at(4, action="promote:1", desired="new")
    assert again.canary == d.canary and not again.events
    other = drv.at(5, action="promote:2", desired="new")
    assert other.stable == "new" and [e.reason for e in other.events] == ["CanaryActionIgnored"]


def test_promote_refused_while_the_canary_is_not_ready():
    drv = Driver(rollout())
    drv.at(0)
    d = drv.at(1, action="promote:1", canary_ready=False)
    assert d.stable == "old" and "CanaryActionIgnored" in drv.events


def test_abort_from_every_active_phase_and_twice():
    for prep in ("starting", "progressing", "paused"):
        drv = Driver(rollout(paused=prep == "paused"))
        drv.at(0, canary_ready=prep != "starting")
        d = drv.at(1, action="abort:x", canary_ready=prep != "starting")
        assert d.canary["phase"] == "Aborted" and d.route.weight == 0 and d.route.mirror == 0, prep
        assert d.verdict.reason == "Aborted" and d.stable == "old"
        assert d.verdict.message == (
            "canary new: aborted by the user; stable old serves 100%; next: `kubectl autoglm rollout retry glm -n ml` "
            "to run this canary again, or change the spec (back to revision old, or to a new revision)"), "what to do next"
        again = drv.at(2, action="abort:x")
        assert again.canary["phase"] == "Aborted" and not again.events
        later = drv.at(3, action="abort:y")
        assert later.canary["phase"] == "Aborted" and [e.reason for e in later.events] == ["CanaryActionIgnored"]


def test_retry_after_rollback_starts_over_and_keeps_history():
    drv = Driver(rollout(failureLimit=1))
    drv.at(0)
    drv.at(10, SLOW)
    assert drv.status["phase"] == "RolledBack"
    assert "next: `kubectl autoglm rollout retry glm -n ml`" in drv.at(10.5).verdict.message
    d = drv.at(11, action="retry:1", canary_ready=False)  # its Deployment is created again
    assert d.canary["phase"] == "Starting" and d.canary["failedChecks"] == 0 and d.keep == {"old", "new"}
    assert d.canary["history"][0]["result"] == "RolledBack" and "retiring" not in d.canary
    d = drv.at(12)
    assert d.canary["phase"] == "Progressing" and d.route.mirror == 20
    d = drv.at(13, action="retry:2")
    assert [e.reason for e in d.events] == ["CanaryActionIgnored"]


def test_unknown_action_is_reported_once():
    drv = Driver(rollout())
    drv.at(0)
    d = drv.at(1, action="yolo")
    assert [e.reason for e in d.events] == ["CanaryActionIgnored"] and d.canary["lastAction"] == "yolo"
    assert not drv.at(2, action="yolo").events
    assert parse_action("Promote:abc") == "promote" and parse_action("") is None


def test_new_spec_supersedes_the_running_canary_and_starts_again_against_the_same_stable():
    drv = Driver(rollout())
    drv.at(0)
    drv.at(10)
    d = drv.at(12, desired="newer")
    assert d.canary["revision"] == "newer" and d.canary["phase"] == "Progressing" and d.canary["step"] == 0
    assert d.stable == "old" and d.route.canary == "newer" and d.route.mirror == 20
    assert d.keep == {"old", "new", "newer"} and d.canary["history"][0]["result"] == "Superseded"
    assert d.canary["retiring"][0]["revision"] == "new"


def test_reverting_the_spec_to_stable_ends_the_canary():
    drv = Driver(rollout())
    drv.at(0)
    d = drv.at(5, desired="old")
    assert d.route.revisions == ["old"] and d.verdict is None and "phase" not in d.canary
    assert d.keep == {"old", "new"}


def test_stable_without_ready_pods_switches_at_once_like_without_a_rollout():
    d = decide(rollout(), None, obs(0, stable_serving=False))
    assert d.stable == "new" and d.route.canary is None and d.keep == {"new", "old"}


def test_mirror_and_weight_never_together_and_weights_in_range():
    drv = Driver(rollout(steps=[{"mirror": 100}, {"weight": 99}]))
    d = drv.at(0)
    assert (d.route.weight, d.route.mirror) == (0, 100)
    d = drv.at(10)
    assert (d.route.weight, d.route.mirror) == (99, 0)


def test_traffic_says_what_the_canary_gets_weight_mirror_or_how_it_ended():
    """status.canary.traffic is the Canary printer column: a mirror step must not read 0, nor a rollback."""
    drv = Driver(rollout(steps=[{"mirror": 20}, {"weight": 30}]))
    assert drv.at(0).canary["traffic"] == "mirror 20%"
    assert drv.at(10).canary["traffic"] == "30%"
    assert drv.at(11, action="abort:1").canary["traffic"] == "Aborted"
    assert Driver(rollout()).at(0, canary_ready=False).canary["traffic"] == "0%", "Starting: no traffic yet"


def test_header_route_only_while_the_canary_takes_traffic():
    drv = Driver(rollout())
    assert not drv.at(0, canary_ready=False).route.testers
    assert drv.at(1).route.testers
    assert not drv.at(2, action="abort:1").route.testers


def test_removing_the_rollout_keeps_only_history():
    assert without_rollout({"phase": "Progressing", "history": [{"revision": "a"}]}) == {"history": [{"revision": "a"}]}
    assert without_rollout({"phase": "Progressing"}) is None


def test_canary_state_reads_and_writes_the_status_keys_unchanged():
    status = {"revision": "new", "stable": "old", "phase": "Progressing", "startedAt": "2025-01-01T12:00:00Z",
              "step": 1, "stepStartedAt": "2025-01-01T12:00:10Z", "weight": 5, "mirror": 0, "failedChecks": 1,
              "noDataIntervals": 0, "paused": False, "message": "step 2/4: weight 5%", "lastAction": "abort:1",
              "traffic": "5%",
              "analysis": [{"name": "ttftP95", "result": "Pass", "value": 0.2}],
              "retiring": [{"revision": "older", "at": "2025-01-01T12:01:00Z"}],
              "history": [{"revision": "old", "result": "Promoted"}]}
    state = CanaryState.from_status(status)
    assert state.phase is Phase.PROGRESSING and state.step_started_at == "2025-01-01T12:00:10Z"
    written = state.to_status()
    assert written == status and type(written["phase"]) is str, "same keys, same values, plain strings"
    assert CanaryState.from_status({"phase": "Bogus", "message": None}).phase is None, "unknown phase: none"
    assert CanaryState.from_status(None).to_status() is None and CanaryState(retiring=[]).to_status() is None


@pytest.mark.parametrize("ending", ["rolled back", "superseded by the revert"])
def test_a_canary_spec_applied_again_after_a_revert_to_stable_is_a_new_attempt(ending):
    """Issue 15, fault 9: failure state keyed by revision only kept the old RolledBack for good."""
    drv = Driver(rollout(failureLimit=1))
    drv.at(0)
    if ending == "rolled back":
        drv.at(10, SLOW)
        assert drv.status["phase"] == "RolledBack"
    d = drv.at(11, desired="old")  # a GitOps revert to the stable spec
    assert d.verdict is None and d.route.revisions == ["old"] and "phase" not in d.canary
    assert d.canary["history"][0]["revision"] == "new", "the attempt that ended stays in the history"
    drv.events.clear()
    d = drv.at(12, canary_ready=False)  # the cause fixed, the same canary spec applied again
    assert d.canary["phase"] == "Starting" and d.canary["revision"] == "new" and d.canary["failedChecks"] == 0
    assert d.keep == {"old", "new"} and d.route.canary == "new"
    assert drv.events == ["CanaryStarted"]
    assert drv.at(13).canary["phase"] == "Progressing"


def test_a_rollback_stays_while_the_spec_keeps_asking_for_the_failed_revision():
    drv = Driver(rollout(failureLimit=1))
    drv.at(0)
    drv.at(10, SLOW)
    for t in (11, 100, 1000):  # resyncs and unrelated edits (same revision): the same attempt, no restart
        d = drv.at(t)
        assert d.canary["phase"] == "RolledBack"
        assert [e.reason for e in d.events] == (["RevisionRetired"] if t == 100 else []), "only the canary's retirement"


def _promoted_at_42() -> Driver:
    drv = Driver(rollout())
    for t in (0, 2, 12, 22, 32, 42):
        drv.at(t)
    assert drv.status["phase"] == "Promoted"
    return drv


def test_the_old_stable_retires_once_prometheus_reports_it_drained_after_the_settle_time():
    drv = _promoted_at_42()
    assert drain_checks(drv.status, T0 + timedelta(seconds=42 + SETTLE_SECONDS - 1)) == [], "routes still settling"
    assert drain_checks(drv.status, T0 + timedelta(seconds=42 + SETTLE_SECONDS)) == ["old"]
    d = drv.at(42 + SETTLE_SECONDS, desired="new", in_flight={"old": 3.0})
    assert d.keep == {"new", "old"} and d.canary["retiring"][0]["inFlight"] == 3.0, "still serving three streams"
    d = drv.at(50, desired="new", in_flight={"old": None})  # Prometheus gave no answer: keep the last reading
    assert d.keep == {"new", "old"} and d.canary["retiring"][0]["inFlight"] == 3.0
    d = drv.at(52, desired="new", in_flight={"old": 0.0})
    assert d.keep == {"new"} and "retiring" not in d.canary
    assert drv.events[-1] == "RevisionRetired" and "drained" in d.events[-1].message


def test_a_retirement_never_outlives_its_budget():
    drv = _promoted_at_42()
    drv.at(60, desired="new", in_flight={"old": 2.0})
    d = drv.at(72, desired="new", in_flight={"old": 2.0})
    assert d.keep == {"new"} and d.events[-1].reason == "RevisionRetired"
    assert "budget (30s) ended with 2 request(s) in flight" in d.events[-1].message


@pytest.mark.parametrize(("entry", "reading", "seconds", "why"), [
    ({"at": "2025-01-01T12:01:00Z", "since": "2025-01-01T12:00:00Z"}, 0.0, 4, None),  # settling
    ({"at": "2025-01-01T12:01:00Z", "since": "2025-01-01T12:00:00Z"}, 0.0, 5, "drained"),
    ({"at": "2025-01-01T12:01:00Z", "since": "2025-01-01T12:00:00Z"}, 1.0, 30, None),
    ({"at": "2025-01-01T12:01:00Z", "since": "2025-01-01T12:00:00Z"}, None, 30, None),
    ({"at": "2025-01-01T12:01:00Z", "since": "2025-01-01T12:00:00Z"}, 1.0, 60, "budget"),
    ({"at": "2025-01-01T12:01:00Z"}, 0.0, 1, "drained"),  # written before `since` existed
    ({"at": "not a time"}, 1.0, 1, "budget"),
])
def test_retirement(entry, reading, seconds, why):
    assert retirement({"revision": "old", **entry}, reading, T0 + timedelta(seconds=seconds)) == why
