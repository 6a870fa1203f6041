"""The pure rules of the watch: which baseline judges a live deployment, which window is read,
what recent history `decide` sees, the default policy, and evidence as data a person can read.

Baseline choice (documented in `reference_deployment`): a live deployment is judged against

1. its own verified record, once it has one (it keeps being watched for as long as it is live);
   a record verified by hand counts with the values the person stated (`lastgood verify
   --metric accuracy=0.95`): they judge the signals they name, from the first request;
2. else the verified record of an earlier deployment of the *same* version (a version restored
   by a rollback is judged against its own pre-failure baseline);
3. else the most recent verified deployment of another version that was not rolled back from
   (a new version must do at least as well as the version it replaced, from its first request:
   a bad deploy is bad from the start, so its own early window would be a bad baseline);
4. else nothing: the watch records the deployment's own first bake window and judges the next
   one against it (a first deployment must at least be stable).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from lastgood.domain.baselines import StatedBaseline, stated_from, summary_from_dict
from lastgood.domain.decisions import ActionKind, Decision, RecentAction
from lastgood.domain.deployments import Deployment, DeploymentEnd
from lastgood.domain.errors import InvalidInput
from lastgood.domain.health import (
    FEEDBACK_KINDS,
    Assessment,
    HealthPolicy,
    SignalEvidence,
    SignalKind,
    SignalPolicy,
    Verdict,
    default_signal,
)
from lastgood.domain.measurements import Summary

DEFAULT_ALPHA = 0.1
"""The default policy's false-alarm budget; a third of it goes to the error rate (see below)."""


def default_policy(model: str, env: str, *, available: Collection[str],
                   bake_window: timedelta = timedelta(minutes=10),
                   cooldown: timedelta = timedelta(minutes=30)) -> HealthPolicy:
    """The policy used where no policy file speaks: "errors first".

    The error rate gets a third of alpha = 0.1 (all of it when it is the only signal); latency
    p99, prediction drift and accuracy share the rest. Why a third, not half: the healthy error
    rate sits only 25 % below the tolerated one, so the error rate is the signal that raises
    false alarms, about one run in five per unit of its alpha (benchmarks/detection.py: at half
    of alpha 0.6 % of healthy half-hours rolled back, all on the error rate; at a third 0.3 %);
    the other signals' healthy values sit far from their tolerance and raise none. Accuracy is
    judged once labelled feedback arrives; until then it abstains (INCONCLUSIVE for itself) and
    never holds the other signals back, so a deployment without labels is verified on the
    others.
    """
    others = [name for name, need in (("latency_p99", "latency"), ("drift", "drift"),
                                      ("accuracy", "accuracy"))
              if need in available or name in available]
    signals: list[SignalPolicy] = []
    if "error_rate" in available:
        signals.append(default_signal("error_rate", weight=len(others) / 2 if others else 1.0))
    signals += [default_signal(name) for name in others]
    if all(s.kind in FEEDBACK_KINDS for s in signals):  # labels alone may never come
        raise InvalidInput(f"the metric source provides none of error_rate, latency, drift "
                           f"for {model}/{env}", fix="configure a source that reports requests")
    return HealthPolicy(model, env, tuple(signals), alpha=DEFAULT_ALPHA,
                        bake_window=bake_window, cooldown=cooldown)


def recorded_baseline(dep: Deployment) -> Summary | None:
    """The Summary kept in a deployment's verified record, or None (none kept, or damaged)."""
    if dep.verified is None or not dep.verified.distribution:
        return None
    try:
        return summary_from_dict(dep.verified.distribution)
    except InvalidInput:
        return None


def stated_baseline(dep: Deployment) -> StatedBaseline | None:
    """The values a person stated when verifying `dep` by hand, or None."""
    return None if dep.verified is None else stated_from(dep.verified.distribution)


def judges_requests(stated: StatedBaseline | None) -> bool:
    """Whether stated values judge a signal every request feeds (error rate, latency): else
    the watch records the deployment's own first window for those, as without a baseline."""
    return stated is not None and ("error_rate" in stated.values or bool(stated.latency))


def has_reference(dep: Deployment) -> bool:
    """Whether `dep`'s verified record can judge another deployment (measured or stated)."""
    return recorded_baseline(dep) is not None or stated_baseline(dep) is not None


def reference_deployment(history: Sequence[Deployment], live: Deployment) -> Deployment | None:
    """The deployment whose recorded or stated baseline judges `live` (rules 1-3 above)."""
    if has_reference(live):
        return live
    newest_first = sorted((d for d in history if d.id != live.id),
                          key=lambda d: (d.started_at, d.id), reverse=True)
    usable = [d for d in newest_first if has_reference(d)]
    same = next((d for d in usable if d.version == live.version), None)
    if same is not None:
        return same
    return next((d for d in usable if d.version != live.version
                 and d.end is not DeploymentEnd.ROLLED_BACK), None)


def window_start(live: Deployment, *, now: datetime, segment: timedelta) -> datetime:
    """Where the live window of `live` starts now.

    Until verified: the deployment's start (one growing window, so one sequential test). Once
    verified, the window restarts every `segment` from the deployment's start, so a regression
    months later is not drowned by months of good data; each restart spends alpha again.
    """
    if live.verified is None or segment <= timedelta(0) or now <= live.started_at:
        return live.started_at
    k = math.floor((now - live.started_at) / segment)
    return live.started_at + k * segment


