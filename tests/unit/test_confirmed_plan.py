"""A confirmed rollback runs the plan a person saw, or stops and shows the new one (rule 13).

The plan is made, the world changes between the plan and the "yes", and the rollback that
carries the plan must either run it as shown (its target, its checks run once) or stop with
nothing moved."""

from __future__ import annotations

import asyncio

import pytest

from lastgood.domain.deployments import VerifiedRecord
from lastgood.domain.errors import Escalated, PlanChanged
from lastgood.domain.operations import Operation, OperationKind, Phase
from lastgood.services.deployments import RollbackPlan
from lastgood.services.operations import EngineSettings
from tests.unit.fake_lastgood import FakeLastgood
from tests.unit.test_readiness_rollback import Replica

MODEL, ENV = "fraud-detector", "production"


def three(world: FakeLastgood, *, verify_second: bool = True) -> FakeLastgood:
    """v1 verified, v2 verified (or not), v3 live and bad."""
    for n in (1, 2, 3, 4):
        world.add_version(tag=f"v{n}.0")
    world.deploy(1)
    world.deploy(2, verify=verify_second)
    world.deploy(3, verify=False)
    world.smoke.calls.clear()  # the deploys ran their own smoke tests
    return world


@pytest.fixture
def world() -> FakeLastgood:
    return three(FakeLastgood())


def plan(world: FakeLastgood) -> RollbackPlan:
    return world.services.deployments.plan_rollback(MODEL, env=ENV, actor="carol")


def run(world: FakeLastgood, confirmed: RollbackPlan) -> None:
    world.services.deployments.rollback(MODEL, env=ENV, reason="errors up", actor="carol",
                                        plan=confirmed)


def live(world: FakeLastgood) -> int | None:
    found = world.services.deployments.status(MODEL, env=ENV).live
    return found.version if found else None


def planned_event(world: FakeLastgood) -> dict[str, object]:
    with world.registry() as uow:
        found = [e for e in uow.events.list() if e.action == "operation.planned"]
    return dict(found[-1].draft.after or {})


def test_the_confirmed_plan_runs_with_each_check_run_once(world: FakeLastgood) -> None:
    shown = plan(world)
    assert shown.target is not None
    assert shown.target.version == 2
    assert world.smoke.calls == [2]
    op = world.services.deployments.rollback(MODEL, env=ENV, reason="errors up", actor="carol",
                                             plan=shown)
    assert (op.phase, op.target_version) == (Phase.SUCCEEDED, 2)
    assert world.smoke.calls == [2]  # the plan's smoke test is the evidence: not run again
    assert [c.name for c in op.candidates[-1].checks] == [c.name for c in shown.target.checks]
    confirmed = planned_event(world)["confirmed"]
    assert confirmed == {"by": "carol", "plan": shown.id, "target": 2,
                         "digest": world.services.registry.show(MODEL, 2).digest}
    assert "operation.plan_changed" not in world.events()


def test_without_a_plan_the_rollback_runs_its_checks_as_before(world: FakeLastgood) -> None:
    plan(world)
    op = world.services.deployments.rollback(MODEL, env=ENV, reason="errors up", actor="carol")
    assert op.target_version == 2
    assert world.smoke.calls == [2, 2]  # --yes: the dry run and the rollback each check
    assert "confirmed" not in planned_event(world)


def test_a_newer_verified_version_stops_the_rollback_and_the_new_plan_names_it() -> None:
    world = three(FakeLastgood(), verify_second=False)
    shown = plan(world)
    assert shown.target is not None
    assert shown.target.version == 1
    with world.registry() as uow:  # v2's deployment is verified between the plan and the yes
        dep = next(d for d in uow.deployments.history(MODEL, ENV) if d.version == 2)
        now = world.clock.now()
        uow.deployments.set_verified(dep.id, VerifiedRecord(
            baseline={"error_rate": 0.01}, window_start=dep.started_at, window_end=now,
            approver="bob", at=now, reason="late bake"))
        uow.commit()
    with pytest.raises(PlanChanged, match="the candidates changed"):
        run(world, shown)
    assert live(world) == 3
    assert "operation.plan_changed" in world.events()
    again = plan(world)
    assert again.target is not None
    assert again.target.version == 2


def test_a_moved_desired_state_stops_the_rollback(world: FakeLastgood) -> None:
    shown = plan(world)
    world.deploy(4, verify=False)
    with pytest.raises(PlanChanged, match="the desired state moved"):
        run(world, shown)
    assert live(world) == 4  # nothing moved


def test_stale_readiness_evidence_stops_the_rollback_and_the_new_plan_runs_the_smoke_test(
        world: FakeLastgood) -> None:
    replica = Replica(world, "r1")
    assert replica.settle()
    shown = plan(world)
    assert shown.target is not None
    assert shown.target.version == 2
    assert world.smoke.calls == []  # the plan stood on the replica's proof
    world.clock.advance(121)
    asyncio.run(replica.rec.report())  # alive, but its proof is now older than two intervals
    with pytest.raises(PlanChanged, match="v2's readiness evidence is no longer fresh"):
        run(world, shown)
    assert live(world) == 3
    assert world.smoke.calls == []
    again = plan(world)
    assert again.target is not None
    assert world.smoke.calls == [2]


def test_a_plan_on_proof_still_fresh_runs_without_loading_anything(world: FakeLastgood) -> None:
    world.services.deployments.configure(ENV, changes={"switch_timeout_s": 0.1}, actor="ops")
    assert Replica(world, "r1").settle()
    shown = plan(world)
    with pytest.raises(Escalated):  # the replica is stepped by hand: it never follows here
        run(world, shown)
    assert live(world) == 2  # the pointer moved to the confirmed target
    assert world.smoke.calls == []


class Crash(Exception):
    """The process dies once, right after CHECKING is committed."""


def test_a_confirmed_operation_interrupted_before_the_switch_resumes_on_its_evidence() -> None:
    crashed: list[str] = []

    def crash_once(op: Operation) -> None:
        if op.kind is OperationKind.ROLLBACK and op.phase is Phase.CHECKING and not crashed:
            crashed.append(op.id)
            raise Crash(op.id)

    world = three(FakeLastgood(engine_settings=EngineSettings(after_phase=crash_once)))
    shown = plan(world)
    with pytest.raises(Crash):
        run(world, shown)
    assert live(world) == 3
    done = world.services.deployments.resume(model=MODEL, env=ENV)
    assert [(o.id, o.phase, o.target_version) for o in done] == [
        (crashed[0], Phase.SUCCEEDED, 2)]
    assert world.smoke.calls == [2]  # the resumed step stood on the confirmed plan's checks
