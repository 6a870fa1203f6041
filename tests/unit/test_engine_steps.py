"""The engine stepped one step at a time on in-memory fakes, with the world changed between
steps: a replica that stops reporting, a check that starts failing, a lease stolen. Each step
is judged by the events it wrote."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from lastgood.adapters.system.drill import crash_drill
from lastgood.domain.audit import Event, EventDraft
from lastgood.domain.deployments import DeploymentEnd, ReplicaReport
from lastgood.domain.errors import InvalidInput, OperationInProgress
from lastgood.domain.operations import Operation, OperationKind, Phase
from lastgood.services.operations import EngineSettings, lease_key, new_operation_id
from lastgood.services.views import operation_view
from lastgood.testing import FixedClock
from tests.unit.fake_lastgood import FakeLastgood

MODEL, ENV = "fraud-detector", "production"


@dataclass
class FakeProcesses:
    """Lease holders by name; a holder is dead only when the test says so."""

    dead: set[str] = field(default_factory=set)
    made: int = 0

    def holder(self) -> str:
        self.made += 1
        return f"engine-{self.made}"

    def is_dead(self, holder: str) -> bool:
        return holder in self.dead


@dataclass
class Stepper:
    """A world whose engine reads the fake clock as its monotonic time; sleeping moves it."""

    world: FakeLastgood
    processes: FakeProcesses
    seen: int = 0

    def step(self, op: Operation) -> Operation:
        return self.world.services.engine.step(op.id)

    def new_events(self) -> list[Event]:
        """The events written since the last call."""
        with self.world.registry() as uow:
            events = list(uow.events.list())
        fresh, self.seen = events[self.seen:], len(events)
        return fresh

    def new_actions(self) -> list[str]:
        return [e.draft.action for e in self.new_events()]

    def live(self) -> int | None:
        status = self.world.services.deployments.status(MODEL, env=ENV)
        return status.live.version if status.live else None


class SteppingClock(FixedClock):
    """The fake clock the engine waits on: each wait moves it, and may move the world too."""

    def __init__(self) -> None:
        super().__init__()
        self.on_sleep: Callable[[], object] | None = None

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if self.on_sleep is not None:
            self.on_sleep()  # the world moves while the engine waits (a replica reports)


def stepper(*, told: list[Operation] | None = None,
            on_sleep: Callable[[Stepper], object] | None = None) -> Stepper:
    clock, processes = SteppingClock(), FakeProcesses()  # the engine's waits move the fake clock
    after_phase = told.append if told is not None else None
    world = FakeLastgood(clock=clock, engine_settings=EngineSettings(
        lease_ttl_s=30, replica_stale_s=15, poll_s=1.0, processes=processes,
        after_phase=after_phase))
    for n in (1, 2, 3):
        world.add_version(tag=f"v{n}.0")
    world.deploy(1)
    world.deploy(2)
    world.deploy(3, verify=False)
    s = Stepper(world, processes)
    if on_sleep is not None:
        clock.on_sleep = lambda: on_sleep(s)
    s.new_events()
    return s


def start_rollback(s: Stepper) -> Operation:
    now = s.world.clock.now()
    op = Operation(id=new_operation_id(), kind=OperationKind.ROLLBACK, model=MODEL, env=ENV,
                   phase=Phase.PLANNED, actor="carol", reason="errors up", created_at=now,
                   updated_at=now, from_version=3)
    s.world.services.engine.start(op)
    assert s.new_actions() == ["operation.planned"]
    return op


def to_switching(s: Stepper) -> Operation:
    op = start_rollback(s)
    assert s.step(op).phase is Phase.CHECKING
    assert s.step(op).phase is Phase.SWITCHING
    s.new_events()
    return op


def serving(s: Stepper, *, switch_timeout_s: float = 10) -> None:
    s.world.services.deployments.configure(ENV, changes={
        "switch_mode": "serving", "switch_timeout_s": switch_timeout_s}, actor="admin")
    s.new_events()


def report(s: Stepper, replica: str, version: int) -> None:
    now = s.world.clock.now()
    with s.world.registry() as uow:
        uow.replicas.report(ReplicaReport(replica, MODEL, ENV, version, now, now))
        uow.commit()


def test_each_step_writes_its_own_events() -> None:
    s = stepper()
    op = start_rollback(s)
    expected: list[tuple[Phase, list[str]]] = [
        (Phase.CHECKING, ["operation.checking"]),
        (Phase.SWITCHING, ["operation.checked"]),
        (Phase.CONFIRMING, ["deployment.switched"]),  # the switch step: the pointer moves
        (Phase.ARCHIVING, ["switch.confirmed"]),  # the confirm step leaves CONFIRMING
        (Phase.VERIFYING, ["version.quarantined", "archive.created"]),
        (Phase.SUCCEEDED, ["deployment.verified", "operation.succeeded"]),
    ]
    for phase, actions in expected:
        assert s.step(op).phase is phase
        assert s.new_actions() == actions
    assert s.live() == 2
    assert s.step(op).phase is Phase.SUCCEEDED  # a terminal operation steps no further
    assert s.new_actions() == []
    assert s.world.services.audit.verify().ok


def test_the_archiving_step_commits_its_phase_with_the_archive() -> None:
    s = stepper()
    op = to_switching(s)
    s.step(op)
    s.step(op)
    s.new_events()
    archived = s.step(op)
    created = s.new_events()[-1]
    assert created.draft.action == "archive.created"
    assert created.draft.before == {"phase": "archiving"}
    assert created.draft.after is not None
    assert created.draft.after["phase"] == "verifying"
    assert created.draft.after["archive_id"] == archived.archive_id
    assert created.draft.after["size"] > 0


def test_a_replica_that_stops_reporting_no_longer_holds_the_switch() -> None:
    s = stepper()
    serving(s)
    report(s, "replica-a", 3)
    op = to_switching(s)
    assert s.step(op).phase is Phase.CONFIRMING
    assert s.new_actions() == ["deployment.switched"]
    s.world.clock.advance(16)  # replica-a went away: its last report is stale
    assert s.step(op).phase is Phase.ARCHIVING
    confirmed = s.new_events()[-1]
    assert confirmed.draft.action == "switch.confirmed"
    assert confirmed.draft.evidence["replicas"] == []
    assert confirmed.draft.evidence["note"] == "no live replica; each follows at start"


def test_a_replica_that_keeps_reporting_the_old_version_escalates() -> None:
    s = stepper()
    serving(s, switch_timeout_s=3)
    op = to_switching(s)
    s.step(op)
    s.new_events()
    report(s, "replica-a", 3)  # it reports, but never the target
    done = s.step(op)
    assert done.phase is Phase.ESCALATED
    assert done.error == "replicas did not report the target in time"
    escalated = s.new_events()
    assert [e.draft.action for e in escalated] == ["operation.escalated"]
    assert escalated[0].draft.outcome == "failed"
    assert escalated[0].draft.evidence["behind"] == ["replica-a"]
    assert s.live() == 2  # the pointer stays on the target; a human is paged


def test_a_replica_that_catches_up_between_steps_confirms() -> None:
    s = stepper()
    serving(s)
    report(s, "replica-a", 3)
    op = to_switching(s)
    s.step(op)
    report(s, "replica-a", 2)
    s.new_events()
    assert s.step(op).phase is Phase.ARCHIVING
    assert s.new_events()[-1].draft.evidence["replicas"] == ["replica-a"]


def test_a_check_that_starts_failing_before_checking_moves_to_the_next_candidate() -> None:
    s = stepper()
    op = start_rollback(s)
    assert s.step(op).phase is Phase.CHECKING
    assert s.new_actions() == ["operation.checking"]
    v2 = s.world.services.registry.show(MODEL, 2)
    s.world.store.corrupt(v2.manifest.files[0].sha256)  # v2's artifact breaks meanwhile
    checked = s.step(op)
    assert checked.target_version == 1
    events = s.new_events()
    assert [e.draft.action for e in events] == ["operation.checked"]
    assert events[0].draft.evidence["target"] == 1
    refused = {c["version"]: c["refusals"] for c in events[0].draft.evidence["candidates"]}
    assert any(r.startswith("integrity:") for r in refused[2])


def test_every_candidate_failing_its_checks_refuses_and_leaves_live() -> None:
    s = stepper()
    op = start_rollback(s)
    s.step(op)
    s.world.smoke.failing.update({1: "crashed", 2: "crashed"})
    done = s.step(op)
    assert done.phase is Phase.FAILED
    refused = s.new_events()
    assert [e.draft.action for e in refused] == ["operation.checking", "operation.refused"]
    assert refused[-1].draft.outcome == "refused"
    assert s.live() == 3


def test_a_verification_that_starts_failing_after_the_switch_escalates() -> None:
    s = stepper()
    op = to_switching(s)
    for _ in range(3):  # switch, confirm, archive
        s.step(op)
    s.new_events()
    s.world.verifier.verdict = "DEGRADED"
    done = s.step(op)
    assert done.phase is Phase.ESCALATED
    escalated = s.new_events()
    assert [e.draft.action for e in escalated] == ["operation.escalated"]
    assert escalated[0].draft.evidence["verdict"] == "DEGRADED"
    assert s.live() == 2


def test_a_stolen_lease_stops_the_next_step_until_its_holder_is_gone() -> None:
    s = stepper()
    op = to_switching(s)
    s.world.clock.advance(31)  # our lease ran out between two steps...
    with s.world.registry() as uow:  # ...and another process took it
        uow.leases.acquire(lease_key(MODEL, ENV), holder="thief", now=s.world.clock.now(),
                           ttl_s=30)
        uow.commit()
    with pytest.raises(OperationInProgress):
        s.step(op)
    assert s.new_actions() == []
    assert s.live() == 3  # the pointer did not move without the lease
    s.processes.dead.add("thief")  # the thief's process is gone: its lease is broken
    assert s.step(op).phase is Phase.CONFIRMING
    assert s.new_actions() == ["deployment.switched"]
    assert s.live() == 2


def test_after_phase_is_told_each_phase_once() -> None:
    told: list[Operation] = []
    s = stepper(told=told)
    op = start_rollback(s)
    told.clear()  # the set-up deploys were told too
    done = s.world.services.engine.run_to_completion(op.id)
    assert done.phase is Phase.SUCCEEDED
    assert {o.id for o in told} == {op.id}
    assert [o.phase for o in told] == [Phase.PLANNED, Phase.CHECKING, Phase.SWITCHING,
                                       Phase.CONFIRMING, Phase.ARCHIVING, Phase.VERIFYING,
                                       Phase.SUCCEEDED]


def test_a_rollback_names_the_operation_it_finished_first() -> None:
    s = stepper()
    crashed = to_switching(s)  # a rollback that crashed before moving the pointer
    s.world.clock.advance(60)
    op = s.world.services.deployments.rollback(MODEL, env=ENV, reason="still bad",
                                               actor="dave")
    assert op.resumed == (crashed.id,)
    assert operation_view(op)["resumed"] == [crashed.id]
    assert (op.from_version, op.target_version) == (2, 1)
    planned = [e for e in s.new_events() if e.draft.action == "operation.planned"]
    after: dict[str, Any] = dict(planned[-1].draft.after or {})
    assert after["resumed"] == [crashed.id]


def test_a_rollback_with_nothing_to_finish_says_so() -> None:
    s = stepper()
    op = s.world.services.deployments.rollback(MODEL, env=ENV, reason="bad", actor="dave")
    assert op.resumed == ()
    planned = [e for e in s.new_events() if e.draft.action == "operation.planned"]
    assert "resumed" not in (planned[-1].draft.after or {})


def test_the_crash_drill_halts_only_after_its_phase() -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        raise SystemExit  # stands in for the kill -9 the drill waits for

    halt = crash_drill("switching", sleep=sleep)
    assert halt is not None
    now = FixedClock().now()
    op = Operation(id="op-1", kind=OperationKind.ROLLBACK, model=MODEL, env=ENV,
                   phase=Phase.CHECKING, actor="a", reason="r", created_at=now, updated_at=now)
    halt(op)
    assert slept == []
    with pytest.raises(SystemExit):
        halt(replace(op, phase=Phase.SWITCHING))
    assert slept == [3600]
    assert crash_drill("") is None


def test_a_crash_drill_naming_no_phase_is_refused() -> None:
    with pytest.raises(InvalidInput, match="LASTGOOD_HALT_AFTER 'swiching' is not a phase"):
        crash_drill("swiching")



def move_pointer_inside_switching(s: Stepper, op: Operation) -> None:
    """What the engine did before CONFIRMING existed: the pointer moved (with its event) and
    the stored operation stayed in SWITCHING; then the process died."""
    now = s.world.clock.now()
    with s.world.registry() as uow:
        live = uow.deployments.live(MODEL, ENV)
        assert live is not None
        uow.deployments.end(live.id, at=now, end=DeploymentEnd.ROLLED_BACK, reason=op.reason)
        dep = uow.deployments.start(model=MODEL, env=ENV, version=2, at=now, actor=op.actor,
                                    reason=op.reason, operation_id=op.id)
        uow.events.append(EventDraft(action="deployment.switched", actor=op.actor, model=MODEL,
                                     env=ENV, subject=op.id, before={"version": live.version},
                                     after={"version": 2, "deployment_id": dep.id}), at=now)
        uow.commit()
    s.new_events()


def test_an_old_format_switching_operation_resumes_through_the_idempotent_switch() -> None:
    s = stepper()
    op = to_switching(s)
    move_pointer_inside_switching(s, op)
    deployments_before = len(s.world.services.deployments.history(MODEL, env=ENV))
    assert s.step(op).phase is Phase.CONFIRMING
    assert s.new_actions() == ["operation.confirming"]  # no second pointer move
    assert len(s.world.services.deployments.history(MODEL, env=ENV)) == deployments_before
    done = s.world.services.deployments.resume(model=MODEL, env=ENV)
    assert [(o.id, o.phase, o.target_version) for o in done] == [
        (op.id, Phase.SUCCEEDED, 2)]
    assert s.live() == 2
    assert s.world.services.audit.verify().ok


def test_an_old_format_switching_operation_in_command_mode_does_not_run_the_command_again(
        ) -> None:
    s = stepper()
    s.world.services.deployments.configure(ENV, changes={
        "switch_mode": "command", "deploy_command": "./ship.sh"}, actor="admin")
    s.new_events()
    op = to_switching(s)
    move_pointer_inside_switching(s, op)
    done = s.world.services.deployments.resume(model=MODEL, env=ENV)
    assert [o.phase for o in done] == [Phase.SUCCEEDED]
    assert s.world.commands.runs == []
