"""The operation engine stepped on in-memory fakes: target choice, refusals, phases, events."""

from __future__ import annotations

import pytest

from lastgood.domain.audit import verify_chain
from lastgood.domain.errors import (
    Escalated,
    Incompatible,
    InvalidInput,
    NoEligibleTarget,
    NotFound,
    OperationInProgress,
)
from lastgood.domain.operations import Phase
from lastgood.domain.versions import Column, Schema, VersionStatus
from tests.unit.fake_lastgood import FakeLastgood

MODEL, ENV = "fraud-detector", "production"


@pytest.fixture
def world() -> FakeLastgood:
    return FakeLastgood()


def history_of_three(world: FakeLastgood, *, verify_second: bool = True) -> None:
    """v1 verified, v2 verified (or not), v3 live and bad."""
    for n in (1, 2, 3):
        world.add_version(tag=f"v{n}.0")
    world.deploy(1)
    world.deploy(2, verify=verify_second)
    world.deploy(3, verify=False)


def test_rollback_picks_most_recent_verified_not_previous(world: FakeLastgood) -> None:
    history_of_three(world, verify_second=False)
    op = world.services.deployments.rollback(MODEL, env=ENV, reason="errors up", actor="carol")
    assert op.phase is Phase.SUCCEEDED
    assert op.target_version == 1  # v2 was the previous one, but never verified
    refused = {c.version: c.refusals for c in op.candidates}
    assert refused[3] == ("is the live version", f"was never verified in {ENV}")
    assert refused[2] == (f"was never verified in {ENV}",)


def test_rollback_moves_pointer_quarantines_and_archives(world: FakeLastgood) -> None:
    history_of_three(world)
    op = world.services.deployments.rollback(MODEL, env=ENV, reason="errors up", actor="carol")
    status = world.services.deployments.status(MODEL, env=ENV)
    assert status.live is not None
    assert status.live.version == 2
    assert world.services.registry.show(MODEL, 3).status is VersionStatus.QUARANTINED
    history = world.services.deployments.history(MODEL, env=ENV)
    assert [(d.version, d.end) for d in history][:2] == [(2, None), (3, "rolled_back")]
    assert op.archive_id is not None
    record, members = world.services.archives.show(op.archive_id)
    assert record.version == 3
    assert {"failed_version.json", "checks.json", "events.jsonl", "environment.json"} <= set(
        members)
    assert world.events()[-9:] == [
        "operation.planned", "operation.checking", "operation.checked", "deployment.switched",
        "switch.confirmed", "version.quarantined", "archive.created", "deployment.verified",
        "operation.succeeded"]
    assert world.services.audit.verify().ok


def test_corrupted_target_is_refused_and_next_candidate_tried(world: FakeLastgood) -> None:
    history_of_three(world)
    v2 = world.services.registry.show(MODEL, 2)
    world.store.corrupt(v2.manifest.files[0].sha256)
    op = world.services.deployments.rollback(MODEL, env=ENV, reason="errors up", actor="carol")
    assert op.target_version == 1
    v2_candidate = next(c for c in op.candidates if c.version == 2)
    assert any(r.startswith("integrity:") for r in v2_candidate.refusals)


def test_schema_incompatible_target_names_column_and_dtype(world: FakeLastgood) -> None:
    world.add_version(schema=Schema(inputs=(Column("amount", "string"),)))
    world.add_version()
    world.deploy(1)
    features = (Column("amount", "float64"), Column("country", "string"))
    world.services.deployments.configure(ENV, changes={"feature_schema": features},
                                         actor="admin")
    world.deploy(2, verify=False)
    with pytest.raises(NoEligibleTarget) as err:
        world.services.deployments.rollback(MODEL, env=ENV, reason="bad", actor="carol")
    text = err.value.one_line()
    assert "column 'amount' is string in the version but float64 now" in text
    assert world.services.deployments.status(MODEL, env=ENV).live.version == 2  # type: ignore[union-attr]


