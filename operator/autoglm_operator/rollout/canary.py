"""The canary rollout as a pure state machine: (spec, status.canary, observations) -> next status and routing.

Nothing here reads a clock or the network. The reconciler passes the time, whether the canary's
Deployment is Ready, the consumed/pending control action and (only when `analysis_due` says so) the
analysis results; it gets back the next `status.canary`, the revision that is stable, the Istio
route, the revisions whose Deployments must exist, Events, and the verdict for the conditions.
Everything the machine needs later is in `status.canary`, so an operator restarted mid-rollout
continues at the same step, with the same weights and the same step timer.

Phases (status.canary.phase):
    Starting    canary Deployment created, weight 0, waiting for Ready within startupBudgetSeconds
    Progressing at step `step`: mirror or weight as the step says; one analysis per interval
    Paused      spec.rollout.paused: weights held, no analysis, no step timer
    Promoted    the canary became the stable revision; the old stable drains, then is deleted
    RolledBack  analysis failed failureLimit times or the startup budget ran out: 100/0, mirror off
    Aborted     like RolledBack, by a user's `abort`
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from autoglm_operator.api.rollout_spec import Rollout
from autoglm_operator.render.routing import Route
from autoglm_operator.status.conditions import Event, Verdict, timestamp

ACTIVE = ("Starting", "Progressing", "Paused")
FAILED = ("RolledBack", "Aborted")
ACTIONS = ("promote", "abort", "retry")
ACTION_ANNOTATION = "autoglm.io/rollout-action"
HISTORY = 5


@dataclasses.dataclass(frozen=True)
class Check:
    """One analysis check's outcome: result is Pass, Fail or NoData."""

    name: str
    result: str
    value: float | None = None
    stable: float | None = None
    message: str | None = None

    def as_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "result": self.result}
        for key, value in (("value", self.value), ("stable", self.stable), ("message", self.message)):
            if value is not None:
                out[key] = round(value, 6) if isinstance(value, float) else value
        return out


@dataclasses.dataclass(frozen=True)
class Observed:
    now: datetime
    name: str  # the resource, for the next step a failed rollout's message names
    namespace: str
    desired: str  # the spec's revision
    stable: str | None  # status.currentRevision (None for a new resource)
    stable_serving: bool  # the stable revision serves, or has served and is expected back (status.readiness.serves_nothing)
    canary_ready: bool  # the desired revision's Deployment is fully Ready
    action: str | None = None  # the autoglm.io/rollout-action annotation, as found
    analysis: Sequence[Check] | None = None  # measured now; only when analysis_due() said so


@dataclasses.dataclass(frozen=True)
class Decision:
    stable: str
    canary: dict[str, Any] | None  # next status.canary
    route: Route
    keep: frozenset[str]  # revisions whose Deployments must exist
    events: tuple[Event, ...] = ()
    verdict: Verdict | None = None  # overrides the plain readiness verdict while set


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _elapsed(since: str | None, now: datetime) -> float | None:
    start = parse_time(since)
    return None if start is None else (now - start).total_seconds()


def analysis_due(rollout: Rollout, canary: Mapping[str, Any] | None, desired: str, now: datetime) -> bool:
    """Whether this reconcile must query Prometheus: the current step's interval has elapsed."""
    c = canary or {}
    if c.get("phase") != "Progressing" or c.get("revision") != desired or rollout.paused:
        return False
    elapsed = _elapsed(c.get("stepStartedAt"), now)
    return elapsed is not None and elapsed >= rollout.interval_seconds


def step_traffic(rollout: Rollout, step: int) -> tuple[int, int]:
    """(weight, mirror) of a step."""
    s = rollout.steps[step]
    return (s.weight or 0, s.mirror or 0)


def parse_action(raw: str | None) -> str | None:
    """`promote` or `promote:<nonce>` -> `promote`; anything else -> None."""
    if not raw:
        return None
    verb = raw.split(":", 1)[0].strip().lower()
    return verb if verb in ACTIONS else None


