"""Replay evidence as the preflight and the faces see it: what live replicas said about a target.

`RegistryReplay` reads every replica's latest report from the registry, keeps the live ones
(reported within `stale_s`, still serving the model), and judges a target by the replay proofs
they carry (`domain.replay.judge_replay`) under the installation's limits. Only counts,
agreement and one shortened failing example ever leave a replica: the requests themselves stay
in its memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from lastgood.domain.deployments import STALE_AFTER_S, ReplicaReport, live_replicas
from lastgood.domain.replay import (
    ReplayJudgement,
    ReplayLimits,
    judge_replay,
    proofs_from_json,
)
from lastgood.domain.versions import Version
from lastgood.ports import Clock, UnitOfWorkFactory

__all__ = ["RegistryReplay", "replay_judgement"]


def replay_judgement(reports: Sequence[ReplicaReport], target: Version, *, now: datetime,
                     stale_s: float, limits: ReplayLimits) -> ReplayJudgement:
    """Judge `target` by the replay proofs of the live replicas in `reports` (the one
    definition of a live replica: `domain.deployments.live_replicas`)."""
    live = [(r.replica_id, proofs_from_json(r.evidence))
            for r in live_replicas(reports, now=now, stale_s=stale_s)
            if r.detail != "undeployed"]
    return judge_replay(version=target.number, replicas=live, limits=limits)


@dataclass(frozen=True, slots=True)
class RegistryReplay:
    """Replay evidence from the replica reports in the registry."""

    uow: UnitOfWorkFactory
    clock: Clock
    limits: ReplayLimits = field(default_factory=ReplayLimits)
    stale_s: float = STALE_AFTER_S

    def judge(self, target: Version, env: str) -> ReplayJudgement:
        with self.uow() as uow:
            reports = uow.replicas.list(model=target.model, env=env)
        return replay_judgement(reports, target, now=self.clock.now(), stale_s=self.stale_s,
                                limits=self.limits)
