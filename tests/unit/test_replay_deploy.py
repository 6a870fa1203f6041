"""Shadow before switch on in-memory fakes: a deploy in its checks asks every replica for its
target as one more standby (the shadow); a real reconciler loads it, replays its reservoir on
it and reports; the check judges the replay; the shadow goes when the deploy ends. Stepped
phase by phase, judged by the desired state, the events and the operation."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from typing import Any

from lastgood.domain.operations import Operation, OperationKind, Phase
from lastgood.domain.replay import REPLAY_ARCHIVE
from lastgood.services.desired import load_desired
from lastgood.services.operations import new_operation_id
from lastgood.services.views import status_view
from lastgood.serving.reservoir import Kept
from tests.unit.fake_lastgood import FakeLastgood
from tests.unit.test_readiness_rollback import ENV, MODEL, Replica
from tests.unit.test_replay_rollback import TODAY, Refusing


def world_with_v4() -> FakeLastgood:
    """v1 and v2 verified, v3 live, v4 registered: the version to deploy."""
    w = FakeLastgood()
    for n in (1, 2, 3, 4):
        w.add_version(tag=f"v{n}.0")
    w.deploy(1)
    w.deploy(2)
    w.deploy(3, verify=False)
    w.services.deployments.configure(ENV, changes={"switch_mode": "serving",
                                                   "switch_timeout_s": 10}, actor="admin")
    return w


def traffic(replica: Replica) -> None:
    """Eight of today's requests, answered 0 by live v3; one in four from a new country."""
    for i in range(8):
        record = TODAY if i % 4 == 0 else {"amount": float(i), "country": "fr"}
        replica.rec.state.reservoirs.offer(MODEL, Kept([record], [0], 3, time.monotonic()),
                                           size_bytes=40)


def start_deploy(w: FakeLastgood, *, forced: bool = False, dry_run: bool = False) -> Operation:
    now = w.clock.now()
    op = Operation(id=new_operation_id(), kind=OperationKind.DEPLOY, model=MODEL, env=ENV,
                   phase=Phase.PLANNED, actor="alice", reason="ship v4", created_at=now,
                   updated_at=now, from_version=3, target_version=4, forced=forced,
                   trigger={"dry_run": True} if dry_run else {})
    w.services.engine.start(op)
    return op


def replay_and_report(replica: Replica, *, refusing: Refusing | None = None) -> None:
    """Converge (the shadow loads), then replay the reservoir on every standby and report."""
    async def go() -> None:
        for _ in range(3):
            await replica.rec.reconcile()
            await asyncio.gather(*list(replica.rec._tasks))
        if refusing is not None:
            replica.rec.state.tables[MODEL].standby[4].predictor = refusing
        await replica.rec.replay()
        await replica.rec.report()
    asyncio.run(go())


def shadow_of(w: FakeLastgood) -> tuple[int, ...]:
    found = load_desired(w.registry, ENV).get(MODEL)
    assert found is not None
    return tuple(v.number for v in found.shadow)


def last_event(w: FakeLastgood, action: str) -> Any:
    with w.registry() as uow:
        return [e for e in uow.events.list() if e.draft.action == action][-1].draft


def replay_check(op: Operation) -> Any:
    [cand] = op.candidates
    return next(c for c in cand.checks if c.name == "replay")


def generation(w: FakeLastgood) -> int:
    with w.registry() as uow:
        return uow.deployments.generation(ENV)


