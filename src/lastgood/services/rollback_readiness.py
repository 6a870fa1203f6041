"""Rollback readiness as the preflight and the faces see it: the evidence of live replicas.

`RegistryReadiness` reads every replica's latest report from the registry, keeps the live ones
(`domain.deployments.liveness`: reported within `stale_s`, not stopped), and judges a target
with the domain's `judge_readiness`. A proof that names a digest other than the version's is
ignored and written to the audit log, since a replica that loaded other bytes than the registry
holds is a fact an operator must see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lastgood.domain.audit import EventDraft
from lastgood.domain.decisions import Notice
from lastgood.domain.deployments import STALE_AFTER_S, ReplicaReport, live_replicas
from lastgood.domain.readiness_evidence import (
    Readiness,
    ReadinessVerdict,
    ReplicaEvidence,
    evidence_from_json,
    judge_readiness,
)
from lastgood.domain.versions import Version
from lastgood.ports import Clock, Notifier, UnitOfWorkFactory

__all__ = ["NoReadiness", "ReadinessWatch", "RegistryReadiness", "live_evidence",
           "rollback_readiness"]

def live_evidence(reports: Sequence[ReplicaReport], *, now: datetime,
                  stale_s: float = STALE_AFTER_S) -> list[ReplicaEvidence]:
    """The evidence of the live replicas in `reports` that still serve the model."""
    return [ReplicaEvidence(r.replica_id, evidence_from_json(r.evidence))
            for r in live_replicas(reports, now=now, stale_s=stale_s)
            if r.detail != "undeployed"]


def rollback_readiness(reports: Sequence[ReplicaReport], target: Version, *, now: datetime,
                       stale_s: float = STALE_AFTER_S) -> ReadinessVerdict:
    """Judge `target` by the evidence of the live replicas in `reports`."""
    return judge_readiness(version=target.number, digest=target.digest,
                           replicas=live_evidence(reports, now=now, stale_s=stale_s), now=now)


@dataclass(frozen=True, slots=True)
class NoReadiness:
    """Replica evidence not used (LASTGOOD_READINESS_EVIDENCE=off): every rollback runs the
    smoke test, and its result says so."""

    def judge(self, target: Version, env: str) -> ReadinessVerdict:
        return ReadinessVerdict(Readiness.UNPROVEN, "readiness evidence is turned off on this "
                                "installation (LASTGOOD_READINESS_EVIDENCE=off)",
                                version=target.number)


class RegistryReadiness:
    """Readiness evidence from the replica reports in the registry."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock,
                 stale_s: float = STALE_AFTER_S) -> None:
        self._uow, self._clock, self._stale_s = uow, clock, stale_s

    def judge(self, target: Version, env: str) -> ReadinessVerdict:
        with self._uow() as uow:
            reports = uow.replicas.list(model=target.model, env=env)
        verdict = rollback_readiness(reports, target, now=self._clock.now(),
                                     stale_s=self._stale_s)
        if verdict.foreign_digests:
            self._audit_foreign(target, env, verdict)
        return verdict

    def _audit_foreign(self, target: Version, env: str, verdict: ReadinessVerdict) -> None:
        with self._uow() as uow:
            uow.events.append(EventDraft(
                action="readiness.evidence_ignored", actor="lastgood", model=target.model,
                env=env, subject=f"{target.model}@{target.number}", outcome="refused",
                reason=f"a replica proved v{target.number} with a digest that is not the "
                       "version's; its evidence was ignored",
                evidence={"digest": target.digest,
                          "reported": [{"replica": r, "digest": d}
                                       for r, d in verdict.foreign_digests]}),
                at=self._clock.now())
            uow.commit()


class ReadinessWatch:
    """Tells people when a deployment's way back stops working, and when it works again.

    The watch calls `observe` every tick with the status' readiness verdict. A notice (and an
    audit event) goes out on a change only: ready -> not ready is `readiness.lost` (also the
    first sight of a standby that stopped reproducing), not ready -> ready after a loss is
    `readiness.regained`. An unproven first sight says nothing: a replica that just started has
    not proven its standby yet.
    """

    def __init__(self, *, uow: UnitOfWorkFactory, notifier: Notifier, clock: Clock,
                 actor: str) -> None:
        self._uow, self._notifier, self._clock, self._actor = uow, notifier, clock, actor
        self._ready: dict[tuple[str, str], bool] = {}

    def observe(self, model: str, env: str, live: int,
                verdict: ReadinessVerdict | None) -> str | None:
        """Record one look; the kind of notice sent, if any."""
        key, ready = (model, env), verdict is not None and verdict.ready
        before = self._ready.get(key)
        if verdict is None or (before is None and not ready
                               and verdict.verdict is not Readiness.BROKEN):
            return None  # no target, or not proven yet: nothing was lost
        self._ready[key] = ready
        if (before is None and ready) or before == ready:
            return None
        kind = "readiness.regained" if ready else "readiness.lost"
        self._tell(kind, model, env, live, verdict)
        return kind

    def forget(self, keep: set[tuple[str, str]]) -> None:
        """Drop what is remembered of pairs no longer live."""
        self._ready = {k: v for k, v in self._ready.items() if k in keep}

    def _tell(self, kind: str, model: str, env: str, live: int,
              verdict: ReadinessVerdict) -> None:
        now = self._clock.now()
        evidence = verdict.as_json()
        with self._uow() as uow:
            uow.events.append(EventDraft(
                action=kind, actor=self._actor, model=model, env=env, subject=f"v{live}",
                reason=verdict.headline(), evidence=evidence,
                outcome="ok" if verdict.ready else "failed"), at=now)
            uow.commit()
        self._notifier.notify(Notice(
            model=model, env=env, version=live, decision=kind.split(".")[1],
            verdict="HEALTHY" if verdict.ready else "FAILED", summary=verdict.headline(),
            at=now, severity="info" if verdict.ready else "warning", evidence=evidence,
            kind=kind))
