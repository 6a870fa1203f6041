"""Replay: how a warm standby answers today's traffic, compared with the live version.

Each replica keeps a bounded sample of its recent live requests (input records and the live
version's answer) and replays it on every warm standby on the readiness schedule. One
`ReplayProof` per standby says how many requests were replayed, how many the standby could not
answer (with the first example and its error), and how its answers compare with the live
version's: an agreement rate per label output, the distribution of absolute differences per
score output. The rollback's preflight judges a target by the proofs of every live replica
(`judge_replay`): failing on today's traffic refuses it; disagreement is shown, and refuses only
when a limit is set (a rollback is expected to answer differently). Time is an argument here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["MAX_RESERVOIR", "MAX_WINDOW_S", "MIN_WINDOW_S", "REPLAY_ARCHIVE", "OutputAgreement",
           "ReplayJudgement", "ReplayLimits", "ReplayOutcome", "ReplayProof", "ReplayState",
           "judge_replay", "judgement_from_json", "proof_from_json", "proof_to_json",
           "proofs_from_json", "reservoir_size_problem", "window_problem"]

REPLAY_ARCHIVE = "replay_archive"
"""The key of a replica report's evidence under which a deploy's shadow reports its raw failing
requests, for the archive of the refused deploy only: status and every view leave it out."""
MAX_RESERVOIR = 100_000  # requests per model; beyond this the memory is no longer small
MIN_WINDOW_S = 60.0  # a shorter window is not "today's traffic"
MAX_WINDOW_S = 7 * 86400.0


def reservoir_size_problem(size: int) -> str | None:
    """Why `size` is not a usable reservoir size, or None (0 turns replay off)."""
    if size < 0 or size > MAX_RESERVOIR:
        return f"{size} is outside 0..{MAX_RESERVOIR} requests (0 turns replay off)"
    return None


def window_problem(seconds: float) -> str | None:
    """Why `seconds` is not a usable replay window, or None."""
    if math.isnan(seconds) or seconds < MIN_WINDOW_S or seconds > MAX_WINDOW_S:
        return f"{seconds:g} s is outside {MIN_WINDOW_S:g}..{MAX_WINDOW_S:g} s (default 3600)"
    return None


class ReplayState(StrEnum):
    """What one replica's replay of one standby amounts to."""

    REPLAYED = "replayed"  # the reservoir held requests and the standby answered them (or not)
    NO_DATA = "no_data"  # the reservoir is empty (a restarted replica, no traffic yet)
    OFF = "off"  # the replica runs with --replay-reservoir 0


@dataclass(frozen=True, slots=True)
class OutputAgreement:
    """How the standby's answers for one output compare with the live version's.

    Labels (strings, ints, bools) count exact agreement; scores (floats) keep the distribution
    of absolute differences.
    """

    output: str
    kind: str  # "label" or "score"
    compared: int
    agreed: int = 0  # labels: equal answers; scores: differences within 1e-6
    p50: float | None = None  # scores: |standby - live|
    p90: float | None = None
    max: float | None = None

    @property
    def rate(self) -> float | None:
        return self.agreed / self.compared if self.compared else None


@dataclass(frozen=True, slots=True)
class ReplayProof:
    """One replay of a replica's reservoir on one warm standby."""

    version: int
    live_version: int | None
    state: ReplayState
    replayed: int = 0  # requests replayed
    failed: int = 0  # requests the standby could not answer
    example: str = ""  # the first failing request's input, shortened
    error: str = ""  # and what the standby said
    outputs: tuple[OutputAgreement, ...] = ()
    oldest_s: float | None = None  # age of the oldest request in the reservoir when replayed
    window_s: float = 3600.0
    skipped: int = 0  # requests the reservoir could not keep (over its size limit)
    duration_ms: float = 0.0
    cpu_ms: float = 0.0  # CPU time the replay thread used
    at: datetime | None = None

    @property
    def agreement(self) -> float | None:
        """The share of compared answers that agreed, over every output (None: none compared)."""
        compared = sum(o.compared for o in self.outputs)
        return sum(o.agreed for o in self.outputs) / compared if compared else None


