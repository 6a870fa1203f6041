"""Readiness evidence as data: its JSON round trip, and how a target is judged by the evidence
of every live replica (fresh, stale, other packages, other digest, broken)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lastgood.domain.readiness_evidence import (
    Readiness,
    ReadinessEvidence,
    ReplicaEvidence,
    StandbyProof,
    evidence_from_json,
    evidence_to_json,
    judge_readiness,
    readiness_interval_problem,
    verdict_from_json,
)
from lastgood.testing import EPOCH

DIGEST = "a" * 64
HOST_A, HOST_B = "f" * 64, "e" * 64


def proof(*, at_s: float = -12, packages: str = HOST_A, reproduced: int = 5,
          digest: str = DIGEST, problems: tuple[str, ...] = ()) -> StandbyProof:
    return StandbyProof(version=2, digest=digest, packages=packages, reproduced=reproduced,
                        total=5, duration_ms=3.2, at=EPOCH + timedelta(seconds=at_s),
                        problems=problems)


def replica(name: str, *proofs: StandbyProof, host: str = HOST_A,
            interval_s: float = 60) -> ReplicaEvidence:
    return ReplicaEvidence(name, ReadinessEvidence(host, interval_s, proofs))


def judge(*replicas: ReplicaEvidence) -> tuple[Readiness, str]:
    verdict = judge_readiness(version=2, digest=DIGEST, replicas=replicas, now=EPOCH)
    return verdict.verdict, verdict.summary


def test_the_evidence_round_trips_through_json() -> None:
    evidence = ReadinessEvidence(HOST_A, 60.0, (proof(problems=("golden example 0: x",)),))
    assert evidence_from_json(evidence_to_json(evidence)) == evidence
    assert evidence_from_json(None) is None
    assert evidence_from_json({"packages": "x"}) is None  # not this shape: no evidence


def test_fresh_proofs_on_every_replica_prove_the_target() -> None:
    verdict = judge_readiness(version=2, digest=DIGEST, now=EPOCH, replicas=[
        replica("r1", proof()), replica("r2", proof(at_s=-3)), replica("r3", proof())])
    assert verdict.verdict is Readiness.PROVEN
    assert verdict.summary == "reproduced 5/5 on the warm standby of 3/3 replicas, 12 s ago"
    assert verdict.headline() == "rollback ready: v2, proven 12 s ago on 3/3 replicas"
    assert verdict_from_json(verdict.as_json()) == verdict


def test_a_proof_older_than_two_intervals_does_not_count() -> None:
    assert judge(replica("r1", proof(at_s=-121))) == (
        Readiness.UNPROVEN, "r1: proof is 121 s old, older than two intervals (120 s)")
    assert judge(replica("r1", proof(at_s=-119)))[0] is Readiness.PROVEN


def test_one_replica_without_a_proof_leaves_the_target_unproven() -> None:
    verdict, summary = judge(replica("r1", proof()), replica("r2"),
                             ReplicaEvidence("r3", None))
    assert verdict is Readiness.UNPROVEN
    assert summary == ("r2: holds no proof for v2 (not a warm standby there); "
                       "r3: reports no readiness evidence")
    assert judge()[1] == "no live replica reports readiness evidence"


def test_a_proof_made_on_other_packages_does_not_count_for_this_host() -> None:
    # r2 upgraded its packages since its proof; r1's proof on its own host says nothing for r2
    verdict, summary = judge(replica("r1", proof()),
                             replica("r2", proof(packages=HOST_A), host=HOST_B))
    assert verdict is Readiness.UNPROVEN
    assert summary == "r2: proven on packages ffffffffffff, the host now has eeeeeeeeeeee"


def test_a_proof_for_another_digest_is_ignored_and_named_for_the_audit() -> None:
    verdict = judge_readiness(version=2, digest=DIGEST, now=EPOCH,
                              replicas=[replica("r1", proof(digest="b" * 64))])
    assert verdict.verdict is Readiness.UNPROVEN
    assert "not v2's (ignored)" in verdict.summary
    assert verdict.foreign_digests == (("r1", "b" * 64),)


def test_a_fresh_failed_proof_breaks_the_target_with_the_outputs_that_differed() -> None:
    bad = proof(reproduced=4, problems=("golden example 3: expected 1, got 0",))
    verdict, summary = judge(replica("r1", proof()), replica("r2", bad))
    assert verdict is Readiness.BROKEN
    assert summary == ("the warm standby of v2 on r2 stopped reproducing its golden examples "
                       "(4/5, 12 s ago): golden example 3: expected 1, got 0")


@pytest.mark.parametrize("value", [0, -5, float("nan"), 0.5, 86401, float("inf")])
def test_unusable_intervals_are_named(value: float) -> None:
    assert readiness_interval_problem(value) is not None


def test_usable_intervals_pass() -> None:
    assert readiness_interval_problem(60) is None
    assert readiness_interval_problem(1) is None
