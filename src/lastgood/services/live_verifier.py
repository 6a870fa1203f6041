"""The Verifier the operation engine calls after a switch: the restored version against its own
pre-failure baseline, measured, not assumed.

It waits (up to `wait_s`) until the live window since it was called (after the switch and the
archive) holds enough samples for every signal of the policy, then returns the assessment's
verdict: HEALTHY and INCONCLUSIVE let the operation succeed (INCONCLUSIVE with a note), DEGRADED
and FAILED escalate it. A regression
ends the wait at once: the sequential tests are valid at every look. A version with no verified
baseline of its own (a new version being deployed) is SKIPPED: the watch judges it against the
version it replaced and verifies it after its bake window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lastgood.domain.deployments import Deployment
from lastgood.domain.health import Assessment, LiveCheck, Verdict, assess
from lastgood.domain.measurements import LiveWindow, Summary
from lastgood.domain.watching import (
    assessment_view,
    has_reference,
    recorded_baseline,
    stated_baseline,
    sufficient,
)
from lastgood.ports import Clock, MetricSource, UnitOfWorkFactory
from lastgood.services.policies import PolicyBook


@dataclass(frozen=True, slots=True)
class VerifierSettings:
    """How long verification may wait for live data after a switch."""

    wait_s: float = 60.0
    poll_s: float = 1.0


class LiveVerifier:
    """Implements the Verifier port over a MetricSource."""

    def __init__(self, *, uow: UnitOfWorkFactory, source: MetricSource, clock: Clock,
                 policies: PolicyBook, settings: VerifierSettings = VerifierSettings()):
        self._uow, self._source, self._clock, self._policies = uow, source, clock, policies
        self._settings = settings

    def verify_live(self, model: str, env: str, version: int,
                    baseline: Mapping[str, float]) -> LiveCheck:
        """Compare the live version with its own pre-failure baseline (see the module doc)."""
        with self._uow() as uow:
            live = uow.deployments.live(model, env)
            history = uow.deployments.history(model, env)
        if live is None or live.version != version:
            return LiveCheck(Verdict.INCONCLUSIVE, f"v{version} is not live in {env} any more",
                             {"baseline": dict(baseline)})
        own = _own_record(history, live)
        if own is None:
            return _without_baseline(version, history, baseline)
        summary = recorded_baseline(own) or Summary()  # or only the values a person stated
        return self._wait_and_assess(live, own, summary)

    def _wait_and_assess(self, live: Deployment, own: Deployment, summary: Summary) -> LiveCheck:
        policy = self._policies.policy(live.model, live.env)
        deadline = self._clock.monotonic() + self._settings.wait_s
        # Judge what the restored version does from now on, not during the operation's own
        # work since the switch (archiving runs in the same process and can slow requests).
        since = max(live.started_at, self._clock.now())
        while True:
            window = self._source.window(live.model, live.env, live.version, since=since)
            assessment = assess(policy, summary, window, now=self._clock.now(),
                                stated=stated_baseline(own))
            decisive = assessment.verdict in (Verdict.DEGRADED, Verdict.FAILED)
            enough = not window.problems and sufficient(policy, window.summary)
            if decisive or enough or self._clock.monotonic() >= deadline:
                return _check(assessment, own, window, self._source.describe(),
                              waited=not (decisive or enough), wait_s=self._settings.wait_s)
            self._clock.sleep(self._settings.poll_s)


def _own_record(history: list[Deployment], live: Deployment) -> Deployment | None:
    """The newest earlier verified deployment of the live version that kept a measured
    baseline (its pre-failure baseline; never the live deployment's own new record)."""
    same = sorted((d for d in history if d.version == live.version and d.id != live.id
                   and has_reference(d)),
                  key=lambda d: (d.started_at, d.id), reverse=True)
    return same[0] if same else None


def _without_baseline(version: int, history: list[Deployment],
                      baseline: Mapping[str, float]) -> LiveCheck:
    evidence: dict[str, Any] = {"baseline": dict(baseline)}
    if any(d.version == version and d.is_verified for d in history):
        return LiveCheck(Verdict.INCONCLUSIVE, f"v{version}'s verified record holds no measured "
                         "distribution (verified by hand); the watch records one while it "
                         "serves", evidence)
    return LiveCheck(Verdict.SKIPPED, f"v{version} has no verified baseline of its own yet; "
                     "the watch judges it against the version it replaced and verifies it after "
                     "its bake window", evidence)


def _check(assessment: Assessment, own: Deployment, window: LiveWindow, source: str, *,
           waited: bool, wait_s: float) -> LiveCheck:
    against = f"v{own.version}'s own baseline (deployment {own.id})"
    summary = f"{assessment.verdict} against {against}: {assessment.reason}"
    if waited and assessment.verdict is Verdict.INCONCLUSIVE:
        summary = f"not enough live data after {wait_s:.0f} s: {assessment.reason}"
    return LiveCheck(assessment.verdict, summary, {
        "assessment": assessment_view(assessment), "baseline_from": against,
        "baseline": dict(own.verified.baseline) if own.verified else {}, "source": source,
        "window": {"started_at": window.started_at.isoformat(),
                   "observed_at": window.observed_at.isoformat(),
                   "problems": dict(window.problems)}})
