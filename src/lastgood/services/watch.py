"""The watch: every live deployment of an environment, judged every few seconds, for as long as
it is live.

One `tick(env)` reads a live window per deployment from the MetricSource, assesses it against
the baseline the domain rules choose (`lastgood.domain.watching`), and then:

- marks an unverified deployment verified once its bake window passed HEALTHY, writing the
  verified record with its own measured window (headline numbers + the full Summary);
- records a baseline where none can be found (a first deployment, or one verified by hand);
- on DEGRADED/FAILED asks `decide()`: ROLLBACK starts `DeploymentService.rollback` with the
  evidence as reason and trigger; PAUSE hands the regression to a human and does nothing else;
  INCONCLUSIVE never acts (safety rule 9).

A decision is written as an audit event (`watch.decision`) and told to the notifier when it
changes, not at every tick (a deployment that stays HEALTHY writes nothing); INCONCLUSIVE is
written only once it has lasted `quiet_inconclusive`, because every fresh window starts
without samples. In-memory state (first evidence, a self-recorded baseline) is rebuilt after a
restart; pauses are read back from the audit log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from lastgood.domain.baselines import (
    STATED_KEY,
    headline,
    summary_plus,
    summary_to_dict,
)
from lastgood.domain.decisions import ActionKind, Decision, DecisionKind, RecentAction, decide
from lastgood.domain.deployments import Deployment, VerifiedRecord
from lastgood.domain.errors import Escalated, LastGoodError, OperationInProgress
from lastgood.domain.health import Assessment, HealthPolicy, Verdict, assess
from lastgood.domain.measurements import LiveWindow
from lastgood.domain.watching import (
    assessment_view,
    beyond_tolerance,
    decision_view,
    first_evidence,
    leaning,
    one_liner,
    recent_actions,
    recorded_baseline,
)
from lastgood.ports import Clock, MetricSource, Notifier, UnitOfWorkFactory
from lastgood.services.deployments import DeploymentService
from lastgood.services.policies import PolicyBook
from lastgood.services.rollback_readiness import ReadinessWatch
from lastgood.services.watch_basis import Basis, Track, baseline_ready, basis_for
from lastgood.services.watch_blame import HeldBack, held_back, say_held_back
from lastgood.services.watch_lease import AlwaysActing, WatchLease
from lastgood.services.watch_output import WatchOutput, window_view

log = logging.getLogger("lastgood.watch")

WATCH_ACTOR = "lastgood-watch"

DEFAULT_INTERVAL_S = 1.0
"""Seconds between looks. A look costs one read of the counters and a few milliseconds of
arithmetic, and the sequential tests stay valid however often they look, so looking every second
costs no false alarms and takes seconds off every detection (benchmarks/detection.py)."""

QUICK_SHARE = 0.2
"""While the evidence leans toward a regression (`leaning`: a signal's e-value above 1, none
decided yet) the watch looks five times as often: every 0.2 s at the default interval, never
more often than every 0.1 s. Why: the counters are cumulative, so a look sees only the evidence
at that instant. Each error raises a rate test's evidence by a jump and every good request after
it lowers it a little, so a look a second later can miss a crossing of the threshold that the
requests just after the error made (at 1 % -> 5 % and 10 requests/s, looking once a second
costs about a second of the median, benchmarks/detection.py). A healthy deployment, whose
evidence sits below 1 nearly always, is still looked at about once a second (the benchmark
counts the looks). Looking more often catches every crossing a slower look would, on healthy
traffic too, but where the looks fall, even when chosen from the data, cannot push false alarms
past alpha: the tests are valid at every stopping time, down to a look after every request."""

MIN_QUICK_S = 0.1

READ_SLACK = timedelta(seconds=5)
"""How far a source's reading may be later than the start of the look and still be the look's
time (the replicas answered meanwhile); a larger gap is the clocks', and said so."""


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """Timing of the watch."""

    interval_s: float = DEFAULT_INTERVAL_S  # between ticks
    quick_share: float = QUICK_SHARE  # of interval_s between ticks while the evidence leans
    segment: timedelta = timedelta(minutes=30)  # a verified deployment's window restarts
    quiet_inconclusive: timedelta = timedelta(seconds=60)  # before INCONCLUSIVE is written
    actor: str = WATCH_ACTOR

    @property
    def quick_interval_s(self) -> float:
        """Seconds between ticks while the evidence leans toward a regression (QUICK_SHARE)."""
        return min(self.interval_s, max(self.interval_s * self.quick_share, MIN_QUICK_S))


