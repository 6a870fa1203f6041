"""Contract: operations, leases, archive records and replica reports on every registry backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lastgood.domain.archives import ArchiveRecord
from lastgood.domain.deployments import ReplicaReport
from lastgood.domain.errors import AlreadyExists, NotFound, OperationInProgress
from lastgood.domain.operations import Candidate, CheckResult, CheckStatus, OperationKind, Phase
from lastgood.ports import UnitOfWorkFactory
from lastgood.testing import EPOCH, make_operation

KEY = "fraud/production"


def test_an_operation_round_trips_with_its_plan(registry: UnitOfWorkFactory) -> None:
    op = make_operation(
        "op-1", kind=OperationKind.DEPLOY, phase=Phase.CHECKING, from_version=3,
        target_version=2, forced=True, error="", archive_id="arch-1",
        trigger={"signal": "error_rate", "values": [0.1, 0.2]},
        candidates=(
            Candidate(version=2, deployment_id=7, tag="v2", checks=(
                CheckResult("integrity", CheckStatus.PASS, "digests match",
                            evidence={"files": 2}, duration_ms=1.5),
                CheckResult("smoke", CheckStatus.WARN, "slow", evidence={"ms": [10, 12]}),
            )),
            Candidate(version=1, deployment_id=None, refusals=("is retired", "never verified")),
        ),
    )
    with registry() as uow:
        uow.operations.save(op)
        uow.commit()
    with registry() as uow:
        assert uow.operations.get("op-1") == op


def test_save_updates_the_phase(registry: UnitOfWorkFactory) -> None:
    op = make_operation("op-1")
    with registry() as uow:
        uow.operations.save(op)
        uow.operations.save(op.advance(Phase.CHECKING, at=EPOCH + timedelta(seconds=1)))
        uow.commit()
    with registry() as uow:
        stored = uow.operations.get("op-1")
        with pytest.raises(NotFound, match="no operation 'op-9'"):
            uow.operations.get("op-9")
    assert (stored.phase, stored.updated_at) == (Phase.CHECKING, EPOCH + timedelta(seconds=1))


def test_unfinished_lists_non_terminal_operations_oldest_first(
        registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.operations.save(make_operation("b", at=EPOCH + timedelta(seconds=2)))
        uow.operations.save(make_operation("a", at=EPOCH + timedelta(seconds=1),
                                           phase=Phase.SWITCHING))
        uow.operations.save(make_operation("c", phase=Phase.SUCCEEDED))
        uow.operations.save(make_operation("d", phase=Phase.FAILED))
        uow.operations.save(make_operation("e", phase=Phase.ESCALATED))
        uow.operations.save(make_operation("f", env="staging", at=EPOCH + timedelta(seconds=3)))
        uow.commit()
    with registry() as uow:
        assert [o.id for o in uow.operations.unfinished()] == ["a", "b", "f"]
        assert [o.id for o in uow.operations.unfinished(env="staging")] == ["f"]
        assert uow.operations.unfinished(model="churn") == []


def test_list_is_newest_first_with_filters_and_limit(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        for i, (model, env) in enumerate([("fraud", "production"), ("fraud", "staging"),
                                          ("churn", "production"), ("fraud", "production")]):
            uow.operations.save(make_operation(f"op-{i}", model=model, env=env,
                                               at=EPOCH + timedelta(seconds=i)))
        uow.commit()
    with registry() as uow:
        assert [o.id for o in uow.operations.list()] == ["op-3", "op-2", "op-1", "op-0"]
        assert [o.id for o in uow.operations.list(limit=2)] == ["op-3", "op-2"]
        assert [o.id for o in uow.operations.list(model="fraud", env="production")] == [
            "op-3", "op-0"]
        assert [o.id for o in uow.operations.list(env="staging")] == ["op-1"]


def test_a_held_lease_names_its_holder_and_expiry(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.leases.acquire(KEY, holder="op-1", now=EPOCH, ttl_s=60)
        uow.commit()
    with registry() as uow, pytest.raises(OperationInProgress) as caught:
        uow.leases.acquire(KEY, holder="op-2", now=EPOCH + timedelta(seconds=59), ttl_s=60)
    assert "locked by op-1 until 2025-01-01T12:01:00Z" in str(caught.value)
    assert caught.value.details["holder"] == "op-1"


def test_the_holder_renews_and_an_expired_lease_is_taken_over(
        registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.leases.acquire(KEY, holder="op-1", now=EPOCH, ttl_s=60)
        uow.leases.acquire(KEY, holder="op-1", now=EPOCH + timedelta(seconds=50), ttl_s=60)
        uow.commit()
    with registry() as uow, pytest.raises(OperationInProgress, match="until 2025-01-01T12:01:50Z"):
        uow.leases.acquire(KEY, holder="op-2", now=EPOCH + timedelta(seconds=100), ttl_s=60)
    with registry() as uow:  # op-1 crashed: its lease ran out
        uow.leases.acquire(KEY, holder="op-2", now=EPOCH + timedelta(seconds=110), ttl_s=60)
        uow.commit()
    with registry() as uow, pytest.raises(OperationInProgress, match="locked by op-2"):
        uow.leases.acquire(KEY, holder="op-1", now=EPOCH + timedelta(seconds=111), ttl_s=60)


def test_only_the_holder_releases(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.leases.acquire(KEY, holder="op-1", now=EPOCH, ttl_s=60)
        uow.leases.acquire("churn/production", holder="op-3", now=EPOCH, ttl_s=60)
        uow.leases.release(KEY, holder="op-2")
        uow.commit()
    with registry() as uow, pytest.raises(OperationInProgress):
        uow.leases.acquire(KEY, holder="op-2", now=EPOCH, ttl_s=60)
    with registry() as uow:
        uow.leases.release(KEY, holder="op-1")
        uow.leases.release("nothing/here", holder="op-1")
        uow.commit()
    with registry() as uow:
        uow.leases.acquire(KEY, holder="op-2", now=EPOCH, ttl_s=60)
        with pytest.raises(OperationInProgress, match="locked by op-3"):
            uow.leases.acquire("churn/production", holder="op-2", now=EPOCH, ttl_s=60)


def archive(archive_id: str, *, env: str = "production", minutes: float = 0) -> ArchiveRecord:
    return ArchiveRecord(id=archive_id, model="fraud", env=env, version=3, operation_id="op-1",
                         sha256="a" * 64, size=1234, created_at=EPOCH + timedelta(minutes=minutes),
                         manifest={"files": [{"path": "events.jsonl", "size": 10}], "n": 1})


def test_archive_records_are_kept_unchanged(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.archives.add(archive("arch-1"))
        uow.archives.add(archive("arch-2", env="staging", minutes=1))
        uow.archives.add(archive("arch-3", minutes=2))
        uow.commit()
    with registry() as uow:
        assert uow.archives.get("arch-1") == archive("arch-1")
        assert [a.id for a in uow.archives.list()] == ["arch-3", "arch-2", "arch-1"]
        assert [a.id for a in uow.archives.list(env="production")] == ["arch-3", "arch-1"]
        assert uow.archives.list(model="churn") == []
        with pytest.raises(AlreadyExists, match="archive 'arch-1' already exists"):
            uow.archives.add(archive("arch-1", minutes=5))
    with registry() as uow, pytest.raises(NotFound, match="no archive 'arch-9'"):
        uow.archives.get("arch-9")


def report(replica: str, *, env: str = "production", version: int | None = 3,
           state: str = "serving") -> ReplicaReport:
    return ReplicaReport(replica_id=replica, model="fraud", env=env, version=version,
                         since=EPOCH, seen_at=EPOCH + timedelta(seconds=5), state=state,
                         detail="" if state == "serving" else "loading v3")


def test_a_replica_report_replaces_its_previous_one(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.replicas.report(report("r2"))
        uow.replicas.report(report("r1", version=None, state="loading"))
        uow.replicas.report(report("r1", env="staging"))
        uow.commit()
    with registry() as uow:
        assert uow.replicas.list(env="production") == [report("r1", version=None,
                                                              state="loading"), report("r2")]
        uow.replicas.report(report("r1"))
        uow.commit()
    with registry() as uow:
        assert uow.replicas.list(model="fraud") == [report("r1"), report("r2"),
                                                    report("r1", env="staging")]
        assert uow.replicas.list(model="churn") == []
