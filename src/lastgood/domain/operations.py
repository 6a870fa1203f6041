"""A deploy or rollback as a persisted state machine: phases, the transition table, checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from lastgood.domain.errors import IllegalTransition, InvalidInput


class OperationKind(StrEnum):
    """What an operation does to an environment's desired version."""

    DEPLOY = "deploy"  # move forward to a chosen version
    ROLLBACK = "rollback"  # go back to the last verified version


class RollbackCause(StrEnum):
    """Why a rollback replaces the live version; only the version's own fault quarantines it."""

    MODEL = "model"  # the version misbehaved: it is quarantined, never a target until lifted
    INFRA = "infra"  # the node, network or data was bad: the version stays a rollback target
    UNKNOWN = "unknown"  # not known yet: recorded, the version stays a target

    @property
    def quarantines(self) -> bool:
        return self is RollbackCause.MODEL

    @classmethod
    def parse(cls, text: str) -> RollbackCause:
        """The cause named `text`, else InvalidInput naming the choices."""
        try:
            return cls(text.strip().lower())
        except ValueError as exc:
            choices = ", ".join(c.value for c in cls)
            raise InvalidInput(f"unknown rollback cause {text!r}",
                               fix=f"pass --cause with one of: {choices}") from exc


class Phase(StrEnum):
    """One step of an operation; each is committed with its event before the next starts."""

    PLANNED = "planned"  # target chosen (or to be chosen); nothing checked or moved yet
    CHECKING = "checking"  # preflight checks run against today's infrastructure
    SWITCHING = "switching"  # checks passed; the deploy command runs and the pointer moves
    CONFIRMING = "confirming"  # pointer moved; waiting for the replicas to report the target
    ARCHIVING = "archiving"  # forensic bundle of the failed state written, failed one quarantined
    VERIFYING = "verifying"  # the restored version is compared with its own baseline
    SUCCEEDED = "succeeded"  # done: target live (and verified when a check ran)
    CHECKED = "checked"  # a dry run's end: checked (and replayed on the replicas), nothing moved
    FAILED = "failed"  # stopped before or during the switch; live pointer is the old version
    ESCALATED = "escalated"  # target live but verification failed or timed out: a human is paged

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Phase.SUCCEEDED, Phase.CHECKED, Phase.FAILED, Phase.ESCALATED})
SHADOWING = frozenset({Phase.CHECKING, Phase.SWITCHING})
"""The phases in which a deploy's target is loaded as a standby on every replica (a shadow):
the replicas replay today's traffic on it before the check judges it, and the switch finds
it warm."""

TRANSITIONS: Mapping[Phase, frozenset[Phase]] = {
    Phase.PLANNED: frozenset({Phase.CHECKING, Phase.FAILED}),
    Phase.CHECKING: frozenset({Phase.SWITCHING, Phase.CHECKED, Phase.FAILED}),
    Phase.SWITCHING: frozenset({Phase.CONFIRMING, Phase.FAILED}),
    Phase.CONFIRMING: frozenset({Phase.ARCHIVING, Phase.VERIFYING, Phase.ESCALATED}),
    Phase.ARCHIVING: frozenset({Phase.VERIFYING}),
    Phase.VERIFYING: frozenset({Phase.SUCCEEDED, Phase.ESCALATED}),
    Phase.SUCCEEDED: frozenset(),
    Phase.CHECKED: frozenset(),
    Phase.FAILED: frozenset(),
    Phase.ESCALATED: frozenset(),
}


def check_transition(current: Phase, new: Phase) -> None:
    """Raise IllegalTransition unless the table allows `current -> new`."""
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (terminal)"
        raise IllegalTransition(
            f"an operation cannot move from {current} to {new}",
            fix=f"allowed next phases: {allowed}",
        )


class CheckStatus(StrEnum):
    """Outcome of one preflight check."""

    PASS = "pass"
    WARN = "warn"  # allowed, but a person should read the evidence
    FAIL = "fail"  # blocks the switch to this candidate
    SKIP = "skip"  # not applicable (with the reason in evidence)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One preflight check's verdict, with the evidence it was based on."""

    name: str
    status: CheckStatus
    summary: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0

    @property
    def blocks(self) -> bool:
        return self.status is CheckStatus.FAIL


@dataclass(frozen=True, slots=True)
class Candidate:
    """A possible rollback target, with every reason it was refused (empty when accepted)."""

    version: int
    deployment_id: int | None
    tag: str | None = None
    refusals: tuple[str, ...] = ()
    checks: tuple[CheckResult, ...] = ()

    @property
    def accepted(self) -> bool:
        return not self.refusals and not any(c.blocks for c in self.checks)


@dataclass(frozen=True, slots=True)
class Operation:
    """One deploy or rollback, persisted phase by phase."""

    id: str
    kind: OperationKind
    model: str
    env: str
    phase: Phase
    actor: str
    reason: str
    created_at: datetime
    updated_at: datetime
    from_version: int | None = None
    target_version: int | None = None
    forced: bool = False
    candidates: tuple[Candidate, ...] = ()
    error: str = ""
    archive_id: str | None = None
    trigger: Mapping[str, Any] = field(default_factory=dict)
    resumed: tuple[str, ...] = ()
    """Unfinished operations the command finished before this one (told in its result and its
    planned event; not stored with the row)."""

    @property
    def cause(self) -> RollbackCause:
        """Why a rollback runs (kept in its trigger record; `model` when none was given)."""
        return RollbackCause(str(self.trigger.get("cause", RollbackCause.MODEL)))

    @property
    def dry_run(self) -> bool:
        """A deploy that checks (and replays) its target and stops before the switch."""
        return bool(self.trigger.get("dry_run"))

    @property
    def shadow(self) -> int | None:
        """The version the replicas should hold warm for this operation: a deploy's target
        from its checks until its switch (`SHADOWING`); None otherwise."""
        if self.kind is OperationKind.DEPLOY and self.phase in SHADOWING:
            return self.target_version
        return None

    @property
    def lost_replicas(self) -> tuple[str, ...]:
        """Replicas that went silent while the switch was confirmed (named in the result)."""
        return tuple(str(r.get("replica")) for r in self.trigger.get("lost_replicas", ()))

    def advance(self, new: Phase, *, at: datetime, **changes: Any) -> Operation:
        """The same operation in phase `new`; raises IllegalTransition if the table forbids it."""
        check_transition(self.phase, new)
        return replace(self, phase=new, updated_at=at, **changes)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a team's command (deploy command or custom check) did."""

    exit_code: int
    output: str
    duration_ms: float
    timed_out: bool = False


@dataclass(frozen=True, slots=True)
class SmokeOutcome:
    """Result of loading a version in a separate process and running its golden examples."""

    ok: bool
    summary: str
    load_ms: float = 0.0
    predict_ms: float = 0.0
    mismatches: tuple[Mapping[str, Any], ...] = ()
    outputs: tuple[Any, ...] = ()  # one per golden example, as the version answered them
    # Checked against the reference (MLflow's own pyfunc for an MLflow directory): the flavor
    # that must serve the version ("" keeps the registered one) and what the check found.
    serve_with: str = ""
    reference: str = ""
    output_form: str = ""  # how the reference answers a batch (dict, frame, array, …)