def recent_actions(history: Sequence[Deployment]) -> list[RecentAction]:
    """Deploys and rollbacks of one (model, env) as `decide` needs them, oldest first.

    A deployment whose predecessor ended `rolled_back` was a rollback away from that version;
    any other start was a deploy.
    """
    ordered = sorted(history, key=lambda d: (d.started_at, d.id))
    actions: list[RecentAction] = []
    for before, dep in zip([None, *ordered], ordered, strict=False):
        if before is not None and before.end is DeploymentEnd.ROLLED_BACK:
            actions.append(RecentAction(ActionKind.ROLLBACK, before.ended_at or dep.started_at,
                                        from_version=before.version, to_version=dep.version))
        else:
            actions.append(RecentAction(ActionKind.DEPLOY, dep.started_at,
                                        from_version=before.version if before else None,
                                        to_version=dep.version))
    return actions


def past_tolerance(signal: SignalPolicy, evidence: SignalEvidence) -> bool:
    """The live value is already on the wrong side of the tolerated one (significant or not)."""
    if evidence.verdict in (Verdict.DEGRADED, Verdict.FAILED):
        return True
    if evidence.live is None or evidence.threshold is None or not math.isfinite(evidence.live):
        return False
    if signal.kind is SignalKind.DRIFT or signal.higher_is_worse:
        return evidence.live > evidence.threshold
    return evidence.live < evidence.threshold


def beyond_tolerance(policy: HealthPolicy, assessment: Assessment) -> str:
    """The first judged signal whose live value is past its tolerance, or "": a deployment is
    not verified while one is (the evidence may still be gathering)."""
    by_name = {s.name: s for s in policy.signals}
    for evidence in assessment.signals:
        signal = by_name.get(evidence.signal)
        if signal is not None and not evidence.abstained and past_tolerance(signal, evidence):
            return f"{evidence.signal}: {evidence.explanation}"
    return ""


def first_evidence(policy: HealthPolicy, assessment: Assessment) -> str:
    """The explanation of a signal past its tolerance with the evidence leaning to a
    regression (e-value above 1, not yet significant perhaps), or ""."""
    by_name = {s.name: s for s in policy.signals}
    for evidence in assessment.signals:
        signal = by_name.get(evidence.signal)
        leaning = evidence.e_value is not None and evidence.e_value > 1.0
        if signal is not None and leaning and past_tolerance(signal, evidence):
            return f"{evidence.signal}: {evidence.explanation}"
    return ""


def leaning(assessment: Assessment) -> bool:
    """Whether the evidence leans toward a regression that is not decided yet: no signal is
    DEGRADED or FAILED, and one has an e-value above 1 (more likely under a regression than
    under its tolerance; before min_samples too). The watch looks sooner then; looking more
    often never raises a false alarm (the tests are valid at every look, see `sequential`)."""
    if assessment.verdict in (Verdict.DEGRADED, Verdict.FAILED):
        return False
    return any(e.e_value is not None and e.e_value > 1.0 and not e.abstained
               for e in assessment.signals)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def signal_view(evidence: SignalEvidence) -> dict[str, Any]:
    """One signal's evidence as JSON-ready data (non-finite numbers become null)."""
    return {"signal": evidence.signal, "verdict": str(evidence.verdict),
            "explanation": evidence.explanation, "baseline": _finite(evidence.baseline),
            "live": _finite(evidence.live), "effect": _finite(evidence.effect),
            "statistic": _finite(evidence.statistic), "e_value": _finite(evidence.e_value),
            "p_value": _finite(evidence.p_value), "samples": evidence.samples,
            "threshold": _finite(evidence.threshold)}


def assessment_view(assessment: Assessment) -> dict[str, Any]:
    """An assessment as JSON-ready data, for audit events, notifications and the CLI."""
    return {"verdict": str(assessment.verdict), "reason": assessment.reason,
            "at": assessment.at.isoformat(), "bake_complete": assessment.bake_complete,
            "signals": [signal_view(e) for e in assessment.signals]}


def one_liner(model: str, env: str, version: int, decision: Decision, *,
              limit: int = 300) -> str:
    """The evidence in one line: what a rollback's reason and a pager message say."""
    text = f"watch: {model} v{version} in {env}: {decision.reason}"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def decision_view(decision: Decision) -> dict[str, Any]:
    return {"decision": str(decision.kind), "verdict": str(decision.verdict),
            "reason": decision.reason, "avoid_versions": sorted(decision.avoid_versions)}


def sufficient(policy: HealthPolicy, summary: Summary) -> bool:
    """Every signal of `policy` has at least its minimum samples in `summary`, defect-free
    (signals fed by feedback are not required: labels may never arrive)."""
    families: Mapping[SignalKind, Any] = {
        SignalKind.ERROR_RATE: summary.errors, SignalKind.LATENCY: summary.latency,
        SignalKind.ACCURACY: summary.accuracy, SignalKind.DRIFT: summary.predictions}
    for signal in policy.signals:
        data = (summary.custom.get(signal.name.removeprefix("custom."))
                if signal.kind is SignalKind.CUSTOM else families[signal.kind])
        if signal.kind in FEEDBACK_KINDS and (data is None or data.samples < signal.min_samples):
            continue  # not required: it abstains against a baseline without enough labels
        if data is None or data.defect() or data.samples < signal.min_samples:
            return False
    return True