def test_a_deploy_in_its_checks_is_a_shadow_standby_until_it_switches() -> None:
    w = world_with_v4()
    replica = Replica(w, "r1")
    replica.settle()
    traffic(replica)
    op = start_deploy(w)
    assert shadow_of(w) == ()
    before = generation(w)
    assert w.services.engine.step(op.id).phase is Phase.CHECKING
    assert generation(w) == before + 1  # the replicas are woken
    assert shadow_of(w) == (4,)
    replay_and_report(replica)
    table = replica.rec.state.tables[MODEL]
    assert 4 in table.standby  # beside the standbys, beyond their count
    assert table.live is not None
    assert table.live.number == 3  # no traffic moved

    checked = w.services.engine.step(op.id)
    assert checked.phase is Phase.SWITCHING
    assert replay_check(checked).status == "pass"
    assert replay_check(checked).summary == (
        "v4 answered all 8 recent requests; v4 agrees with live v3 on 100 % of the last "
        "hour's requests")
    assert last_event(w, "operation.checked").evidence["shadow"]["replayed"] == ["r1"]
    assert shadow_of(w) == (4,)  # still wanted until the pointer moves
    assert w.services.engine.step(op.id).phase is Phase.CONFIRMING
    assert shadow_of(w) == ()


def test_a_deploy_that_fails_on_todays_traffic_is_refused_and_its_shadow_dropped() -> None:
    w = world_with_v4()
    replica = Replica(w, "r1")
    replica.settle()
    traffic(replica)
    op = start_deploy(w)
    w.services.engine.step(op.id)
    replay_and_report(replica, refusing=Refusing(("fr",)))
    before = generation(w)
    refused = w.services.engine.step(op.id)
    assert refused.phase is Phase.FAILED
    assert refused.candidates[0].refusals == (
        "replay: v4 fails on 2 of 8 recent requests: country='pt': ValueError: Found unknown "
        "categories ['pt'] — live v3 answers them",)
    event = last_event(w, "operation.refused")
    [cand] = event.evidence["candidates"]
    [check] = [c for c in cand["checks"] if c["name"] == "replay"]
    assert check["evidence"]["proofs"][0]["example"] == "country='pt'"
    assert generation(w) == before + 1
    assert shadow_of(w) == ()
    status = w.services.deployments.status(MODEL, env=ENV)
    assert status.live is not None
    assert status.live.version == 3


def test_force_deploys_past_the_replay_and_names_it() -> None:
    w = world_with_v4()
    replica = Replica(w, "r1")
    replica.settle()
    traffic(replica)
    op = start_deploy(w, forced=True)
    w.services.engine.step(op.id)
    replay_and_report(replica, refusing=Refusing(("fr",)))
    checked = w.services.engine.step(op.id)
    assert checked.phase is Phase.SWITCHING
    check = replay_check(checked)
    assert check.status == "warn"
    assert check.summary.startswith("overridden by --force: v4 fails on 2 of 8 recent requests")
    assert check.evidence["overridden"] is True


def test_a_dry_run_replays_and_checks_then_ends_without_moving_anything() -> None:
    w = world_with_v4()
    replica = Replica(w, "r1")
    replica.settle()
    traffic(replica)
    op = start_deploy(w, dry_run=True)
    w.services.engine.step(op.id)
    replay_and_report(replica)
    done = w.services.engine.step(op.id)
    assert done.phase is Phase.CHECKED
    assert done.phase.is_terminal
    assert replay_check(done).status == "pass"
    assert shadow_of(w) == ()
    status = w.services.deployments.status(MODEL, env=ENV)
    assert status.live is not None
    assert status.live.version == 3


def test_a_replica_that_never_replays_is_waited_for_until_the_switch_timeout() -> None:
    w = world_with_v4()
    replica = Replica(w, "r1")
    replica.settle()  # reports, but never loads the shadow
    op = start_deploy(w)
    w.services.engine.step(op.id)
    start = w.clock.monotonic()
    checked = w.services.engine.step(op.id)
    assert w.clock.monotonic() - start >= 10  # the env's switch timeout
    assert replay_check(checked).status == "warn"
    assert replay_check(checked).summary.startswith("no replay data yet")
    assert last_event(w, "operation.checked").evidence["shadow"]["waiting"] == ["r1"]


