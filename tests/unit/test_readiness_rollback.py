"""Readiness end to end on in-memory fakes: real reconcilers prove their standbys, report the
evidence, and the rollback's smoke check passes on it, falls back, or refuses the target."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from lastgood.domain.deployments import ReplicaReport
from lastgood.domain.errors import TransientError
from lastgood.domain.operations import Candidate, CheckResult, Phase
from lastgood.domain.versions import Version
from lastgood.ports import UnitOfWork
from lastgood.services.deployments import RollbackPlan
from lastgood.serving.change_signals import ManualSignal
from lastgood.serving.loading import LoadOptions
from lastgood.serving.reconciler import Reconciler, ReconcilerOptions
from lastgood.serving.slots import StandbyLimits
from lastgood.serving.standby_prover import ReadinessOptions
from lastgood.serving.state import ServingState
from tests.unit.fake_lastgood import FakeLastgood

MODEL, ENV = "fraud-detector", "production"


class Answering:
    """Answers 0 per record (the golden output) until a fault sets another answer."""

    def __init__(self) -> None:
        self.answer: Any = 0

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [self.answer for _ in records]


class Loader:
    def __init__(self) -> None:
        self.predictors: dict[int, Answering] = {}

    def __call__(self, version: Version) -> Answering:
        self.predictors[version.number] = found = Answering()
        return found


class Fingerprint:
    """A host fingerprint a test can change (a package upgrade)."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __call__(self) -> str:
        return self.value


class Replica:
    """A reconciler over the world's registry, stepped by hand."""

    def __init__(self, world: FakeLastgood, name: str, *, fingerprint: str = "host-a",
                 uow: Callable[[], UnitOfWork] | None = None) -> None:
        self.loader, self.fingerprint = Loader(), Fingerprint(fingerprint)
        self.rec = Reconciler(
            env=ENV, uow_factory=uow or world.registry, loader=self.loader, clock=world.clock,
            replica_id=name, state=ServingState(env=ENV), signal=ManualSignal(),
            options=ReconcilerOptions(standby=StandbyLimits(count=2),
                                      load=LoadOptions(timeout_s=5), retry_failed_s=0,
                                      readiness=ReadinessOptions(interval_s=60,
                                                                 fingerprint=self.fingerprint)))

    def settle(self) -> bool:
        """Converge, prove the standbys, report; whether the report got through."""
        async def go() -> bool:
            for _ in range(3):
                await self.rec.reconcile()
                await asyncio.gather(*list(self.rec._tasks))
            await self.rec.prove_readiness()
            return await self.rec.report()
        return asyncio.run(go())


async def converge_and_report(replica: Replica) -> None:
    """Load what the registry wants and report, without proving anything yet."""
    for _ in range(3):
        await replica.rec.reconcile()
        await asyncio.gather(*list(replica.rec._tasks))
    await replica.rec.report()


@pytest.fixture
def world() -> FakeLastgood:
    """v1 and v2 verified, v3 live and bad: the candidates are v2, then v1."""
    w = FakeLastgood()
    for n in (1, 2, 3):
        w.add_version(tag=f"v{n}.0")
    w.deploy(1)
    w.deploy(2)
    w.deploy(3, verify=False)
    w.smoke.calls.clear()  # the deploys ran their own smoke tests
    return w


def plan(world: FakeLastgood) -> RollbackPlan:
    return world.services.deployments.plan_rollback(MODEL, env=ENV)


def smoke_of(candidate: Candidate) -> CheckResult:
    return next(c for c in candidate.checks if c.name == "smoke")


def test_fresh_evidence_on_every_replica_passes_the_smoke_check_without_loading(
        world: FakeLastgood) -> None:
    for name in ("r1", "r2"):
        assert Replica(world, name).settle()
    found = plan(world)
    assert found.target is not None
    assert found.target.version == 2
    smoke = smoke_of(found.target)
    assert smoke.summary == "reproduced 1/1 on the warm standby of 2/2 replicas, 0 s ago"
    assert smoke.evidence["source"] == "readiness"
    assert world.smoke.calls == []  # nothing was loaded in a fresh process
    status = world.services.deployments.status(MODEL, env=ENV)
    assert status.readiness is not None
    assert status.readiness.headline() == "rollback ready: v2, proven 0 s ago on 2/2 replicas"


def test_stale_evidence_falls_back_to_the_smoke_test_and_says_why(world: FakeLastgood) -> None:
    replica = Replica(world, "r1")
    replica.settle()
    world.clock.advance(121)
    asyncio.run(replica.rec.report())  # the replica is alive, its proof is old
    found = plan(world)
    assert found.target is not None
    assert found.target.version == 2
    assert world.smoke.calls == [2]
    assert smoke_of(found.target).summary.endswith(
        "(smoke test run: readiness evidence not usable: r1: proof is 121 s old, older than "
        "two intervals (120 s))")


