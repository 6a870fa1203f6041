"""Target choice as a pure function: the most recent verified version, never just "the previous
one", with every reason a candidate was passed over."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from lastgood.domain.deployments import Deployment, DeploymentEnd
from lastgood.domain.targets import forced_candidate, rank_candidates, requested_candidate
from lastgood.domain.versions import Version, VersionStatus
from lastgood.testing import EPOCH, make_verified_record
from tests.unit.fake_lastgood import FakeLastgood

ENV = "production"


def versions(*statuses: VersionStatus) -> dict[int, Version]:
    world = FakeLastgood()
    made = [world.add_version(tag=f"v{n}.0") for n in range(1, len(statuses) + 1)]
    return {v.number: replace(v, status=s) for v, s in zip(made, statuses, strict=True)}


def dep(dep_id: int, version: int, *, hour: int, verified: bool = False,
        live: bool = False) -> Deployment:
    start = EPOCH + timedelta(hours=hour)
    return Deployment(id=dep_id, model="fraud-detector", env=ENV, version=version,
                      started_at=start, deployed_by="alice", reason="r",
                      ended_at=None if live else start + timedelta(minutes=50),
                      end=None if live else DeploymentEnd.SUPERSEDED,
                      verified=make_verified_record(at=start) if verified else None)


ACTIVE = VersionStatus.ACTIVE


def test_the_most_recently_served_comes_first_and_the_unverified_says_so() -> None:
    found = rank_candidates([dep(1, 1, hour=1, verified=True), dep(2, 2, hour=2),
                             dep(3, 3, hour=3, live=True)], versions(ACTIVE, ACTIVE, ACTIVE),
                            live_version=3)
    assert [(c.version, c.refusals) for c in found] == [
        (3, ("is the live version", f"was never verified in {ENV}")),
        (2, (f"was never verified in {ENV}",)),
        (1, ()),
    ]
    assert [c.tag for c in found] == ["v3.0", "v2.0", "v1.0"]


def test_a_version_served_twice_counts_through_its_verified_deployment() -> None:
    history = [dep(1, 1, hour=1, verified=True), dep(2, 2, hour=2),
               dep(3, 1, hour=3), dep(4, 2, hour=4, live=True)]
    found = rank_candidates(history, versions(ACTIVE, ACTIVE), live_version=2)
    assert [(c.version, c.deployment_id, c.refusals) for c in found] == [
        (2, 4, ("is the live version", f"was never verified in {ENV}")),
        (1, 1, ()),  # its later, unverified deployment does not hide the verified one
    ]


def test_quarantined_retired_and_missing_versions_are_refused_with_the_reason() -> None:
    history = [dep(1, 1, hour=1, verified=True), dep(2, 2, hour=2, verified=True),
               dep(3, 3, hour=3, verified=True), dep(4, 4, hour=4, live=True)]
    known = versions(ACTIVE, VersionStatus.RETIRED, VersionStatus.QUARANTINED, ACTIVE)
    del known[1]
    found = {c.version: c.refusals for c in rank_candidates(history, known, live_version=4)}
    assert found[3] == ("is quarantined (it failed in production)",)
    assert found[2] == ("is retired",)
    assert found[1] == ("version 1 is missing from the registry",)


def test_no_history_no_candidates() -> None:
    assert rank_candidates([], {}, live_version=None) == []


def test_a_forced_target_is_refused_only_when_it_is_live() -> None:
    v = versions(VersionStatus.QUARANTINED)[1]
    assert forced_candidate(v, live_version=2).refusals == ()
    assert forced_candidate(v, live_version=1).refusals == ("is the live version",)


def test_a_requested_target_passes_the_rules_of_an_automatic_choice() -> None:
    known = versions(ACTIVE, VersionStatus.RETIRED)
    history = [dep(1, 1, hour=1, verified=True), dep(2, 1, hour=2, verified=True),
               dep(3, 2, hour=3, live=True)]
    chosen = requested_candidate(known[1], history, live_version=2)
    assert (chosen.deployment_id, chosen.refusals) == (2, ())  # its latest verified deployment
    never = requested_candidate(known[2], history, live_version=2)
    assert never.refusals == ("is the live version", "is retired",
                              "was never verified in this environment")
