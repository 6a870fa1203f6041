"""An automatic rollback's steps read back from the audit trail: when the bad version went live,
when the watch first read it and found evidence, decided, switched back and verified the version
it went back to (the demo's second act and benchmarks/auto_rollback.py print them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lastgood.domain.audit import Event
from lastgood.domain.operations import OperationKind
from lastgood.services.container import Services

__all__ = ["Timeline", "decision_recorded", "live_verified", "read_timeline",
           "rollback_finished"]


@dataclass(frozen=True, slots=True)
class Timeline:
    """When each step of the automatic rollback happened (UTC), read from the audit trail."""

    deployed: datetime
    first_seen: datetime | None  # the watch read the bad version's first answers
    first_evidence: datetime | None
    decision: datetime | None
    switched: datetime | None
    verified: datetime | None
    outcome: str
    evidence: str  # the decision's one line
    first: str  # what the first evidence was
    verification: str

    def rows(self) -> list[tuple[str, str]]:
        def at(value: datetime | None) -> str:
            return "—" if value is None else f"+{(value - self.deployed).total_seconds():5.1f} s"

        return [("deploy (bad version live)", at(self.deployed)),
                ("first answers of it read by the watch", at(self.first_seen)),
                ("first evidence", at(self.first_evidence)),
                ("decision: roll back", at(self.decision)),
                ("switch (last verified version live)", at(self.switched)),
                ("verified against its own baseline", at(self.verified))]

    @property
    def total_s(self) -> float | None:
        end = self.verified
        return None if end is None else (end - self.deployed).total_seconds()


def live_verified(services: Services, model: str, env: str) -> bool:
    """The live deployment carries a verified record with a measured distribution."""
    with services.ports.uow() as uow:
        live = uow.deployments.live(model, env)
    return live is not None and live.verified is not None and bool(live.verified.distribution)


def rollback_finished(services: Services, model: str, env: str, after: datetime) -> bool:
    ops = services.deployments.operations(model=model, env=env, limit=5)
    return any(op.kind is OperationKind.ROLLBACK and op.created_at >= after
               and op.phase.is_terminal for op in ops)


def decision_recorded(services: Services, model: str, env: str, after_seq: int) -> bool:
    """The watch has written a decision after `after_seq`."""
    return any(e.action == "watch.decision"
               for e in services.registry.events(model=model, env=env, after_seq=after_seq))


def read_timeline(services: Services, model: str, env: str, *, deployed_version: int,
                  after_seq: int) -> Timeline:
    """The steps of the automatic rollback, from the audit events written after `after_seq`."""
    events = services.registry.events(model=model, env=env, after_seq=after_seq)
    switches = [e for e in events if e.action == "deployment.switched"]
    deployed = next(e for e in switches if (e.draft.after or {}).get("version") ==
                    deployed_version)
    decision = next((e for e in events if e.action == "watch.decision"
                     and str((e.draft.evidence or {}).get("action", "")).startswith("roll")),
                    None)
    evidence = dict(decision.draft.evidence) if decision else {}
    back = next((e for e in switches if e.seq > deployed.seq
                 and (e.draft.after or {}).get("version") != deployed_version), None)
    done = _verification(events, back)
    seen, first = evidence.get("first_seen_at"), evidence.get("first_evidence_at")
    decided = evidence.get("decided_at")
    return Timeline(
        deployed=deployed.at, first_seen=datetime.fromisoformat(seen) if seen else None,
        first_evidence=datetime.fromisoformat(first) if first else None,
        decision=datetime.fromisoformat(decided) if decided else None,
        switched=back.at if back else None,
        verified=done.at if done and done.action == "operation.succeeded" else None,
        outcome=done.action.removeprefix("operation.") if done else "no rollback",
        evidence=decision.draft.reason if decision else "",
        first=str(evidence.get("first_evidence") or ""),
        verification=str((done.draft.evidence or {}).get("summary", "")) if done else "")


def _verification(events: Sequence[Event], switch: Event | None) -> Event | None:
    if switch is None:
        return None
    op = (switch.draft.evidence or {}).get("operation")
    return next((e for e in events if e.seq > switch.seq and e.action in (
        "operation.succeeded", "operation.escalated")
        and (e.draft.evidence or {}).get("operation") == op), None)