def test_no_eligible_target_lists_every_candidate_and_changes_nothing(world: FakeLastgood) -> None:
    world.add_version()
    world.add_version()
    world.deploy(1, verify=False)
    world.deploy(2, verify=False)
    before = world.services.deployments.history(MODEL, env=ENV)
    with pytest.raises(NoEligibleTarget) as err:
        world.services.deployments.rollback(MODEL, env=ENV, reason="bad", actor="carol")
    assert len(err.value.refusals) == 2
    assert world.services.deployments.history(MODEL, env=ENV) == before
    assert world.events()[-1] == "operation.refused"


def test_quarantined_and_retired_versions_are_never_targets(world: FakeLastgood) -> None:
    for _ in range(4):
        world.add_version()
    world.deploy(1)
    world.deploy(2)
    world.deploy(3)
    world.deploy(4, verify=False)
    world.services.registry.retire(MODEL, 3, reason="license expired", actor="alice")
    with world.registry() as uow:
        uow.versions.set_status(MODEL, 2, VersionStatus.QUARANTINED)
        uow.commit()
    op = world.services.deployments.rollback(MODEL, env=ENV, reason="bad", actor="carol")
    assert op.target_version == 1


def test_failed_smoke_test_refuses_candidate(world: FakeLastgood) -> None:
    history_of_three(world)
    world.smoke.failing[2] = "0/3 golden examples reproduced"
    op = world.services.deployments.rollback(MODEL, env=ENV, reason="bad", actor="carol")
    assert op.target_version == 1


def test_dry_run_changes_nothing(world: FakeLastgood) -> None:
    history_of_three(world)
    before = world.events()
    plan = world.services.deployments.plan_rollback(MODEL, env=ENV)
    assert plan.target is not None
    assert plan.target.version == 2
    assert all(c.status.value != "fail" for c in plan.target.checks)
    assert world.events() == before


def test_rollback_refusals_are_audited(world: FakeLastgood) -> None:
    history_of_three(world)
    with pytest.raises(InvalidInput):
        world.services.deployments.rollback(MODEL, env=ENV, reason="  ", actor="carol")
    with pytest.raises(NotFound, match="staging"):
        world.services.deployments.rollback(MODEL, env="staging", reason="x", actor="carol")
    world.services.registry.retire(MODEL, 1, reason="gone", actor="alice")
    with pytest.raises(NoEligibleTarget):
        world.services.deployments.rollback(MODEL, env=ENV, reason="x", actor="carol", to=1)
    assert world.events().count("rollback.refused") == 2
    assert world.events()[-1] == "operation.refused"


def test_forced_rollback_to_unverified_version(world: FakeLastgood) -> None:
    history_of_three(world, verify_second=False)
    with pytest.raises(NoEligibleTarget):
        world.services.deployments.rollback(MODEL, env=ENV, reason="x", actor="c", to="v2.0")
    op = world.services.deployments.rollback(MODEL, env=ENV, reason="x", actor="c", to="v2.0",
                                             force=True)
    assert op.target_version == 2
    assert op.forced


def test_second_operation_conflicts_while_lease_held(world: FakeLastgood) -> None:
    history_of_three(world)
    with world.registry() as uow:
        uow.leases.acquire(f"deployment:{MODEL}/{ENV}", holder="other-host:1:abc",
                           now=world.clock.now(), ttl_s=30)
        uow.commit()
    with pytest.raises(OperationInProgress):
        world.services.deployments.rollback(MODEL, env=ENV, reason="x", actor="c")
    world.clock.advance(31)  # the holder crashed: its lease expires
    op = world.services.deployments.rollback(MODEL, env=ENV, reason="x", actor="c")
    assert op.phase is Phase.SUCCEEDED


def test_verification_failure_escalates(world: FakeLastgood) -> None:
    history_of_three(world)
    world.verifier.verdict = "DEGRADED"
    world.clock.advance(60)
    with pytest.raises(Escalated):
        world.services.deployments.rollback(MODEL, env=ENV, reason="x", actor="c")
    assert world.services.deployments.operations(limit=1)[0].phase is Phase.ESCALATED