@dataclass(frozen=True, slots=True)
class Observation:
    """What one tick saw and did for one live deployment."""

    model: str
    env: str
    version: int
    deployment_id: int
    assessment: Assessment
    decision: Decision
    baseline_from: str
    action: str = ""  # "", "verified", "baseline recorded", "rolled back to v2", "paused", ...


@dataclass(frozen=True, slots=True)
class _Recorded:
    action: str
    reason: str


class WatchService:
    """Judges live deployments and acts on the verdicts; see the module docstring."""

    def __init__(self, *, uow: UnitOfWorkFactory, deployments: DeploymentService,
                 source: MetricSource, notifier: Notifier, clock: Clock, policies: PolicyBook,
                 settings: WatchSettings = WatchSettings()):
        self._uow, self._deployments, self._source = uow, deployments, source
        self._clock, self._policies = clock, policies
        self.settings = settings
        self._out = WatchOutput(uow=uow, notifier=notifier, clock=clock, actor=settings.actor,
                                source=source.describe())
        self._tracks: dict[int, Track] = {}
        self._readiness = ReadinessWatch(uow=uow, notifier=notifier, clock=clock,
                                         actor=settings.actor)

    # -- the loop --------------------------------------------------------------------------

    def run(self, env: str, *, stop: threading.Event,
            on_tick: Callable[[list[Observation]], None] | None = None,
            lease: WatchLease | AlwaysActing | None = None) -> None:
        """Tick every `interval_s` until `stop` is set; a failing tick is logged, never fatal.

        With a `lease`, only the watch holding it looks and acts; the others stand by."""
        held = lease or AlwaysActing()
        try:
            while not stop.is_set():
                started = self._clock.monotonic()
                seen: list[Observation] = []
                try:
                    if held.hold().acting:
                        seen = self.tick(env)
                        if on_tick is not None:
                            on_tick(seen)
                    else:
                        self._tracks.clear()  # what another watch decided is not ours
                except Exception:  # the registry is down, or a bug: keep watching (rule 8)
                    log.exception("watch tick of %s failed; trying again", env)
                stop.wait(max(self.pace(seen) - (self._clock.monotonic() - started), 0.0))
        finally:
            held.release()

    def pace(self, seen: Sequence[Observation]) -> float:
        """Seconds from this look to the next: `quick_interval_s` while the evidence about a
        deployment just seen leans toward a regression (and it was not rolled back), else
        `interval_s` (see QUICK_SHARE)."""
        quick = any(leaning(o.assessment) and not o.action.startswith("rolled back")
                    for o in seen)
        return self.settings.quick_interval_s if quick else self.settings.interval_s

    def tick(self, env: str) -> list[Observation]:
        """One pass over every live deployment of `env`."""
        with self._uow() as uow:
            live = [d for d in (uow.deployments.live(m.name, env) for m in uow.models.list())
                    if d is not None]
        seen = []
        for dep in live:
            try:
                seen.append(self.watch(dep))
            except LastGoodError as exc:  # the registry failed for this one: next tick
                log.warning("watching %s v%s in %s failed: %s", dep.model, dep.version, env,
                            exc.one_line())
            except Exception:  # a broken adapter must not stop the others being watched
                log.exception("watching %s v%s in %s failed", dep.model, dep.version, env)
            self._look_at_readiness(dep)
        live_ids = {d.id for d in live}
        self._tracks = {k: v for k, v in self._tracks.items() if k in live_ids}
        self._readiness.forget({(d.model, d.env) for d in live})
        return seen

    def _look_at_readiness(self, dep: Deployment) -> None:
        try:
            verdict = self._deployments.status(dep.model, env=dep.env).readiness
            self._readiness.observe(dep.model, dep.env, dep.version, verdict)
        except Exception:  # readiness is news, never a reason to stop watching
            log.exception("reading the rollback readiness of %s in %s failed", dep.model,
                          dep.env)

    # -- one deployment --------------------------------------------------------------------

    def watch(self, dep: Deployment) -> Observation:
        """Read, assess, verify or decide for one live deployment."""
        track = self._track(dep)
        with self._uow() as uow:
            history = uow.deployments.history(dep.model, dep.env)
        policy = self._policies.policy(dep.model, dep.env)
        now = self._clock.now()
        basis = basis_for(dep, track, history, policy, now=now, segment=self.settings.segment)
        window = self._source.window(dep.model, dep.env, dep.version, since=basis.since)
        # The look is as of the reading: a source whose clock ticked while it read is not
        # "in the future" of the moment the look began.
        if timedelta(0) < window.observed_at - now <= READ_SLACK:
            now = window.observed_at
        if basis.summary is None:
            return self._without_baseline(dep, track, policy, basis, window, now)
        assessment = assess(policy, basis.summary, window, now=now, stated=basis.stated)
        self._note_evidence(track, policy, assessment, window, now)
        action = ""
        # Not while a judged signal is past its tolerance, significant or not: a slow regression
        # (accuracy from sparse labels) would otherwise become its own baseline.
        if dep.verified is None and basis.provisional:
            if baseline_ready(policy, window, now):
                action = self._record_own(dep, track, window).action
        elif dep.verified is None and assessment.verifiable \
                and not beyond_tolerance(policy, assessment):
            action = self._verify(dep, policy, basis, window, assessment)
        elif dep.verified is not None and recorded_baseline(dep) is None \
                and baseline_ready(policy, window, now):
            action = self._attach_baseline(dep, window, now)
        actions = self._history(track, history)
        decision = decide(assessment, policy, actions, now)
        held = held_back(policy, basis.summary, window, decision, actions, now=now,
                         stated=basis.stated, history=history, live_version=dep.version)
        if held is not None:
            assessment, decision = say_held_back(assessment, decision, held)
        obs = Observation(dep.model, dep.env, dep.version, dep.id, assessment, decision,
                          basis.source, action)
        self._note_held_back(dep, track, obs, window, held)
        return self._act(dep, track, obs, window)

    def _note_held_back(self, dep: Deployment, track: Track, obs: Observation,
                        window: LiveWindow, held: HeldBack | None) -> None:
        """Write (and tell) once when the input's errors start holding a rollback back."""
        was, track.held_back = track.held_back, held is not None
        if held is None or was:
            return
        line = one_liner(dep.model, dep.env, dep.version, obs.decision)
        evidence = {**self._evidence(dep, track, obs, window),
                    "held_back": str(held.would_have.kind), "cause": "input",
                    "reproduced": {"events": held.reproduced.events,
                                   "trials": held.reproduced.trials},
                    "note": held.note}
        try:
            self._out.write(dep, "watch.held_back", line, evidence,
                            after=decision_view(obs.decision))
        except LastGoodError as exc:  # the registry is down: still tell people
            log.warning("could not write the held-back decision: %s", exc.one_line())
        self._out.notify(dep, "held_back", obs.decision.verdict, line, "warning", evidence)

    def _track(self, dep: Deployment) -> Track:
        track = self._tracks.get(dep.id)
        if track is None:
            track = self._tracks[dep.id] = Track(dep.id, paused_at=self._paused_at(dep))
        return track

    def _paused_at(self, dep: Deployment) -> datetime | None:
        """When a regression of `dep` was last handed to a human (from the audit log)."""
        with self._uow() as uow:
            events = uow.events.list(model=dep.model, env=dep.env)
        pauses = [e.at for e in events if e.action == "watch.decision"
                  and (e.draft.evidence or {}).get("deployment_id") == dep.id
                  and (e.draft.after or {}).get("decision") == str(DecisionKind.PAUSE)]
        return max(pauses, default=None)

    def _history(self, track: Track, history: list[Deployment]) -> list[RecentAction]:
        actions = recent_actions(history)
        if track.paused_at is not None:
            actions.append(RecentAction(ActionKind.PAUSE, track.paused_at))
        return actions

    def _note_evidence(self, track: Track, policy: HealthPolicy, assessment: Assessment,
                       window: LiveWindow, now: datetime) -> None:
        if track.first_seen is None and window.summary.errors is not None \
                and window.summary.errors.trials > 0:
            track.first_seen = now
        if track.first_evidence is None:
            found = first_evidence(policy, assessment)
            if found:
                track.first_evidence = (now, found)

    # -- without a baseline: record one -----------------------------------------------------

    def _without_baseline(self, dep: Deployment, track: Track, policy: HealthPolicy,
                          basis: Basis, window: LiveWindow, now: datetime) -> Observation:
        problem = "; ".join(f"metric source: {why}" for why in window.problems.values())
        reason = f"{problem}; {basis.why_none}" if problem else basis.why_none
        assessment = Assessment(Verdict.INCONCLUSIVE, (), reason, now, False)
        action = ""
        if dep.verified is not None and baseline_ready(policy, window, now):
            action = self._attach_baseline(dep, window, now)
        elif baseline_ready(policy, window, now):
            recorded = self._record_own(dep, track, window)
            action, assessment = recorded.action, replace(assessment, reason=recorded.reason)
        decision = Decision(DecisionKind.RECORD, f"inconclusive, no action: {assessment.reason}",
                            Verdict.INCONCLUSIVE)
        obs = Observation(dep.model, dep.env, dep.version, dep.id, assessment, decision,
                          basis.source, action)
        return self._act(dep, track, obs, window)

    def _record_own(self, dep: Deployment, track: Track, window: LiveWindow) -> _Recorded:
        """Keep `window` as the deployment's own first baseline; the next window is judged
        against it."""
        track.own_baseline = (window.observed_at, window.summary)
        reason = (f"recorded v{dep.version}'s own baseline ({headline(window.summary)}); the "
                  "next bake window is judged against it")
        self._out.write(dep, "watch.baseline", reason, {
            "deployment_id": dep.id, "version": dep.version,
            "window": window_view(window), "distribution": summary_to_dict(window.summary)})
        return _Recorded("baseline recorded", reason)

    def _attach_baseline(self, dep: Deployment, window: LiveWindow, now: datetime) -> str:
        """A deployment verified by hand, without a distribution, gets its measured one."""
        assert dep.verified is not None
        kept = {k: v for k, v in dep.verified.distribution.items() if k == STATED_KEY}
        record = replace(dep.verified, distribution={**summary_to_dict(window.summary), **kept},
                         baseline={**headline(window.summary), **dep.verified.baseline})
        if not self._out.set_verified(dep, record, "watch.baseline",
                                  f"recorded v{dep.version}'s measured baseline on its "
                                  "verified record", window):
            return ""
        return "baseline recorded"

    # -- verification --------------------------------------------------------------------

    def _verify(self, dep: Deployment, policy: HealthPolicy, basis: Basis, window: LiveWindow,
                assessment: Assessment) -> str:
        measured = window.summary
        if basis.source.startswith("own first window") and basis.summary is not None:
            measured = summary_plus(basis.summary, window.summary)
        now = self._clock.now()
        reason = (f"bake window of {policy.bake_window.total_seconds():.0f} s passed HEALTHY "
                  f"against {basis.source}: {assessment.reason}")
        record = VerifiedRecord(baseline=headline(measured), window_start=dep.started_at,
                                window_end=window.observed_at, approver=self.settings.actor,
                                at=now, reason=reason, distribution=summary_to_dict(measured))
        if not self._out.set_verified(dep, record, "deployment.verified", reason, window,
                                  assessment):
            return ""
        self._out.notify(dep, "verified", Verdict.HEALTHY, f"watch: {dep.model} v{dep.version} in "
                     f"{dep.env} verified: {reason}", "info", {"baseline": record.baseline})
        return "verified"

    # -- decisions -------------------------------------------------------------------------

    def _act(self, dep: Deployment, track: Track, obs: Observation,
             window: LiveWindow) -> Observation:
        decision, now = obs.decision, self._clock.now()
        if decision.kind is DecisionKind.ROLLBACK:
            return replace(obs, action=self._rollback(dep, track, obs, window))
        if not self._changed(track, decision, now):
            return obs
        severity = {DecisionKind.PAUSE: "critical", DecisionKind.RECORD: "warning"}.get(
            decision.kind, "info")
        if decision.verdict is Verdict.INCONCLUSIVE:
            severity = "info"
        self._record(dep, track, obs, window, severity)
        if decision.kind is DecisionKind.PAUSE:
            track.paused_at = now
            return replace(obs, action=obs.action or "paused: a human decides")
        return obs

    def _changed(self, track: Track, decision: Decision, now: datetime) -> bool:
        """Whether this decision is news: a new (kind, verdict), INCONCLUSIVE only once quiet."""
        key = (decision.kind, decision.verdict)
        if decision.verdict is Verdict.INCONCLUSIVE:
            track.inconclusive_since = track.inconclusive_since or now
            if now - track.inconclusive_since < self.settings.quiet_inconclusive:
                return False
        else:
            track.inconclusive_since = None
        handed = track.last == (DecisionKind.PAUSE, decision.verdict) \
            and decision.kind is DecisionKind.RECORD  # "already handed to a human": no news
        if key == track.last or handed or (track.last is None
                                           and decision.kind is DecisionKind.NONE):
            track.last = track.last if handed else key
            return False
        track.last = key
        return True

    def _evidence(self, dep: Deployment, track: Track, obs: Observation,
                  window: LiveWindow) -> dict[str, Any]:
        first = track.first_evidence
        return {"deployment_id": dep.id, "version": dep.version, "by": self.settings.actor,
                "assessment": assessment_view(obs.assessment), "baseline_from": obs.baseline_from,
                "window": window_view(window), "source": self._source.describe(),
                "deployed_at": dep.started_at.isoformat(),
                "first_seen_at": track.first_seen.isoformat() if track.first_seen else None,
                "first_evidence_at": first[0].isoformat() if first else None,
                "first_evidence": first[1] if first else None,
                "decided_at": obs.assessment.at.isoformat()}

    def _record(self, dep: Deployment, track: Track, obs: Observation, window: LiveWindow,
                severity: str, *, outcome: str = "ok", action: str = "") -> None:
        line = one_liner(dep.model, dep.env, dep.version, obs.decision)
        evidence = self._evidence(dep, track, obs, window)
        if action:
            evidence["action"] = action
        try:
            self._out.write(dep, "watch.decision", line, evidence,
                        after=decision_view(obs.decision), outcome=outcome)
        except LastGoodError as exc:  # the registry is down: still tell people
            log.warning("could not write the decision to the audit log: %s", exc.one_line())
        self._out.notify(dep, str(obs.decision.kind), obs.decision.verdict,
                     f"{line}{f' -> {action}' if action else ''}", severity, evidence)

    def _rollback(self, dep: Deployment, track: Track, obs: Observation,
                  window: LiveWindow) -> str:
        with self._uow() as uow:
            live = uow.deployments.live(dep.model, dep.env)
        if live is None or live.id != dep.id:
            return "skipped: the live deployment changed meanwhile"
        line = one_liner(dep.model, dep.env, dep.version, obs.decision)
        trigger = {**self._evidence(dep, track, obs, window), **decision_view(obs.decision)}
        try:
            op = self._deployments.rollback(dep.model, env=dep.env, reason=line,
                                            actor=self.settings.actor, trigger=trigger)
        except OperationInProgress as exc:  # a deploy or rollback is running: next tick
            log.info("rollback of %s in %s waits: %s", dep.model, dep.env, exc.message)
            return "rollback waits: another operation holds the deployment"
        except Escalated as exc:
            return self._rollback_failed(dep, track, obs, window, exc, "escalated")
        except LastGoodError as exc:
            return self._rollback_failed(dep, track, obs, window, exc, "refused")
        action = f"rolled back to v{op.target_version} ({op.id}, {op.phase})"
        track.last = (obs.decision.kind, obs.decision.verdict)
        self._record(dep, track, obs, window, "critical", action=action)
        return action

    def _rollback_failed(self, dep: Deployment, track: Track, obs: Observation,
                         window: LiveWindow, exc: LastGoodError, how: str) -> str:
        """A rollback that could not run or did not verify is a human's now: never retried
        every tick (that would flap, and refuse the same way again)."""
        action = f"rollback {how}: {exc.one_line()}; handed to a human"
        track.last = (DecisionKind.PAUSE, obs.decision.verdict)
        track.paused_at = self._clock.now()
        paused = replace(obs, decision=replace(obs.decision, kind=DecisionKind.PAUSE))
        self._record(dep, track, paused, window, "critical", outcome="failed", action=action)
        return action

__all__ = ["QUICK_SHARE", "WATCH_ACTOR", "Observation", "WatchService", "WatchSettings"]
