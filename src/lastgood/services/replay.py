"""Replay evidence as the preflight and the faces see it: what live replicas said about a target.

`RegistryReplay` reads every replica's latest report from the registry, keeps the live ones
(reported within `stale_s`, still serving the model), and judges a target by the replay proofs
they carry (`domain.replay.judge_replay`) under the installation's limits. Only counts,
agreement and one shortened failing example ever leave a replica: the requests themselves stay
in its memory.

`shadow_progress` tells a deploy, waiting in its checks, which live replicas have loaded its
target as a shadow standby and replayed today's traffic on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lastgood.domain.deployments import STALE_AFTER_S, ReplicaReport, live_replicas
from lastgood.domain.replay import (
    ReplayJudgement,
    ReplayLimits,
    ReplayProof,
    judge_replay,
    proofs_from_json,
)
from lastgood.domain.versions import Version
from lastgood.ports import Clock, UnitOfWorkFactory

__all__ = ["RegistryReplay", "ShadowProgress", "replay_judgement", "shadow_progress"]


def _live_proofs(reports: Sequence[ReplicaReport]
                 ) -> list[tuple[str, Sequence[ReplayProof] | None]]:
    return [(r.replica_id, proofs_from_json(r.evidence)) for r in reports
            if r.detail != "undeployed"]


def replay_judgement(reports: Sequence[ReplicaReport], target: Version, *, now: datetime,
                     stale_s: float, limits: ReplayLimits,
                     forward: bool = False) -> ReplayJudgement:
    """Judge `target` by the replay proofs of the replicas in `reports` live at `now` (the one
    definition: `domain.deployments.liveness`)."""
    live = live_replicas(reports, now=now, stale_s=stale_s)
    return judge_replay(version=target.number, replicas=_live_proofs(live), limits=limits,
                        forward=forward)


@dataclass(frozen=True, slots=True)
class RegistryReplay:
    """Replay evidence from the replica reports in the registry."""

    uow: UnitOfWorkFactory
    clock: Clock
    limits: ReplayLimits = field(default_factory=ReplayLimits)
    stale_s: float = STALE_AFTER_S

    def judge(self, target: Version, env: str, *, forward: bool = False) -> ReplayJudgement:
        with self.uow() as uow:
            reports = uow.replicas.list(model=target.model, env=env)
        return replay_judgement(reports, target, now=self.clock.now(), stale_s=self.stale_s,
                                limits=self.limits, forward=forward)


@dataclass(frozen=True, slots=True)
class ShadowProgress:
    """How far the live replicas are with a deploy's shadow: who has replayed today's traffic
    on it, who could not load it (and why), who is still loading or replaying."""

    replayed: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()
    waiting: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"replayed": list(self.replayed), "waiting": list(self.waiting),
                "refused": [{"replica": r, "why": why} for r, why in self.refused]}


def _refusal(report: ReplicaReport, version: int) -> str | None:
    """Why `report`'s replica could not load `version` (its report names each refusal)."""
    mark = f"v{version} refused: "
    for part in report.detail.split("; v"):
        text = part if part.startswith("v") else f"v{part}"
        if text.startswith(mark):
            return text[len(mark):]
    return None


def shadow_progress(live: Sequence[ReplicaReport], version: int, *,
                    since: datetime | None = None) -> ShadowProgress:
    """Where each live replica is with shadow `version` (one that reports no replay at all,
    an older replica, is not waited for). With `since`, only a replay made at or after it
    counts: a proof left from an earlier deploy of the same version may be gone by the time
    the replay check reads the reports."""
    replayed, refused, waiting = [], [], []
    for report in live:
        proofs = proofs_from_json(report.evidence)
        why = _refusal(report, version)
        if why is not None:
            refused.append((report.replica_id, why))
        elif proofs is None or any(p.version == version and _made_since(p, since)
                                   for p in proofs):
            replayed.append(report.replica_id)
        else:
            waiting.append(report.replica_id)
    return ShadowProgress(tuple(replayed), tuple(refused), tuple(waiting))


def _made_since(proof: ReplayProof, since: datetime | None) -> bool:
    return since is None or (proof.at is not None and proof.at >= since)