def test_a_standby_whose_outputs_changed_is_refused_and_the_next_target_taken(
        world: FakeLastgood) -> None:
    replica = Replica(world, "r1")
    replica.settle()
    replica.loader.predictors[2].answer = 7  # a library upgrade changed v2's outputs
    replica.settle()
    status = world.services.deployments.status(MODEL, env=ENV)
    assert status.readiness is not None
    assert not status.readiness.ready
    found = plan(world)
    refused = next(c for c in found.candidates if c.version == 2)
    assert refused.refusals == (
        "smoke: the warm standby of v2 on r1 stopped reproducing its golden examples (0/1, "
        "0 s ago): golden example 0: expected 0, got 7 (off by 7, exact)",)
    assert found.target is not None
    assert found.target.version == 1
    assert world.smoke.calls == []  # v1 was proven on the standby too

    done: list[Any] = []
    rollback = threading.Thread(target=lambda: done.append(world.services.deployments.rollback(
        MODEL, env=ENV, reason="errors up", actor="carol")))
    rollback.start()
    while rollback.is_alive():  # the replica follows, as `lastgood serve` would
        replica.settle()
        rollback.join(0.01)
    [op] = done
    assert (op.phase, op.target_version) == (Phase.SUCCEEDED, 1)
    assert any("stopped reproducing" in r for c in op.candidates for r in c.refusals)


def test_a_restarted_replica_proves_its_standbys_again(world: FakeLastgood) -> None:
    Replica(world, "r1").settle()
    restarted = Replica(world, "r1")  # a new process: slots reloaded, no proof yet
    asyncio.run(converge_and_report(restarted))
    assert "holds no proof for v2" in smoke_of(_candidate(plan(world), 2)).summary
    restarted.settle()
    assert smoke_of(_candidate(plan(world), 2)).evidence["source"] == "readiness"


def test_evidence_of_one_host_does_not_count_for_another(world: FakeLastgood) -> None:
    r1, r2 = Replica(world, "r1", fingerprint="host-a"), Replica(world, "r2",
                                                                  fingerprint="host-b")
    r1.settle()
    asyncio.run(converge_and_report(r2))  # r2 serves the same versions, unproven on its host
    found = plan(world)
    assert world.smoke.calls == [2]  # r1's proof does not stand in for r2
    assert found.target is not None
    assert "r2: holds no proof for v2" in smoke_of(found.target).summary
    r2.settle()
    assert smoke_of(_candidate(plan(world), 2)).summary.startswith(
        "reproduced 1/1 on the warm standby of 2/2 replicas")
    with world.registry() as uow:
        proofs = {r.replica_id: {p["packages"] for p in (r.evidence or {})["standbys"]}
                  for r in uow.replicas.list(model=MODEL, env=ENV)}
    assert proofs == {"r1": {"host-a"}, "r2": {"host-b"}}  # each proven on its own packages


def test_evidence_for_a_digest_not_the_versions_is_ignored_and_audited(world: FakeLastgood) -> None:
    replica = Replica(world, "r1")
    replica.settle()
    with world.registry() as uow:
        [report] = uow.replicas.list(model=MODEL, env=ENV)
        evidence = dict(report.evidence or {})
        evidence["standbys"] = [{**p, "digest": "b" * 64} if p["version"] == 2 else p
                                for p in evidence["standbys"]]
        uow.replicas.report(ReplicaReport(**{**_fields(report), "evidence": evidence}))
        uow.commit()
    found = plan(world)
    assert world.smoke.calls == [2]
    assert "not v2's (ignored)" in smoke_of(_candidate(found, 2)).summary
    with world.registry() as uow:
        [event] = [e for e in uow.events.list() if e.action == "readiness.evidence_ignored"]
    assert event.draft.evidence["reported"] == [{"replica": "r1", "digest": "b" * 64}]


def test_a_registry_down_while_proving_keeps_serving_and_reports_when_it_returns(
        world: FakeLastgood) -> None:
    down = threading.Event()

    def flaky() -> UnitOfWork:
        if down.is_set():
            raise TransientError("registry unreachable", fix="wait")
        return world.registry()

    replica = Replica(world, "r1", uow=flaky)
    replica.settle()
    world.clock.advance(200)  # the first proof is stale now
    down.set()
    assert replica.settle() is False  # proven anew, but the report did not get through
    table = replica.rec.state.tables[MODEL]
    assert table.live is not None
    assert table.live.number == 3
    down.clear()
    assert asyncio.run(replica.rec.report())
    assert smoke_of(_candidate(plan(world), 2)).evidence["source"] == "readiness"


def _candidate(found: RollbackPlan, version: int) -> Candidate:
    return next(c for c in found.candidates if c.version == version)


def _fields(report: ReplicaReport) -> dict[str, Any]:
    return {name: getattr(report, name) for name in ReplicaReport.__dataclass_fields__}