def _agreement_json(o: OutputAgreement) -> dict[str, Any]:
    return {"output": o.output, "kind": o.kind, "compared": o.compared, "agreed": o.agreed,
            "p50": o.p50, "p90": o.p90, "max": o.max}


def proof_to_json(proof: ReplayProof) -> dict[str, Any]:
    """The proof as the JSON a replica report carries."""
    return {"version": proof.version, "live_version": proof.live_version,
            "state": str(proof.state), "replayed": proof.replayed, "failed": proof.failed,
            "example": proof.example, "error": proof.error,
            "outputs": [_agreement_json(o) for o in proof.outputs],
            "oldest_s": proof.oldest_s, "window_s": proof.window_s, "skipped": proof.skipped,
            "duration_ms": round(proof.duration_ms, 3), "cpu_ms": round(proof.cpu_ms, 3),
            "at": proof.at.isoformat() if proof.at else None}


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def proof_from_json(data: Mapping[str, Any]) -> ReplayProof | None:
    """A proof from `proof_to_json`; None when not in this shape."""
    try:
        return ReplayProof(
            version=int(data["version"]),
            live_version=None if data.get("live_version") is None else int(data["live_version"]),
            state=ReplayState(data["state"]), replayed=int(data.get("replayed", 0)),
            failed=int(data.get("failed", 0)), example=str(data.get("example", "")),
            error=str(data.get("error", "")),
            outputs=tuple(OutputAgreement(str(o["output"]), str(o["kind"]), int(o["compared"]),
                                          int(o.get("agreed", 0)), _opt(o.get("p50")),
                                          _opt(o.get("p90")), _opt(o.get("max")))
                          for o in data.get("outputs", ())),
            oldest_s=_opt(data.get("oldest_s")), window_s=float(data.get("window_s", 3600.0)),
            skipped=int(data.get("skipped", 0)), duration_ms=float(data.get("duration_ms", 0)),
            cpu_ms=float(data.get("cpu_ms", 0)),
            at=datetime.fromisoformat(data["at"]) if data.get("at") else None)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def proofs_from_json(data: Any) -> tuple[ReplayProof, ...] | None:
    """The replay proofs of a report's evidence (its `replay` list); None: the replica sent none
    (an older replica, or one with replay off and nothing to say)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("replay"), list):
        return None
    found = (proof_from_json(p) for p in data["replay"] if isinstance(p, Mapping))
    return tuple(p for p in found if p is not None)


@dataclass(frozen=True, slots=True)
class ReplayLimits:
    """When a target's replay refuses it: more failures than `max_failures` (default 0: any
    request it cannot answer), or agreement below `min_agreement` (default None: never)."""

    max_failures: int = 0
    min_agreement: float | None = None


class ReplayOutcome(StrEnum):
    """What the replay evidence of every live replica says about one target."""

    PASSED = "passed"  # answered today's traffic within the limits
    FAILED = "failed"  # failed on today's traffic, or agreed less than the limit
    NO_DATA = "no_data"  # no replica has replay data for it yet: never a pass
    OFF = "off"  # every replica runs with replay turned off


@dataclass(frozen=True, slots=True)
class ReplayJudgement:
    """The judgement, the line that says it, and the numbers behind it."""

    outcome: ReplayOutcome
    summary: str
    version: int
    replayed: int = 0
    failed: int = 0
    agreement: float | None = None
    replicas: tuple[str, ...] = ()
    proofs: tuple[ReplayProof, ...] = field(default=(), repr=False)

    def as_json(self) -> dict[str, Any]:
        return {"outcome": str(self.outcome), "summary": self.summary, "version": self.version,
                "replayed": self.replayed, "failed": self.failed, "agreement": self.agreement,
                "replicas": list(self.replicas),
                "proofs": [proof_to_json(p) for p in self.proofs]}


def judgement_from_json(data: Mapping[str, Any]) -> ReplayJudgement:
    """A judgement from `as_json()` (a remote control plane's status)."""
    proofs = (proof_from_json(p) for p in data.get("proofs", ()))
    agreement = data.get("agreement")
    return ReplayJudgement(ReplayOutcome(data["outcome"]), str(data["summary"]),
                           int(data["version"]), int(data.get("replayed", 0)),
                           int(data.get("failed", 0)),
                           None if agreement is None else float(agreement),
                           tuple(str(r) for r in data.get("replicas", ())),
                           tuple(p for p in proofs if p is not None))


def _window(seconds: float) -> str:
    if seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return "hour" if hours == 1 else f"{hours} hours"
    return f"{seconds / 60:g} minutes"


def _agreement_line(version: int, live: int | None, agreement: float | None,
                    proofs: Sequence[ReplayProof]) -> str:
    if agreement is None:
        return ""
    window = _window(proofs[0].window_s) if proofs else "hour"
    who = f"live v{live}" if live is not None else "the live version"
    return (f"v{version} agrees with {who} on {agreement * 100:.0f} % of the last {window}'s "
            "requests")


def judge_replay(*, version: int, replicas: Sequence[tuple[str, Sequence[ReplayProof] | None]],
                 limits: ReplayLimits = ReplayLimits(), forward: bool = False) -> ReplayJudgement:
    """Judge target `version` by the replay proofs each live replica reported for it
    (`forward`: a deploy's target, not a way back)."""
    found = [(rid, p) for rid, proofs in replicas for p in (proofs or ()) if p.version == version]
    replayed = [(rid, p) for rid, p in found if p.state is ReplayState.REPLAYED and p.replayed]
    if not replayed:
        return _without_data(version, replicas, found)
    proofs = tuple(p for _, p in replayed)
    total, failed = sum(p.replayed for p in proofs), sum(p.failed for p in proofs)
    compared = sum(o.compared for p in proofs for o in p.outputs)
    agreed = sum(o.agreed for p in proofs for o in p.outputs)
    agreement = agreed / compared if compared else None
    live = proofs[0].live_version
    line = _agreement_line(version, live, agreement, proofs)
    ids = tuple(rid for rid, _ in replayed)
    judged = ReplayJudgement(ReplayOutcome.PASSED, "", version, total, failed, agreement, ids,
                             proofs)
    if failed > limits.max_failures:
        first = next(p for p in proofs if p.failed)
        # A way back was proven on older data; a deploy's target cannot answer what the
        # live version answers today.
        since = (f"the data pipeline changed since v{version}" if not forward
                 else f"live v{live} answers them" if live is not None
                 else "the live version answers them")
        why = (f"v{version} fails on {failed} of {total:,} recent requests: "
               f"{first.example}: {first.error} — {since}")
        return _with(judged, ReplayOutcome.FAILED, why)
    if limits.min_agreement is not None and agreement is not None \
            and agreement < limits.min_agreement:
        return _with(judged, ReplayOutcome.FAILED,
                     f"{line}, below the limit of {limits.min_agreement * 100:.0f} %")
    passed = f"v{version} answered all {total:,} recent requests" if not failed else \
        f"v{version} fails on {failed} of {total:,} recent requests (within the limit " \
        f"of {limits.max_failures})"
    return _with(judged, ReplayOutcome.PASSED, f"{passed}; {line}" if line else passed)


def _with(judged: ReplayJudgement, outcome: ReplayOutcome, summary: str) -> ReplayJudgement:
    return ReplayJudgement(outcome, summary, judged.version, judged.replayed, judged.failed,
                           judged.agreement, judged.replicas, judged.proofs)


def _without_data(version: int, replicas: Sequence[tuple[str, Sequence[ReplayProof] | None]],
                  found: Sequence[tuple[str, ReplayProof]]) -> ReplayJudgement:
    if replicas and found and all(p.state is ReplayState.OFF for _, p in found):
        return ReplayJudgement(ReplayOutcome.OFF, "replay is turned off on every replica "
                               "(lastgood serve --replay-reservoir 0)", version)
    if not replicas:
        why = "no live replica reports replay evidence"
    elif not found:
        why = f"no replica holds v{version} as a warm standby with a replay yet"
    else:
        why = "the replicas' reservoirs hold no recent requests yet (a restart, or no traffic)"
    return ReplayJudgement(ReplayOutcome.NO_DATA, f"no replay data yet: {why}", version)