def test_a_replica_that_cannot_load_the_shadow_refuses_the_deploy() -> None:
    w = world_with_v4()
    replica = Replica(w, "r1")
    replica.settle()

    def broken(version: Any) -> Any:
        raise RuntimeError("no such operator: MatMulNBits")
    replica.rec._loader = broken
    op = start_deploy(w)
    w.services.engine.step(op.id)
    replay_and_report(replica)
    refused = w.services.engine.step(op.id)
    assert refused.phase is Phase.FAILED
    assert any(r.startswith("v4 could not be loaded on r1: ") and "MatMulNBits" in r
               for r in refused.candidates[0].refusals), refused.candidates


def _refused_with(archive: bool) -> tuple[FakeLastgood, Replica, Operation]:
    w = world_with_v4()
    replica = Replica(w, "r1")
    replica.rec.state.reservoirs.options = replace(replica.rec.state.reservoirs.options,
                                                   archive=archive)
    replica.settle()
    traffic(replica)
    op = start_deploy(w)
    w.services.engine.step(op.id)
    replay_and_report(replica, refusing=Refusing(("fr",)))
    return w, replica, w.services.engine.step(op.id)


def test_a_deploy_refused_on_todays_traffic_keeps_the_failing_requests_in_its_archive() -> None:
    w, _, refused = _refused_with(archive=True)
    assert refused.phase is Phase.FAILED
    assert refused.archive_id is not None
    record, members = w.services.archives.show(refused.archive_id)
    assert record.version == 4
    assert record.manifest["kind"] == "refused deploy"
    failing = json.loads(members["replay_failures.json"])
    assert [(f["replica"], f["version"], f["records"]) for f in failing] == [
        ("r1", 4, [TODAY]), ("r1", 4, [TODAY])]
    assert failing[0]["error"].startswith("ValueError: Found unknown categories ['pt']")
    assert last_event(w, "operation.refused").evidence["archive"] == refused.archive_id
    # Nowhere else: the audit trail and the status carry counts and one shortened example.
    status = w.services.deployments.status(MODEL, env=ENV)
    shown = json.dumps(status_view(status)) + json.dumps(
        last_event(w, "operation.refused").evidence)
    assert '"amount": 3.0' not in shown


def test_replay_archive_off_keeps_every_raw_request_in_the_replica() -> None:
    w, replica, refused = _refused_with(archive=False)
    assert refused.phase is Phase.FAILED
    assert refused.archive_id is None
    with w.registry() as uow:
        [report] = uow.replicas.list(model=MODEL, env=ENV)
    assert REPLAY_ARCHIVE not in (report.evidence or {})
    assert replica.rec.replayer.failing_requests(replica.rec.state.tables[MODEL], (4,)) == []


def test_only_a_replay_made_for_this_deploy_counts_for_its_shadow() -> None:
    """A proof of the same version left from an earlier deploy (or a standby's last round) may
    be gone by the time the replay check reads the reports: the deploy waits for its own."""
    from datetime import UTC, datetime, timedelta

    from lastgood.domain.deployments import ReplicaReport
    from lastgood.domain.replay import ReplayProof, ReplayState, proof_to_json
    from lastgood.services.replay import shadow_progress
    from lastgood.serving.reconciler import _new_shadow

    made = datetime(2026, 1, 1, tzinfo=UTC)
    proof = ReplayProof(version=2, live_version=3, state=ReplayState.REPLAYED, replayed=5, at=made)
    report = ReplicaReport("r1", "m", "production", 3, since=made, seen_at=made,
                           evidence={"replay": [proof_to_json(proof)]})
    assert shadow_progress([report], 2).replayed == ("r1",)
    assert shadow_progress([report], 2, since=made).replayed == ("r1",)
    later = shadow_progress([report], 2, since=made + timedelta(seconds=1))
    assert (later.replayed, later.waiting) == ((), ("r1",))
    # the replica replays at once when a deploy names a shadow it had not been given
    assert _new_shadow({}, {"m": frozenset({2})})
    assert _new_shadow({"m": frozenset({1})}, {"m": frozenset({1, 2})})
    assert not _new_shadow({"m": frozenset({2})}, {"m": frozenset({2})})
    assert not _new_shadow({"m": frozenset({2})}, {})
