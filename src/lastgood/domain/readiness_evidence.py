"""Rollback readiness: a replica's proof that its warm standbys still reproduce their outputs.

Each replica replays the golden examples of every standby slot it holds, on a schedule and
after every switch, and reports one `ReadinessEvidence` per model. The rollback's smoke check
judges a target by the evidence of every live replica (`judge_readiness`): fresh proofs from all
of them stand in for loading the target in a fresh process; a proof that failed refuses it;
anything else (stale, missing, other packages, other digest) falls back to the smoke test and
says why. Time is an argument everywhere here.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "MAX_INTERVAL_S",
    "MIN_INTERVAL_S",
    "Readiness",
    "ReadinessEvidence",
    "ReadinessVerdict",
    "ReplicaEvidence",
    "StandbyProof",
    "evidence_from_json",
    "evidence_to_json",
    "judge_readiness",
    "package_fingerprint",
    "readiness_interval_problem",
    "verdict_from_json",
]

MIN_INTERVAL_S = 1.0  # more often would spend the CPU that predictions need
MAX_INTERVAL_S = 86400.0  # a proof a day old proves nothing about today's host


def package_fingerprint(packages: Mapping[str, str]) -> str:
    """sha256 over the sorted `name==version` lines of a host's installed distributions."""
    lines = sorted(f"{name}=={version}" for name, version in packages.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def readiness_interval_problem(value: float) -> str | None:
    """Why `value` (seconds) is not a usable readiness interval, or None when it is."""
    if math.isnan(value) or value <= 0:
        return f"{value:g} s is not a positive number of seconds"
    if value < MIN_INTERVAL_S or value > MAX_INTERVAL_S:
        return (f"{value:g} s is outside {MIN_INTERVAL_S:g}..{MAX_INTERVAL_S:g} s "
                "(default 60)")
    return None


@dataclass(frozen=True, slots=True)
class StandbyProof:
    """One replay of a standby's golden examples on the slot already in memory."""

    version: int
    digest: str
    packages: str  # fingerprint of the host's packages when the proof ran
    reproduced: int
    total: int
    duration_ms: float
    at: datetime
    problems: tuple[str, ...] = ()  # the outputs that differed, or why the replay failed

    @property
    def ok(self) -> bool:
        return self.total > 0 and self.reproduced == self.total and not self.problems


@dataclass(frozen=True, slots=True)
class ReadinessEvidence:
    """What one replica reports about the standbys of one model."""

    packages: str  # the host's package fingerprint now
    interval_s: float  # how often the replica re-proves; freshness is two intervals
    standbys: tuple[StandbyProof, ...] = ()

    def proof(self, version: int) -> StandbyProof | None:
        return next((p for p in self.standbys if p.version == version), None)


def evidence_to_json(evidence: ReadinessEvidence) -> dict[str, Any]:
    """The evidence as the JSON a replica report carries."""
    return {"packages": evidence.packages, "interval_s": evidence.interval_s,
            "standbys": [{"version": p.version, "digest": p.digest, "packages": p.packages,
                          "reproduced": p.reproduced, "total": p.total,
                          "duration_ms": round(p.duration_ms, 3), "at": p.at.isoformat(),
                          "problems": list(p.problems)} for p in evidence.standbys]}


def evidence_from_json(data: Mapping[str, Any] | None) -> ReadinessEvidence | None:
    """The evidence from a report's JSON; None when absent or not in this shape."""
    if not data:
        return None
    try:
        return ReadinessEvidence(
            packages=str(data["packages"]), interval_s=float(data["interval_s"]),
            standbys=tuple(StandbyProof(
                version=int(p["version"]), digest=str(p["digest"]),
                packages=str(p["packages"]), reproduced=int(p["reproduced"]),
                total=int(p["total"]), duration_ms=float(p["duration_ms"]),
                at=datetime.fromisoformat(str(p["at"])),
                problems=tuple(str(x) for x in p.get("problems", ())))
                for p in data.get("standbys", ())))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


@dataclass(frozen=True, slots=True)
class ReplicaEvidence:
    """A live replica and the readiness evidence it last reported (None: it reported none)."""

    replica_id: str
    evidence: ReadinessEvidence | None


class Readiness(StrEnum):
    """What the evidence of every live replica says about one rollback target."""

    PROVEN = "proven"  # every live replica holds a fresh proof that passed
    BROKEN = "broken"  # a fresh proof failed: the standby stopped reproducing its outputs
    UNPROVEN = "unproven"  # missing, stale or not comparable: run the smoke test instead


@dataclass(frozen=True, slots=True)
class ReadinessVerdict:
    """The judgement, a one-line summary, and proofs of other digests to audit."""

    verdict: Readiness
    summary: str
    replicas: int = 0
    age_s: float | None = None  # age of the oldest counted proof
    foreign_digests: tuple[tuple[str, str], ...] = ()  # (replica, digest) ignored
    version: int | None = None  # the target judged
    check: str = ""  # the preflight check that would fail now (e.g. integrity), if any

    @property
    def ready(self) -> bool:
        return self.verdict is Readiness.PROVEN and not self.check

    def failing(self, check: str, problem: str) -> ReadinessVerdict:
        """This verdict, with the preflight check `check` that would refuse the target now."""
        return replace(self, verdict=Readiness.BROKEN, check=check, summary=problem)

    def headline(self) -> str:
        """`rollback ready: v2, proven 12 s ago on 3/3 replicas`, or what broke."""
        target = f"v{self.version}" if self.version is not None else "no target"
        if self.check:
            return f"rollback NOT ready: {target}: {self.check}: {self.summary}"
        if self.ready and self.age_s is not None:
            return (f"rollback ready: {target}, proven {self.age_s:.0f} s ago on "
                    f"{self.replicas}/{self.replicas} replicas")
        return f"rollback NOT ready ({target}, {self.verdict}): {self.summary}"

    def as_json(self) -> dict[str, Any]:
        return {"verdict": str(self.verdict), "summary": self.summary,
                "replicas": self.replicas, "age_s": self.age_s, "version": self.version,
                "ready": self.ready, "headline": self.headline(),
                "foreign_digests": [list(f) for f in self.foreign_digests],
                "check": self.check}


def verdict_from_json(data: Mapping[str, Any]) -> ReadinessVerdict:
    """A verdict from `as_json()` (a remote control plane's status)."""
    return ReadinessVerdict(
        Readiness(data["verdict"]), str(data["summary"]), int(data.get("replicas", 0)),
        data.get("age_s"), tuple((str(a), str(b)) for a, b in data.get("foreign_digests", ())),
        data.get("version"), str(data.get("check", "")))


def judge_readiness(*, version: int, digest: str, replicas: Sequence[ReplicaEvidence],
                    now: datetime) -> ReadinessVerdict:
    """Judge a target (`version` with `digest`) by the evidence of every live replica."""
    if not replicas:
        return ReadinessVerdict(Readiness.UNPROVEN, "no live replica reports readiness evidence",
                                version=version)
    foreign = tuple((r.replica_id, p.digest) for r in replicas if r.evidence
                    for p in r.evidence.standbys if p.version == version and p.digest != digest)
    counted: list[StandbyProof] = []
    gaps: list[str] = []
    for replica in replicas:
        proof, gap = _usable_proof(replica, version=version, digest=digest, now=now)
        if proof is not None and not proof.ok:
            return ReadinessVerdict(Readiness.BROKEN, _broken(replica.replica_id, proof, now),
                                    len(replicas), _age(proof, now), foreign, version)
        if proof is None:
            gaps.append(f"{replica.replica_id}: {gap}")
        else:
            counted.append(proof)
    if gaps:
        return ReadinessVerdict(Readiness.UNPROVEN, "; ".join(gaps), len(replicas), None, foreign,
                                version)
    oldest = max(_age(p, now) for p in counted)
    first = counted[0]
    return ReadinessVerdict(
        Readiness.PROVEN, f"reproduced {first.reproduced}/{first.total} on the warm standby of "
                        f"{len(counted)}/{len(replicas)} replicas, {oldest:.0f} s ago",
        len(replicas), oldest, foreign, version)


def _usable_proof(replica: ReplicaEvidence, *, version: int, digest: str,
                  now: datetime) -> tuple[StandbyProof | None, str]:
    evidence = replica.evidence
    if evidence is None:
        return None, "reports no readiness evidence"
    proof = evidence.proof(version)
    if proof is None:
        return None, f"holds no proof for v{version} (not a warm standby there)"
    if proof.digest != digest:
        return None, f"its proof is for digest {proof.digest[:12]}, not v{version}'s (ignored)"
    if proof.packages != evidence.packages:
        return None, (f"proven on packages {proof.packages[:12]}, the host now has "
                      f"{evidence.packages[:12]}")
    age, limit = _age(proof, now), 2 * evidence.interval_s
    if age > limit:
        return None, f"proof is {age:.0f} s old, older than two intervals ({limit:g} s)"
    return proof, ""


def _age(proof: StandbyProof, now: datetime) -> float:
    return max((now - proof.at).total_seconds(), 0.0)


def _broken(replica_id: str, proof: StandbyProof, now: datetime) -> str:
    why = "; ".join(proof.problems[:3]) or f"reproduced {proof.reproduced}/{proof.total}"
    return (f"the warm standby of v{proof.version} on {replica_id} stopped reproducing its "
            f"golden examples ({proof.reproduced}/{proof.total}, {_age(proof, now):.0f} s "
            f"ago): {why}")
