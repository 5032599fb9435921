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

Retiring (status.canary.retiring): a revision that lost its traffic (the old stable after a
promotion, a canary after a rollback, abort or supersession) keeps its Deployment until Prometheus
reports no request in flight on it (the engine's running and waiting gauges, `Observed.in_flight`),
read once the route change has had SETTLE_SECONDS to reach the proxies, or until its drain budget
(spec.rollout.drainDelaySeconds) ends, whichever comes first (`retirement`). No reading (Prometheus
unreachable, no series) is not "drained": the budget decides then, so a retirement never waits for
ever. Deleting the Deployment then stops each pod through its preStop drain hook
(render/drain_hook.py), which waits on the engine itself, so streams survive a stale or absent
Prometheus too; this wait keeps the revision visible in the status while it drains.
    RolledBack  analysis failed failureLimit times or the startup budget ran out: 100/0, mirror off
    Aborted     like RolledBack, by a user's `abort`
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from autoglm_operator.api.rollout_spec import Rollout
from autoglm_operator.api.schema import camel
from autoglm_operator.api.status import Phase
from autoglm_operator.render.drain_hook import SETTLE_SECONDS
from autoglm_operator.render.routing import Route
from autoglm_operator.api.timestamps import format_time, parse_time
from autoglm_operator.status.conditions import Event, Verdict

ACTIVE = (Phase.STARTING, Phase.PROGRESSING, Phase.PAUSED)
FAILED = (Phase.ROLLED_BACK, Phase.ABORTED)
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


@dataclasses.dataclass
class CanaryState:
    """`status.canary` as the machine works on it: attributes, so a misspelt field is an error, not
    a silent new key. `from_status` and `to_status` are the only places that know the wire keys
    (api/status.py `Canary`, camelCase); the past records (`analysis`, `retiring`, `history`) stay
    as written, since the machine only filters, prepends and trims them.

    Not api/status.py `Canary` itself: that type is the CRD's schema, frozen, with `phase` a plain
    string (a `Phase` there would add an `enum` to the CRD), and `schema.parse` refuses a status the
    machine must recover from (an unreadable timestamp, an unknown phase, a record missing a field).
    """

    revision: str | None = None
    stable: str | None = None
    phase: Phase | None = None
    started_at: str | None = None
    step: int | None = None
    step_started_at: str | None = None
    weight: int | None = None
    mirror: int | None = None
    failed_checks: int | None = None
    no_data_intervals: int | None = None
    paused: bool | None = None
    message: str | None = None
    analysis: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    last_action: str | None = None
    retiring: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> CanaryState:
        """Read `status.canary` as stored (None or absent: no canary yet). An unknown phase (a
        hand-edited status) reads as no phase, which the machine already treats as inactive."""
        data = status or {}
        values = {f.name: data[camel(f.name)] for f in dataclasses.fields(cls) if data.get(camel(f.name)) is not None}
        if "phase" in values:
            values["phase"] = _phase(values["phase"])
        return cls(**values)

    def to_status(self) -> dict[str, Any] | None:
        """The `status.canary` to write: unset and empty fields left out, None when nothing is left."""
        out = {camel(f.name): getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.phase is not None:
            out["phase"] = self.phase.value
            out["traffic"] = self.traffic()
        return {k: v for k, v in out.items() if v not in (None, [])} or None

    def traffic(self) -> str:
        """status.canary.traffic, the Canary column: the live weight, the mirror share during a mirror step
        (weight 0 there, so a weight column alone reads 0), or the phase once the rollout is over."""
        if self.phase not in ACTIVE:
            return self.phase.value if self.phase else ""
        return f"mirror {self.mirror}%" if self.mirror else f"{self.weight or 0}%"

    def carried(self) -> CanaryState:
        """What outlives one canary: the past rollouts, the drains under way, the last action consumed."""
        return CanaryState(history=self.history, retiring=self.retiring, last_action=self.last_action)


def _phase(raw: Any) -> Phase | None:
    try:
        return Phase(raw)
    except ValueError:
        return None


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
    # Requests in flight (running + waiting) per retiring revision, as Prometheus reports them now;
    # only for the revisions drain_checks() named, None where no reading could be had.
    in_flight: Mapping[str, float | None] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Decision:
    stable: str
    canary: dict[str, Any] | None  # next status.canary
    route: Route
    keep: frozenset[str]  # revisions whose Deployments must exist
    events: tuple[Event, ...] = ()
    verdict: Verdict | None = None  # overrides the plain readiness verdict while set


def read_time(text: str | None) -> datetime | None:
    """A status timestamp, or None where it is missing or unreadable (the machine recovers from a
    hand-edited status instead of failing)."""
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None


def _elapsed(since: str | None, now: datetime) -> float | None:
    start = read_time(since)
    return None if start is None else (now - start).total_seconds()


def analysis_due(rollout: Rollout, canary: Mapping[str, Any] | None, desired: str, now: datetime) -> bool:
    """Whether this reconcile must query Prometheus: the current step's interval has elapsed."""
    c = CanaryState.from_status(canary)
    if c.phase != Phase.PROGRESSING or c.revision != desired or rollout.paused:
        return False
    elapsed = _elapsed(c.step_started_at, now)
    return elapsed is not None and elapsed >= rollout.interval_seconds


def retirement(entry: Mapping[str, Any], in_flight: float | None, now: datetime) -> str | None:
    """Why a retiring revision's Deployment is deleted now: "drained" (no request in flight, read at
    least SETTLE_SECONDS after its traffic left, when new requests no longer reach it), "budget"
    (its deadline `at` passed, or is unreadable), or None: it keeps draining. `entry` is a
    status.canary.retiring item; one without `since` (written before it existed) counts as settled."""
    deadline = read_time(entry.get("at"))
    if deadline is None or deadline <= now:
        return "budget"
    since = read_time(entry.get("since"))
    settled = since is None or (now - since).total_seconds() >= SETTLE_SECONDS
    return "drained" if settled and in_flight == 0 else None


def drain_checks(canary: Mapping[str, Any] | None, now: datetime) -> list[str]:
    """The retiring revisions whose requests in flight this reconcile must read (`Observed.in_flight`):
    those past their settle time and before their deadline."""
    return [e["revision"] for e in CanaryState.from_status(canary).retiring
            if retirement(e, 0, now) == "drained"]


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

    def __init__(self, rollout: Rollout, previous: CanaryState, obs: Observed) -> None:
        self.r = rollout
        self.obs = obs
        self.now = obs.now
        self.c = previous
        self.stable = obs.stable or obs.desired
        self.events: list[Event] = []

    # -- helpers ---------------------------------------------------------------------------
    def event(self, kind: str, reason: str, message: str) -> None:
        self.events.append(Event(kind, reason, message))

    def at(self, seconds: float) -> str:
        return format_time(self.now + timedelta(seconds=seconds))

    def retire(self, revision: str) -> None:
        retiring = [e for e in self.c.retiring if e["revision"] != revision]
        retiring.append({"revision": revision, "since": format_time(self.now), "at": self.at(self.r.drain_delay_seconds)})
        self.c.retiring = retiring

    def follow_drains(self) -> None:
        """Delete the retiring revisions that drained or ran out of budget (`retirement`); record the
        latest reading of the others (status.canary.retiring[].inFlight)."""
        kept = []
        for entry in self.c.retiring:
            revision = entry["revision"]
            reading = self.obs.in_flight.get(revision)
            why = retirement(entry, reading, self.now)
            if why == "drained":
                self.event("Normal", "RevisionRetired", f"revision {revision} retired: drained (no request in flight)")
            elif why == "budget":
                left = entry.get("inFlight")
                said = "an unknown number of" if left is None else f"{left:g}"
                # Normal: each pod still drains through its own preStop hook (render/drain_hook.py).
                self.event("Normal", "RevisionRetired", f"revision {revision} retired: its drain budget "
                           f"({self.r.drain_delay_seconds}s) ended with {said} request(s) in flight at the last "
                           f"reading; its pods drain on their own")
            else:
                kept.append({**entry, "inFlight": reading} if reading is not None else entry)
        self.c.retiring = kept

    def unretire(self, revision: str) -> None:
        self.c.retiring = [e for e in self.c.retiring if e["revision"] != revision]

    def record(self, result: str, message: str) -> None:
        entry = {"revision": self.c.revision, "result": result, "finishedAt": format_time(self.now), "message": message}
        self.c.history = [entry, *self.c.history][:HISTORY]

    def set_traffic(self, weight: int, mirror: int) -> None:
        self.c.weight, self.c.mirror = weight, mirror

    def start(self, revision: str) -> None:
        self.c = dataclasses.replace(
            self.c.carried(), revision=revision, stable=self.stable, phase=Phase.STARTING,
            started_at=format_time(self.now), weight=0, mirror=0, failed_checks=0,
            message=f"canary {revision} starting beside stable {self.stable}",
        )
        self.unretire(revision)
        self.event("Normal", "CanaryStarted", self.c.message)

    def enter_step(self, step: int) -> None:
        c = self.c
        weight, mirror = step_traffic(self.r, step)
        c.step, c.step_started_at, c.phase, c.no_data_intervals = step, format_time(self.now), Phase.PROGRESSING, 0
        self.set_traffic(weight, mirror)
        what = f"mirror {mirror}% (weight 0)" if mirror else f"weight {weight}%"
        c.message = f"step {step + 1}/{len(self.r.steps)}: {what}"
        self.event("Normal", "CanaryStep", f"canary {c.revision} {c.message}")

    def fail(self, phase: Phase, message: str) -> None:
        """Roll back: all traffic to stable, no mirror; the canary drains, then is deleted."""
        c = self.c
        c.phase, c.message = phase, message
        self.set_traffic(0, 0)
        c.step_started_at = None
        self.retire(c.revision)
        self.record(phase.value, message)
        self.event("Warning", "Canary" + phase.value, f"canary {c.revision}: {message}")

    def promote(self, message: str) -> None:
        """The canary's Deployment becomes stable as it is (no model reload); the old stable drains."""
        c = self.c
        old, new = self.stable, c.revision
        self.retire(old)
        self.stable = new
        c.phase, c.stable, c.message = Phase.PROMOTED, new, message
        self.set_traffic(0, 0)
        c.step = c.step_started_at = c.no_data_intervals = None
        self.record(Phase.PROMOTED.value, message)
        self.event("Normal", "CanaryPromoted", f"canary {new} promoted ({message}); {old} retires once drained, "
                                               f"within {self.r.drain_delay_seconds}s")

    # -- the transitions -------------------------------------------------------------------
    def run(self) -> Decision:
        obs, c = self.obs, self.c
        self.follow_drains()
        action = self.take_action()
        if obs.stable is None or (obs.stable != obs.desired and not obs.stable_serving and c.phase not in ACTIVE):
            # Nothing serves (new resource, or the old revision is gone or never got Ready): no one to protect.
            if obs.stable and obs.stable != obs.desired:
                self.retire(obs.stable)
            self.stable = obs.desired
            if c.phase in ACTIVE and c.revision != obs.desired:
                self.retire(c.revision)
            self.c = c.carried()
            return self.decision()
        if obs.desired == self.stable:
            if c.phase in ACTIVE and c.revision != self.stable:
                self.fail_superseded("the spec returned to the stable revision")
            if c.revision is not None and c.revision != self.stable:
                # That attempt is over (its end is in the history, its Deployment drains): the same
                # canary spec applied again is a new attempt, not the old failure (issue 15, fault 9:
                # a rolled-back revision could come back only through `rollout retry`).
                self.c = self.c.carried()
            self.apply_action(action)
            return self.decision()
        if c.revision != obs.desired or c.stable != self.stable:
            if c.phase in ACTIVE and c.revision:
                self.fail_superseded(f"superseded by revision {obs.desired}")
            self.start(obs.desired)
        self.apply_action(action)
        self.advance()
        return self.decision()

    def fail_superseded(self, message: str) -> None:
        self.retire(self.c.revision)
        self.record("Superseded", message)
        self.event("Normal", "CanarySuperseded", f"canary {self.c.revision}: {message}")

    def take_action(self) -> str | None:
        raw = self.obs.action
        if not raw or raw == self.c.last_action:
            return None
        self.c.last_action = raw
        verb = parse_action(raw)
        if verb is None:
            self.event("Warning", "CanaryActionIgnored", f"unknown rollout action {raw!r} (use promote, abort or retry)")
        return verb

    def apply_action(self, action: str | None) -> None:
        c, phase = self.c, self.c.phase
        if action is None:
            return
        if action == "abort" and phase in ACTIVE:
            self.fail(Phase.ABORTED, "aborted by the user")
        elif action == "promote" and phase in (Phase.PROGRESSING, Phase.PAUSED):
            if self.obs.canary_ready:
                self.promote("promoted by the user")
            else:
                self.event("Warning", "CanaryActionIgnored", "promote refused: the canary is not Ready")
        elif action == "retry" and phase in FAILED:
            self.start(c.revision)
        else:
            self.event("Normal", "CanaryActionIgnored", f"{action} has nothing to do in phase {phase}")

    def advance(self) -> None:
        c, r, obs = self.c, self.r, self.obs
        phase = c.phase
        if phase not in ACTIVE:
            return
        if r.paused:
            if phase != Phase.PAUSED:
                c.phase, c.paused = Phase.PAUSED, True
                self.event("Normal", "CanaryPaused", f"canary {c.revision} paused at weight {c.weight or 0}, "
                                                     f"mirror {c.mirror or 0}")
            return
        if phase == Phase.PAUSED:
            c.paused = None
            if c.step is None:
                c.phase, c.started_at = Phase.STARTING, format_time(self.now)
            else:
                # A full fresh interval: what happened while paused is not judged.
                c.phase, c.step_started_at = Phase.PROGRESSING, format_time(self.now)
            self.event("Normal", "CanaryResumed", f"canary {c.revision} resumed")
            phase = c.phase
        if phase == Phase.STARTING:
            if obs.canary_ready:
                self.enter_step(0)
                return
            elapsed = _elapsed(c.started_at, self.now)
            if elapsed is None or elapsed < -r.startup_budget_seconds:
                c.started_at = format_time(self.now)  # unreadable or far-future start: count from now
            elif elapsed > r.startup_budget_seconds:
                self.fail(Phase.ROLLED_BACK, f"startupBudget: not Ready after {int(elapsed)}s "
                                        f"(budget {r.startup_budget_seconds}s)")
            return
        self.progress()

    def progress(self) -> None:
        c, r, obs = self.c, self.r, self.obs
        raw = c.step
        if raw is None or int(raw) >= len(r.steps):
            self.enter_step(min(int(raw or 0), len(r.steps) - 1))  # missing, or the steps were shortened
            return
        step = int(raw)
        elapsed = _elapsed(c.step_started_at, self.now)
        if elapsed is None or elapsed < -r.interval_seconds:
            # Unreadable, or from a clock far ahead of ours: restart the step timer, keep the weights.
            self.event("Warning", "CanaryClockSkew", f"step start {c.step_started_at!r} unusable; timer restarted")
            c.step_started_at = format_time(self.now)
            return
        if elapsed < r.interval_seconds:
            return
        checks = list(obs.analysis or [])
        if not obs.canary_ready:
            checks.append(Check("canaryReady", "Fail", message="canary pods not Ready"))
        if obs.analysis is None and obs.canary_ready:
            checks.append(Check("prometheus", "NoData", message="no analysis result"))
        c.analysis = [ch.as_status() for ch in checks]
        c.step_started_at = format_time(self.now)
        failed = [ch for ch in checks if ch.result == "Fail"]
        missing = [ch for ch in checks if ch.result == "NoData"]
        rule = r.analysis.no_data
        if not failed and missing:
            if rule == "fail":
                failed = missing
            elif rule == "wait":
                c.no_data_intervals = int(c.no_data_intervals or 0) + 1
                if c.no_data_intervals >= r.analysis.no_data_limit:
                    c.no_data_intervals = 0
                    limit = f"no data for {r.analysis.no_data_limit} intervals"
                    failed = [dataclasses.replace(ch, result="Fail", message=f"{limit}: {ch.message}" if ch.message else limit)
                              for ch in missing]
                else:
                    c.message = (f"step {step + 1}/{len(r.steps)}: waiting for data {c.no_data_intervals}/"
                                    f"{r.analysis.no_data_limit}: {_describe_all(missing)}")
                    return
        if failed:
            c.failed_checks = int(c.failed_checks or 0) + 1
            why = _describe_all(failed)
            if c.failed_checks >= r.failure_limit:
                self.fail(Phase.ROLLED_BACK, f"analysis failed {c.failed_checks}/{r.failure_limit}: {why}")
            else:
                c.message = f"step {step + 1}/{len(r.steps)}: analysis failed {c.failed_checks}/{r.failure_limit}: {why}"
                self.event("Warning", "CanaryAnalysisFailed", f"canary {c.revision} {c.message}")
            return
        c.no_data_intervals = 0
        if step + 1 < len(r.steps):
            self.enter_step(step + 1)
        else:
            self.promote(f"all {len(r.steps)} steps passed")

    def decision(self) -> Decision:
        c = self.c
        phase = c.phase
        canary = c.revision if phase in ACTIVE or (phase in FAILED and self._retiring(c.revision)) else None
        if canary == self.stable:
            canary = None
        route = Route(
            stable=self.stable,
            canary=canary,
            weight=int(c.weight or 0) if canary and phase in ACTIVE else 0,
            mirror=int(c.mirror or 0) if canary and phase in ACTIVE else 0,
            testers=bool(canary) and phase in (Phase.PROGRESSING, Phase.PAUSED),
        )
        keep = {self.stable, *(e["revision"] for e in c.retiring)}
        if phase in ACTIVE:
            keep.add(c.revision)
        return Decision(self.stable, c.to_status(), route, frozenset(keep), tuple(self.events), self.verdict())

    def _retiring(self, revision: str | None) -> bool:
        return any(e["revision"] == revision for e in self.c.retiring)

    def verdict(self) -> Verdict | None:
        c = self.c
        phase, rev = c.phase, c.revision
        if phase is None:
            return None
        said = phase.value if c.message is None else c.message
        if phase in (Phase.STARTING, Phase.PROGRESSING):
            msg = f"canary {rev}: {said}; stable {self.stable} serves {100 - int(c.weight or 0)}%"
            return Verdict(False, "CanaryProgressing", msg, "CanaryProgressing")
        if phase == Phase.PAUSED:
            return Verdict(False, "RolloutPaused", f"canary {rev} paused at weight {c.weight or 0}%, mirror "
                                                   f"{c.mirror or 0}%; set spec.rollout.paused=false to resume",
                           "RolloutPaused")
        if phase in FAILED and rev != self.stable and rev == self.obs.desired:
            nxt = (f"next: `kubectl autoglm rollout retry {self.obs.name} -n {self.obs.namespace}` to run this canary "
                   f"again, or change the spec (back to revision {self.stable}, or to a new revision)")
            return Verdict(False, phase.value, f"canary {rev}: {said}; stable {self.stable} serves 100%; {nxt}")
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
    return _Machine(rollout, CanaryState.from_status(previous), obs).run()


def without_rollout(previous: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """status.canary once spec.rollout is removed: only the history is worth keeping."""
    return CanaryState(history=CanaryState.from_status(previous).history).to_status()
