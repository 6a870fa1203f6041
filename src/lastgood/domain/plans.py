"""What a rollback plan stands on, so a confirmed plan runs as shown or not at all (rule 13).

A person confirms a plan: a target (version and digest) and the checks' evidence. Between the
plan and the "yes" the world may move: the desired state, the candidates (a newer verified
version), the target's readiness evidence. `PlanBasis` records those facts when the plan is
made; the run compares them with the facts it reads under the deployment's lease and stops with
every change named instead of choosing another target.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from lastgood.domain.operations import Candidate

PLAN_CHANGED = "the confirmed plan no longer holds"
"""How the error of an operation stopped by a changed plan begins."""


@dataclass(frozen=True, slots=True)
class PlanBasis:
    """The facts a rollback plan was judged on."""

    live_deployment: int | None  # the desired state the rollback leaves
    environment: str  # digest of the env's settings (its checks, its switch mode)
    ranked: tuple[str, ...]  # each candidate before the checks: version, deployment, refusals
    target: int | None = None
    digest: str = ""  # the target's manifest digest
    ready: bool = False  # the target's smoke check passed on replica readiness evidence

    @property
    def id(self) -> str:
        """A short name for the plan, stable for the same facts (`plan-1a2b3c4d5e6f`)."""
        body = json.dumps(basis_to_json(self), sort_keys=True).encode()
        return f"plan-{hashlib.sha256(body).hexdigest()[:12]}"

    def aimed(self, target: Candidate | None, digest: str) -> PlanBasis:
        """The basis with the chosen target, its digest and what its checks relied on."""
        if target is None:
            return self
        return replace(self, target=target.version, digest=digest,
                       ready=relies_on_readiness(target))

    def changes(self, now: PlanBasis) -> tuple[str, ...]:
        """What differs in `now` (read at run time) from this basis, one phrase each."""
        found = []
        if now.live_deployment != self.live_deployment:
            found.append("the desired state moved (another deployment went live)")
        if now.environment != self.environment:
            found.append("the environment's settings changed")
        if now.ranked != self.ranked:
            found.append("the candidates changed (a version was verified, quarantined or "
                         "deployed)")
        if now.digest != self.digest:
            found.append(f"v{self.target}'s digest is not the one confirmed")
        if self.ready and not now.ready:
            found.append(f"v{self.target}'s readiness evidence is no longer fresh")
        return tuple(found)


def relies_on_readiness(candidate: Candidate) -> bool:
    """Whether a check of `candidate` passed on replica readiness evidence (not a smoke test)."""
    return any(c.evidence.get("source") == "readiness" for c in candidate.checks)


def ranked_lines(candidates: tuple[Candidate, ...] | list[Candidate]) -> tuple[str, ...]:
    """The candidates before the checks, as comparable lines."""
    return tuple(f"v{c.version} dep {c.deployment_id}: {'; '.join(c.refusals)}"
                 for c in candidates)


def settings_digest(settings: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str)
                          .encode()).hexdigest()[:16]


def basis_to_json(basis: PlanBasis) -> dict[str, Any]:
    out = asdict(basis)
    out["ranked"] = list(basis.ranked)
    return out


def basis_from_json(data: Mapping[str, Any]) -> PlanBasis:
    return PlanBasis(live_deployment=data["live_deployment"],
                     environment=str(data["environment"]),
                     ranked=tuple(str(x) for x in data["ranked"]), target=data["target"],
                     digest=str(data["digest"]), ready=bool(data["ready"]))