def test_deploy_refuses_failing_preflight_and_keeps_live(world: FakeLastgood) -> None:
    world.add_version()
    world.add_version()
    world.deploy(1)
    world.host.memory_mb = 10
    world.add_version()  # v3 declares no memory: passes
    world.smoke.failing[2] = "crashed"
    with pytest.raises(Incompatible, match="smoke"):
        world.services.deployments.deploy(MODEL, 2, env=ENV, reason="ship", actor="a")
    assert world.services.deployments.status(MODEL, env=ENV).live.version == 1  # type: ignore[union-attr]


def test_engine_steps_phase_by_phase_and_resume_completes(world: FakeLastgood) -> None:
    history_of_three(world)
    deps = world.services.deployments
    op = deps._rollback_op(MODEL, ENV, "carol", "errors", None, False)
    world.services.engine.start(op)
    phases = []
    for _ in range(2):  # crash after CHECKING committed, before the switch
        phases.append(world.services.engine.step(op.id).phase)
    assert phases == [Phase.CHECKING, Phase.SWITCHING]
    assert deps.status(MODEL, env=ENV).live.version == 3  # type: ignore[union-attr]
    done = world.services.engine.resume()
    assert [d.phase for d in done] == [Phase.SUCCEEDED]
    assert deps.status(MODEL, env=ENV).live.version == 2  # type: ignore[union-attr]
    report = world.services.audit.verify()
    assert report.ok
    assert report.checked == len(world.events())


def test_command_mode_switch_failure_leaves_live_unchanged(world: FakeLastgood) -> None:
    history_of_three(world)
    world.services.deployments.configure(ENV, changes={"switch_mode": "command",
                                                       "deploy_command": "deploy.sh"},
                                         actor="admin")
    world.commands.exit_codes["deploy.sh"] = 3
    with pytest.raises(Exception, match="deploy command exited 3"):
        world.services.deployments.rollback(MODEL, env=ENV, reason="x", actor="c")
    assert world.services.deployments.status(MODEL, env=ENV).live.version == 3  # type: ignore[union-attr]
    world.commands.exit_codes["deploy.sh"] = 0
    op = world.services.deployments.rollback(MODEL, env=ENV, reason="x", actor="c")
    assert op.target_version == 2
    _, variables = world.commands.runs[-1]
    assert variables["LASTGOOD_VERSION"] == "2"
    assert variables["LASTGOOD_DIGEST"]


def test_audit_chain_detects_edit(world: FakeLastgood) -> None:
    history_of_three(world)
    with world.registry() as uow:
        events = list(uow.events.scan())
        head = uow.events.head()
    from dataclasses import replace

    tampered = list(events)
    tampered[2] = replace(tampered[2], draft=replace(tampered[2].draft, actor="mallory"))
    report = verify_chain(tampered, head=head)
    assert report.first_bad == events[2].seq


def test_healthy_live_verification_verifies_the_restored_deployment(world: FakeLastgood) -> None:
    history_of_three(world)
    world.verifier.verdict = "HEALTHY"
    world.services.deployments.rollback(MODEL, env=ENV, reason="x", actor="c")
    live = world.services.deployments.status(MODEL, env=ENV).live
    assert live is not None
    assert live.verified is not None
    assert live.verified.approver == "lastgood"
    assert live.verified.baseline == {"error_rate": 0.01, "latency_p95_ms": 30}


def test_skipped_verification_leaves_the_restored_deployment_unverified(
        world: FakeLastgood) -> None:
    history_of_three(world)
    world.verifier.verdict = "SKIPPED"
    world.services.deployments.rollback(MODEL, env=ENV, reason="x", actor="c")
    live = world.services.deployments.status(MODEL, env=ENV).live
    assert live is not None
    assert live.verified is None