class _Machine:
    """One decision; mutable scratch state, discarded after `decide` returns."""

    def __init__(self, rollout: Rollout, previous: Mapping[str, Any] | None, obs: Observed) -> None:
        self.r = rollout
        self.obs = obs
        self.now = obs.now
        self.c: dict[str, Any] = {k: v for k, v in (previous or {}).items() if v is not None}
        self.stable = obs.stable or obs.desired
        self.events: list[Event] = []

    # -- helpers ---------------------------------------------------------------------------
    def event(self, kind: str, reason: str, message: str) -> None:
        self.events.append(Event(kind, reason, message))

    def at(self, seconds: float) -> str:
        return timestamp(self.now + timedelta(seconds=seconds))

    def retire(self, revision: str) -> None:
        retiring = [e for e in self.c.get("retiring", []) if e["revision"] != revision]
        retiring.append({"revision": revision, "at": self.at(self.r.drain_delay_seconds)})
        self.c["retiring"] = retiring

    def unretire(self, revision: str) -> None:
        self.c["retiring"] = [e for e in self.c.get("retiring", []) if e["revision"] != revision]

    def record(self, result: str, message: str) -> None:
        entry = {"revision": self.c.get("revision"), "result": result, "finishedAt": timestamp(self.now), "message": message}
        self.c["history"] = [entry, *self.c.get("history", [])][:HISTORY]

    def set_traffic(self, weight: int, mirror: int) -> None:
        self.c["weight"], self.c["mirror"] = weight, mirror

    def start(self, revision: str) -> None:
        keep = {k: self.c[k] for k in ("history", "retiring", "lastAction") if k in self.c}
        self.c = {**keep, "revision": revision, "stable": self.stable, "phase": "Starting",
                  "startedAt": timestamp(self.now), "weight": 0, "mirror": 0, "failedChecks": 0,
                  "message": f"canary {revision} starting beside stable {self.stable}"}
        self.unretire(revision)
        self.event("Normal", "CanaryStarted", self.c["message"])

    def enter_step(self, step: int) -> None:
        weight, mirror = step_traffic(self.r, step)
        self.c.update(step=step, stepStartedAt=timestamp(self.now), phase="Progressing", noDataIntervals=0)
        self.set_traffic(weight, mirror)
        what = f"mirror {mirror}% (weight 0)" if mirror else f"weight {weight}%"
        self.c["message"] = f"step {step + 1}/{len(self.r.steps)}: {what}"
        self.event("Normal", "CanaryStep", f"canary {self.c['revision']} {self.c['message']}")

    def fail(self, phase: str, message: str) -> None:
        """Roll back: all traffic to stable, no mirror; the canary drains, then is deleted."""
        self.c.update(phase=phase, message=message)
        self.set_traffic(0, 0)
        self.c.pop("stepStartedAt", None)
        self.retire(self.c["revision"])
        self.record(phase, message)
        self.event("Warning", "Canary" + phase, f"canary {self.c['revision']}: {message}")

    def promote(self, message: str) -> None:
        """The canary's Deployment becomes stable as it is (no model reload); the old stable drains."""
        old, new = self.stable, self.c["revision"]
        self.retire(old)
        self.stable = new
        self.c.update(phase="Promoted", stable=new, message=message)
        self.set_traffic(0, 0)
        for key in ("step", "stepStartedAt", "noDataIntervals"):
            self.c.pop(key, None)
        self.record("Promoted", message)
        self.event("Normal", "CanaryPromoted", f"canary {new} promoted ({message}); {old} retires after "
                                               f"{self.r.drain_delay_seconds}s")

    # -- the transitions -------------------------------------------------------------------
    def run(self) -> Decision:
        obs, c = self.obs, self.c
        c["retiring"] = [e for e in c.get("retiring", []) if (parse_time(e.get("at")) or self.now) > self.now]
        action = self.take_action()
        if obs.stable is None or (obs.stable != obs.desired and not obs.stable_serving and c.get("phase") not in ACTIVE):
            # Nothing serves (new resource, or the old revision is gone or never got Ready): no one to protect.
            if obs.stable and obs.stable != obs.desired:
                self.retire(obs.stable)
            self.stable = obs.desired
            if c.get("phase") in ACTIVE and c.get("revision") != obs.desired:
                self.retire(c["revision"])
            c = self.c = {k: c[k] for k in ("history", "retiring", "lastAction") if k in c}
            return self.decision()
        if obs.desired == self.stable:
            if c.get("phase") in ACTIVE and c.get("revision") != self.stable:
                self.fail_superseded("the spec returned to the stable revision")
                c.pop("phase", None)
            self.apply_action(action)
            return self.decision()
        if c.get("revision") != obs.desired or c.get("stable") != self.stable:
            if c.get("phase") in ACTIVE and c.get("revision"):
                self.fail_superseded(f"superseded by revision {obs.desired}")
            self.start(obs.desired)
        self.apply_action(action)
        self.advance()
        return self.decision()

    def fail_superseded(self, message: str) -> None:
        self.retire(self.c["revision"])
        self.record("Superseded", message)
        self.event("Normal", "CanarySuperseded", f"canary {self.c['revision']}: {message}")

    def take_action(self) -> str | None:
        raw = self.obs.action
        if not raw or raw == self.c.get("lastAction"):
            return None
        self.c["lastAction"] = raw
        verb = parse_action(raw)
        if verb is None:
            self.event("Warning", "CanaryActionIgnored", f"unknown rollout action {raw!r} (use promote, abort or retry)")
        return verb

    def apply_action(self, action: str | None) -> None:
        c, phase = self.c, self.c.get("phase")
        if action is None:
            return
        if action == "abort" and phase in ACTIVE:
            self.fail("Aborted", "aborted by the user")
        elif action == "promote" and phase in ("Progressing", "Paused"):
            if self.obs.canary_ready:
                self.promote("promoted by the user")
            else:
                self.event("Warning", "CanaryActionIgnored", "promote refused: the canary is not Ready")
        elif action == "retry" and phase in FAILED:
            self.start(c["revision"])
        else:
            self.event("Normal", "CanaryActionIgnored", f"{action} has nothing to do in phase {phase}")

    def advance(self) -> None:
        c, r, obs = self.c, self.r, self.obs
        phase = c.get("phase")
        if phase not in ACTIVE:
            return
        if r.paused:
            if phase != "Paused":
                c.update(phase="Paused", paused=True)
                self.event("Normal", "CanaryPaused", f"canary {c['revision']} paused at weight {c.get('weight', 0)}, "
                                                     f"mirror {c.get('mirror', 0)}")
            return
        if phase == "Paused":
            c.pop("paused", None)
            if c.get("step") is None:
                c.update(phase="Starting", startedAt=timestamp(self.now))
            else:
                # A full fresh interval: what happened while paused is not judged.
                c.update(phase="Progressing", stepStartedAt=timestamp(self.now))
            self.event("Normal", "CanaryResumed", f"canary {c['revision']} resumed")
            phase = c["phase"]
        if phase == "Starting":
            if obs.canary_ready:
                self.enter_step(0)
                return
            elapsed = _elapsed(c.get("startedAt"), self.now)
            if elapsed is None or elapsed < -r.startup_budget_seconds:
                c["startedAt"] = timestamp(self.now)  # unreadable or far-future start: count from now
            elif elapsed > r.startup_budget_seconds:
                self.fail("RolledBack", f"startupBudget: not Ready after {int(elapsed)}s "
                                        f"(budget {r.startup_budget_seconds}s)")
            return
        self.progress()

    def progress(self) -> None:
        c, r, obs = self.c, self.r, self.obs
        raw = c.get("step")
        if raw is None or int(raw) >= len(r.steps):
            self.enter_step(min(int(raw or 0), len(r.steps) - 1))  # missing, or the steps were shortened
            return
        step = int(raw)
        elapsed = _elapsed(c.get("stepStartedAt"), self.now)
        if elapsed is None or elapsed < -r.interval_seconds:
            # Unreadable, or from a clock far ahead of ours: restart the step timer, keep the weights.
            self.event("Warning", "CanaryClockSkew", f"step start {c.get('stepStartedAt')!r} unusable; timer restarted")
            c["stepStartedAt"] = timestamp(self.now)
            return
        if elapsed < r.interval_seconds:
            return
        checks = list(obs.analysis or [])
        if not obs.canary_ready:
            checks.append(Check("canaryReady", "Fail", message="canary pods not Ready"))
        if obs.analysis is None and obs.canary_ready:
            checks.append(Check("prometheus", "NoData", message="no analysis result"))
        c["analysis"] = [ch.as_status() for ch in checks]
        c["stepStartedAt"] = timestamp(self.now)
        failed = [ch for ch in checks if ch.result == "Fail"]
        missing = [ch for ch in checks if ch.result == "NoData"]
        rule = r.analysis.no_data
        if not failed and missing:
            if rule == "fail":
                failed = missing
            elif rule == "wait":
                c["noDataIntervals"] = int(c.get("noDataIntervals", 0)) + 1
                if c["noDataIntervals"] >= r.analysis.no_data_limit:
                    c["noDataIntervals"] = 0
                    limit = f"no data for {r.analysis.no_data_limit} intervals"
                    failed = [dataclasses.replace(ch, result="Fail", message=f"{limit}: {ch.message}" if ch.message else limit)
                              for ch in missing]
                else:
                    c["message"] = (f"step {step + 1}/{len(r.steps)}: waiting for data {c['noDataIntervals']}/"
                                    f"{r.analysis.no_data_limit}: {_describe_all(missing)}")
                    return
        if failed:
            c["failedChecks"] = int(c.get("failedChecks", 0)) + 1
            why = _describe_all(failed)
            if c["failedChecks"] >= r.failure_limit:
                self.fail("RolledBack", f"analysis failed {c['failedChecks']}/{r.failure_limit}: {why}")
            else:
                c["message"] = f"step {step + 1}/{len(r.steps)}: analysis failed {c['failedChecks']}/{r.failure_limit}: {why}"
                self.event("Warning", "CanaryAnalysisFailed", f"canary {c['revision']} {c['message']}")
            return
        c["noDataIntervals"] = 0
        if step + 1 < len(r.steps):
            self.enter_step(step + 1)
        else:
            self.promote(f"all {len(r.steps)} steps passed")

    def decision(self) -> Decision:
        c = self.c
        phase = c.get("phase")
        canary = c.get("revision") if phase in ACTIVE or (phase in FAILED and self._retiring(c.get("revision"))) else None
        if canary == self.stable:
            canary = None
        route = Route(
            stable=self.stable,
            canary=canary,
            weight=int(c.get("weight", 0)) if canary and phase in ACTIVE else 0,
            mirror=int(c.get("mirror", 0)) if canary and phase in ACTIVE else 0,
            testers=bool(canary) and phase in ("Progressing", "Paused"),
        )
        keep = {self.stable, *(e["revision"] for e in c.get("retiring", []))}
        if phase in ACTIVE:
            keep.add(c["revision"])
        status = {k: v for k, v in c.items() if v not in (None, [])} or None
        return Decision(self.stable, status, route, frozenset(keep), tuple(self.events), self.verdict())

    def _retiring(self, revision: str | None) -> bool:
        return any(e["revision"] == revision for e in self.c.get("retiring", []))

    def verdict(self) -> Verdict | None:
        c = self.c
        phase, rev = c.get("phase"), c.get("revision")
        if phase in ("Starting", "Progressing"):
            msg = f"canary {rev}: {c.get('message', phase)}; stable {self.stable} serves {100 - int(c.get('weight', 0))}%"
            return Verdict(False, "CanaryProgressing", msg, "CanaryProgressing")
        if phase == "Paused":
            return Verdict(False, "RolloutPaused", f"canary {rev} paused at weight {c.get('weight', 0)}%, mirror "
                                                   f"{c.get('mirror', 0)}%; set spec.rollout.paused=false to resume",
                           "RolloutPaused")
        if phase in FAILED and rev != self.stable and rev == self.obs.desired:
            nxt = (f"next: `kubectl autoglm rollout retry {self.obs.name} -n {self.obs.namespace}` to run this canary "
                   f"again, or change the spec (back to revision {self.stable}, or to a new revision)")
            return Verdict(False, phase, f"canary {rev}: {c.get('message', phase)}; stable {self.stable} serves 100%; {nxt}")
        return None


def _describe_all(checks: Sequence[Check]) -> str:
    """Checks in words, for status and Events. Checks without a value that share a reason (every
    query fails alike when Prometheus cannot be reached) are named after it, so the reason leads,
    said once, and is not cut off behind copies of itself."""
    by_reason: dict[str, list[str]] = {}
    measured = []
    for check in checks:
        if check.value is None and check.message:
            by_reason.setdefault(check.message, []).append(check.name)
        else:
            measured.append(_describe(check))
    return "; ".join([f"{reason} [{', '.join(names)}]" for reason, names in by_reason.items()] + measured)


def _describe(check: Check) -> str:
    text = f"{check.name}"
    if check.value is not None:
        text += f"={check.value:.4g}"
    if check.message:
        text += f" ({check.message})"
    return text


def decide(rollout: Rollout, previous: Mapping[str, Any] | None, obs: Observed) -> Decision:
    """The next state of the rollout. Pure: the same inputs always give the same decision."""
    return _Machine(rollout, previous, obs).run()


def without_rollout(previous: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """status.canary once spec.rollout is removed: only the history is worth keeping."""
    history = (previous or {}).get("history")
    return {"history": history} if history else None
