"""What to do about an assessment: roll back, pause for a human, record, or nothing.

Pure: the caller passes the recent actions on the (model, env) and the time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from lastgood.domain.health import Assessment, HealthPolicy, Mode, Verdict


class ActionKind(StrEnum):
    """What happened to a (model, env) recently, as `decide` needs to know it."""

    DEPLOY = "deploy"  # a person (or pipeline) moved forward to a version
    ROLLBACK = "rollback"  # a rollback moved away from `from_version`
    PAUSE = "pause"  # a regression was handed to a human


@dataclass(frozen=True, slots=True)
class RecentAction:
    """One recent action on the (model, env) being judged."""

    kind: ActionKind
    at: datetime
    from_version: int | None = None
    to_version: int | None = None


class DecisionKind(StrEnum):
    """What the watcher should do now."""

    ROLLBACK = "rollback"  # start a rollback with the evidence as its reason
    PAUSE = "pause"  # alert a human and wait
    RECORD = "record"  # write the evidence down, change nothing
    NONE = "none"  # healthy: nothing to do


@dataclass(frozen=True, slots=True)
class Decision:
    """The action, why, and the versions a rollback must not go to (anti ping-pong)."""

    kind: DecisionKind
    reason: str
    verdict: Verdict
    avoid_versions: frozenset[int] = frozenset()


def decide(assessment: Assessment, policy: HealthPolicy, history: Sequence[RecentAction],
           now: datetime) -> Decision:
    """Turn an assessment into an action. INCONCLUSIVE never rolls back (safety rule 9).

    Anti-flapping: after an automatic rollback, no second one within the cooldown unless a new
    deploy happened since (a person moved on); and a rollback never returns to a version that was
    rolled away from within the cooldown (`avoid_versions`).
    """
    verdict, reason = assessment.verdict, assessment.reason
    if verdict is Verdict.HEALTHY:
        return Decision(DecisionKind.NONE, reason, verdict)
    if verdict is Verdict.INCONCLUSIVE:
        return Decision(DecisionKind.RECORD, f"inconclusive, no action: {reason}", verdict)
    if policy.mode is Mode.OBSERVE:
        return Decision(DecisionKind.RECORD, f"{verdict} (mode observe): {reason}", verdict)
    recent = sorted((a for a in history if timedelta(0) <= now - a.at < policy.cooldown),
                    key=lambda a: a.at)
    since_deploy = recent[max((i + 1 for i, a in enumerate(recent)
                               if a.kind is ActionKind.DEPLOY), default=0):]
    avoid = frozenset(a.from_version for a in recent
                      if a.kind is ActionKind.ROLLBACK and a.from_version is not None)
    paused = next((a for a in reversed(since_deploy) if a.kind is ActionKind.PAUSE), None)
    rolled = next((a for a in reversed(since_deploy) if a.kind is ActionKind.ROLLBACK), None)
    if paused is not None:
        return Decision(DecisionKind.RECORD, f"{verdict}, already handed to a human at "
                        f"{paused.at.isoformat()}: {reason}", verdict, avoid)
    if policy.mode is Mode.PAUSE:
        return Decision(DecisionKind.PAUSE, f"{verdict} (mode pause): {reason}", verdict, avoid)
    if rolled is not None:
        return Decision(DecisionKind.PAUSE, f"{verdict}, but a rollback already ran at "
                        f"{rolled.at.isoformat()} within the cooldown of {policy.cooldown}; "
                        f"another could flap, a human decides: {reason}", verdict, avoid)
    return Decision(DecisionKind.ROLLBACK, f"{verdict}: {reason}", verdict, avoid)


@dataclass(frozen=True, slots=True)
class Notice:
    """One watch decision as it is told to people and systems."""

    model: str
    env: str
    version: int
    decision: str  # rollback | pause | record | none
    verdict: str  # HEALTHY | INCONCLUSIVE | DEGRADED | FAILED
    summary: str  # the evidence in one line
    at: datetime
    severity: str = "info"  # info | warning | critical
    evidence: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "watch.decision"
