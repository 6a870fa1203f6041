"""One truth about replicas and readiness, on in-memory fakes: the liveness table, a replica lost
while a switch is confirmed, the cached integrity of a target's stored artifacts, and the
refusal of a damaged target that never suggests --force."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from lastgood.domain.deployments import (
    Liveness,
    ReplicaReport,
    ReplicaState,
    live_replicas,
    liveness,
)
from lastgood.domain.errors import NoEligibleTarget
from lastgood.domain.operations import Phase
from lastgood.services.integrity import StoredIntegrity
from lastgood.testing import EPOCH, FixedClock
from lastgood.testing.memory_store import MemoryArtifactStore
from tests.unit.fake_lastgood import FakeLastgood
from tests.unit.test_engine_steps import report, serving, stepper, to_switching

MODEL, ENV = "fraud-detector", "production"


def at(seconds: float) -> ReplicaReport:
    seen = EPOCH - timedelta(seconds=seconds)
    return ReplicaReport("r", MODEL, ENV, 1, since=seen, seen_at=seen)


@pytest.mark.parametrize(("silent_s", "state", "expected"), [
    (0, ReplicaState.SERVING, Liveness.LIVE),
    (15, ReplicaState.SERVING, Liveness.LIVE),  # the window is inclusive
    (15.5, ReplicaState.SERVING, Liveness.STALE),
    (400, ReplicaState.LOADING, Liveness.STALE),
    (1, ReplicaState.STOPPED, Liveness.GONE),
])
def test_one_definition_of_a_live_replica(silent_s: float, state: ReplicaState,
                                          expected: Liveness) -> None:
    found = replace(at(silent_s), state=state)
    assert liveness(found, now=EPOCH) is expected
    assert (live_replicas([found], now=EPOCH) == [found]) is (expected is Liveness.LIVE)


def test_status_shows_a_silent_replica_stale_and_since_when() -> None:
    world = FakeLastgood()
    world.add_version(tag="v1.0")
    world.deploy(1)
    now = world.clock.now()
    with world.registry() as uow:
        uow.replicas.report(ReplicaReport("a", MODEL, ENV, 1, now, now))
        uow.replicas.report(ReplicaReport("b", MODEL, ENV, 1, now, now))
        uow.commit()
    world.clock.advance(10)
    with world.registry() as uow:
        later = world.clock.now()
        uow.replicas.report(ReplicaReport("a", MODEL, ENV, 1, now, later))
        uow.commit()
    world.clock.advance(6)  # b silent for 16 s, a for 6 s
    status = world.services.deployments.status(MODEL, env=ENV)
    seen = {r.replica_id: status.liveness(r) for r in status.replicas}
    assert seen == {"a": Liveness.LIVE, "b": Liveness.STALE}
    assert status.at == world.clock.now()


def test_a_rollback_names_the_replica_it_lost_during_the_confirmation() -> None:
    beating: list[str] = []  # replicas that keep reporting the target while the engine waits
    s = stepper(on_sleep=lambda st: [report(st, r, 2) for r in beating])
    serving(s, switch_timeout_s=60)
    report(s, "replica-a", 3)
    report(s, "replica-b", 3)
    op = to_switching(s)
    assert s.step(op).phase is Phase.CONFIRMING  # the pointer moved
    s.new_events()
    beating.append("replica-a")  # a follows and keeps reporting; b was killed
    report(s, "replica-a", 2)
    done = s.step(op)
    assert done.phase is Phase.ARCHIVING
    assert done.lost_replicas == ("replica-b",)
    events = s.new_events()
    assert [e.draft.action for e in events] == ["replica.lost", "switch.confirmed"]
    lost = events[0].draft
    assert (lost.outcome, lost.evidence["replica"], lost.evidence["liveness"]) == (
        "failed", "replica-b", "stale")
    assert events[1].draft.evidence["replicas"] == ["replica-a"]
    assert events[1].draft.evidence["lost"][0]["replica"] == "replica-b"


class CountingStore(MemoryArtifactStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def read(self, sha256: str) -> bytes:
        self.reads += 1
        return super().read(sha256)


def test_integrity_is_rehashed_only_on_change_or_on_schedule() -> None:
    store, clock = CountingStore(), FixedClock()
    world = FakeLastgood(store=store, clock=clock)
    version = world.add_version(tag="v1.0")
    sha = version.manifest.files[0].sha256
    integrity = StoredIntegrity(store=store, clock=clock, recheck_s=600)
    assert integrity.problem(version) == ""
    assert integrity.problem(version) == ""
    assert store.reads == 1  # unchanged stamp: the result is reused
    store.corrupt(sha)
    assert "model.bin" in integrity.problem(version)
    assert store.reads == 2
    store.corrupt(sha)  # flipped back: the bytes are whole again
    assert integrity.problem(version) == ""
    clock.advance(601)
    assert integrity.problem(version) == ""
    assert store.reads == 4  # an hour-old (here 10 min) result is re-hashed on schedule
    store.delete(sha)
    assert "not in the store" in integrity.problem(version)


def damaged_target() -> FakeLastgood:
    world = FakeLastgood()
    for n in (1, 2, 3):
        world.add_version(tag=f"v{n}.0")
    world.deploy(1)
    world.deploy(2)
    world.deploy(3, verify=False)
    target = world.services.registry.show(MODEL, 2)
    world.store.corrupt(target.manifest.files[0].sha256)
    return world


def test_status_says_not_ready_naming_integrity_of_the_target() -> None:
    world = damaged_target()
    readiness = world.services.deployments.status(MODEL, env=ENV).readiness
    assert readiness is not None
    assert not readiness.ready
    assert readiness.check == "integrity"
    assert readiness.headline().startswith("rollback NOT ready: v2: integrity: 1 of 1 artifact")


def test_a_forced_rollback_to_a_damaged_target_never_suggests_force() -> None:
    world = damaged_target()
    with pytest.raises(NoEligibleTarget) as caught:
        world.services.deployments.rollback(MODEL, env=ENV, reason="bad", actor="carol",
                                            to=2, force=True)
    assert "integrity" in caught.value.message
    assert "--force" not in caught.value.fix
    assert "integrity cannot be forced" in caught.value.fix


def test_status_names_any_check_that_would_refuse_the_target_now() -> None:
    world = FakeLastgood()
    for n in (1, 2, 3):
        world.add_version(tag=f"v{n}.0")
    world.deploy(1)
    world.deploy(2)
    world.deploy(3, verify=False)
    before = world.services.deployments.status(MODEL, env=ENV).readiness
    assert before is not None
    assert before.check == ""
    world.host.packages.pop("scikit-learn")  # the host lost the package the target needs
    readiness = world.services.deployments.status(MODEL, env=ENV).readiness
    assert readiness is not None
    assert readiness.check == "runtime"
    assert readiness.headline().startswith("rollback NOT ready: v2: runtime: ")
    assert "scikit-learn" in readiness.summary
    plan = world.services.deployments.plan_rollback(MODEL, env=ENV)
    refused = {c.version: c.refusals for c in plan.candidates}
    assert any(r.startswith("runtime:") for r in refused[2])  # the preflight agrees
