"""The reconciler against the in-memory registry: follow deploys and rollbacks, keep standby
warm, refuse broken versions without touching live, survive an unreachable registry."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from lastgood.adapters.wakeups import sqlite_file
from lastgood.adapters.wakeups.change_signals import PollingSignal
from lastgood.domain.deployments import DeploymentEnd
from lastgood.domain.errors import TransientError
from lastgood.domain.versions import GoldenExample, VersionStatus
from lastgood.ports import UnitOfWork
from lastgood.services.desired import load_desired, load_live, standby_versions
from lastgood.serving.change_signals import ManualSignal
from lastgood.serving.loading import LoadOptions
from lastgood.serving.reconciler import Reconciler, ReconcilerOptions
from lastgood.serving.slots import SlotState, StandbyLimits
from lastgood.serving.state import ServingState
from lastgood.testing import FixedClock, MemoryRegistry, make_new_version, make_verified_record
from tests.unit.test_serving_support import MODEL, RECORD, SCHEMA, FakeLoader

ENV = "production"


class FourVersions:
    """A registry with versions 1..4 of the model (golden output = the version number)."""

    def __init__(self) -> None:
        self.clock = FixedClock()
        self.registry = MemoryRegistry()
        with self.registry() as uow:
            for n in range(1, 5):
                golden = (GoldenExample(inputs=dict(RECORD), expected=n),)
                uow.versions.add(make_new_version(MODEL, tag=f"v{n}", schema=SCHEMA,
                                                  golden=golden), at=self.clock.now(), actor="t")
            uow.commit()

    def deploy(self, number: int, *, verify: bool = True,
               end: DeploymentEnd = DeploymentEnd.SUPERSEDED) -> None:
        self.clock.advance(60)
        with self.registry() as uow:
            live = uow.deployments.live(MODEL, ENV)
            if live is not None:
                uow.deployments.end(live.id, at=self.clock.now(), end=end, reason="t")
            dep = uow.deployments.start(model=MODEL, env=ENV, version=number,
                                        at=self.clock.now(), actor="t", reason="t",
                                        operation_id=None)
            if verify:
                uow.deployments.set_verified(dep.id, make_verified_record(at=self.clock.now()))
            uow.commit()

    def undeploy(self) -> None:
        with self.registry() as uow:
            live = uow.deployments.live(MODEL, ENV)
            assert live is not None
            uow.deployments.end(live.id, at=self.clock.now(), end=DeploymentEnd.UNDEPLOYED,
                                reason="t")
            uow.commit()

    def reports(self) -> list[Any]:
        with self.registry() as uow:
            return uow.replicas.list(model=MODEL, env=ENV)


def make(world: FourVersions, loader: FakeLoader, *, factory: Any = None, standby: int = 1,
         timeout_s: float = 5.0) -> Reconciler:
    return Reconciler(env=ENV, uow_factory=factory or world.registry, loader=loader,
                      clock=world.clock, replica_id="r1", state=ServingState(env=ENV),
                      signal=ManualSignal(), options=ReconcilerOptions(
                          standby=StandbyLimits(count=standby),
                          load=LoadOptions(timeout_s=timeout_s), retry_failed_s=0))


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


async def settle(rec: Reconciler, rounds: int = 4) -> None:
    """Reconcile, let background loads finish, and reconcile again, a few times."""
    for _ in range(rounds):
        await rec.reconcile()
        pending = list(rec._tasks)
        if pending:
            await asyncio.gather(*pending)
    await rec.report()


def live_of(rec: Reconciler) -> int | None:
    live = rec.state.tables[MODEL].live
    return live.number if live else None


def test_a_replica_loads_the_deployed_version_and_reports_it() -> None:
    world, loader = FourVersions(), FakeLoader()
    world.deploy(1)
    rec = make(world, loader)
    run(lambda: settle(rec))
    assert live_of(rec) == 1
    assert rec.state.unready() == []
    [report] = world.reports()
    assert (report.replica_id, report.version, report.state) == ("r1", 1, "serving")


def test_a_rollback_to_the_warm_standby_loads_nothing() -> None:
    world, loader = FourVersions(), FakeLoader()
    world.deploy(1)
    world.deploy(2)
    rec = make(world, loader)

    async def go() -> None:
        await settle(rec)
        assert live_of(rec) == 2
        assert list(rec.state.tables[MODEL].standby) == [1]
        loaded = list(loader.loaded)
        world.deploy(1, end=DeploymentEnd.ROLLED_BACK)
        await rec.reconcile()  # one pass, no awaiting of loads: the switch is immediate
        assert live_of(rec) == 1
        assert loader.loaded == loaded

    run(go)


def test_a_broken_version_is_refused_and_live_is_untouched() -> None:
    world, loader = FourVersions(), FakeLoader(boom=[3])
    world.deploy(2)
    rec = make(world, loader)

    async def go() -> None:
        await settle(rec)
        world.deploy(3)
        await settle(rec)

    run(go)
    assert live_of(rec) == 2
    table = rec.state.tables[MODEL]
    assert "truncated" in table.failures[3].reason
    assert rec.state.unready() == []  # still serving a warm version
    [report] = world.reports()
    assert report.version == 2
    assert "truncated" in report.detail


def test_a_hanging_load_does_not_delay_a_rollback_to_standby() -> None:
    world, loader = FourVersions(), FakeLoader(hang=[3])
    world.deploy(1)
    world.deploy(2)
    rec = make(world, loader, timeout_s=10)

    async def go() -> None:
        await settle(rec)
        world.deploy(3)
        await rec.reconcile()  # starts loading 3 in the background; it hangs
        assert 3 in rec.state.tables[MODEL].loading
        world.deploy(1, end=DeploymentEnd.ROLLED_BACK)
        await rec.reconcile()
        assert live_of(rec) == 1
        loader.release.set()
        await asyncio.gather(*rec._tasks)

    try:
        run(go)
    finally:
        loader.release.set()


def test_an_unreachable_registry_keeps_serving() -> None:
    world, loader = FourVersions(), FakeLoader()
    world.deploy(1)
    broken = {"down": False}

    def factory() -> UnitOfWork:
        if broken["down"]:
            raise TransientError("registry unreachable", fix="check the database")
        return world.registry()

    rec = make(world, loader, factory=factory)

    async def go() -> tuple[bool, bool]:
        await settle(rec)
        broken["down"] = True
        return await rec.reconcile(), await rec.report()

    read, reported = run(go)
    assert (read, reported) == (False, False)
    assert live_of(rec) == 1
    assert rec.state.tables[MODEL].live is not None
    assert "registry unreachable" in rec.state.sync_error


def test_a_report_on_its_way_never_overwrites_the_final_stopped() -> None:
    world, loader = FourVersions(), FakeLoader()
    world.deploy(1)
    slow = threading.Event()

    def factory() -> UnitOfWork:
        if slow.is_set():  # only the report already on its way is slow
            slow.clear()
            time.sleep(0.3)
        return world.registry()

    rec = make(world, loader, factory=factory)

    async def go() -> None:
        await settle(rec)
        slow.set()
        on_its_way = asyncio.create_task(rec.report())
        await asyncio.sleep(0.05)  # its thread is inside the slow registry now
        await rec.stop()
        await on_its_way

    run(go)
    [report] = world.reports()
    assert report.state == "stopped"


def test_undeploying_retires_the_model_and_reports_nothing_served() -> None:
    world, loader = FourVersions(), FakeLoader()
    world.deploy(1)
    rec = make(world, loader)

    async def go() -> None:
        await settle(rec)
        world.undeploy()
        await settle(rec)

    run(go)
    assert MODEL not in rec.state.tables
    assert loader.predictors[1].closed
    [report] = world.reports()
    assert report.version is None


def test_the_loop_follows_a_signal_and_stops_cleanly() -> None:
    world, loader = FourVersions(), FakeLoader()
    world.deploy(1)
    signal = ManualSignal()
    rec = Reconciler(env=ENV, uow_factory=world.registry, loader=loader, clock=world.clock,
                     replica_id="r1", state=ServingState(env=ENV), signal=signal,
                     options=ReconcilerOptions(resync_s=3600, heartbeat_s=3600))

    async def until(predicate: Callable[[], bool]) -> bool:
        for _ in range(500):
            if predicate():
                return True
            await asyncio.sleep(0.01)
        return False

    async def go() -> tuple[bool, bool]:
        task = asyncio.create_task(rec.run())
        first = await until(lambda: MODEL in rec.state.tables and live_of(rec) == 1)
        world.deploy(2)
        signal.notify()
        second = await until(lambda: live_of(rec) == 2)
        await rec.stop()
        await task
        return first, second

    assert run(go) == (True, True)
    assert world.reports()[0].state == "stopped"


def test_polling_signal_wakes_on_a_generation_change() -> None:
    world = FourVersions()
    signal = PollingSignal(world.registry, ENV, interval_s=0.005)

    async def go() -> tuple[bool, bool]:
        with world.registry() as uow:
            generation = uow.deployments.generation(ENV)
        quiet = await signal.wait(timeout_s=0.05, generation=generation)
        world.deploy(1)
        woke = await signal.wait(timeout_s=5, generation=generation)
        return quiet, woke

    assert run(go) == (False, True)


def test_a_fingerprint_gates_the_poll_until_the_file_changes() -> None:
    world = FourVersions()
    reads = {"count": 0}
    stamp = {"value": 1}

    def counting() -> UnitOfWork:
        reads["count"] += 1
        return world.registry()

    signal = PollingSignal(counting, ENV, interval_s=0.002, fingerprint=lambda: stamp["value"],
                           full_every_s=3600)

    async def go() -> tuple[bool, int, bool]:
        quiet = await signal.wait(timeout_s=0.05, generation=0)
        idle_reads = reads["count"]
        world.deploy(1)
        stamp["value"] = 2  # what a commit does to the SQLite file's stat
        return quiet, idle_reads, await signal.wait(timeout_s=5, generation=0)

    quiet, idle_reads, woke = run(go)
    assert quiet is False
    assert idle_reads == 1  # one read to learn the fingerprint, then stat only
    assert woke is True


def test_sqlite_urls_name_their_file() -> None:
    assert sqlite_file("sqlite:////srv/lg/registry.db") == "/srv/lg/registry.db"
    assert sqlite_file("sqlite:///rel.db?mode=rw") == "rel.db"
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql+psycopg://u@h/db") is None


def test_desired_standby_is_the_most_recent_verified_active_versions() -> None:
    world = FourVersions()
    world.deploy(1)
    world.deploy(2, verify=False)
    world.deploy(3)
    world.deploy(4)
    with world.registry() as uow:
        uow.versions.set_status(MODEL, 3, VersionStatus.QUARANTINED)
        uow.commit()
    desired = load_desired(world.registry, ENV, standby=2)
    [model] = desired.models
    assert model.live.number == 4
    assert [v.number for v in model.standby] == [1]  # 2 never verified, 3 quarantined
    with world.registry() as uow:
        history = uow.deployments.history(MODEL, ENV)
    assert standby_versions(history, live_version=4, limit=5) == [3, 1]
    assert desired.get("other") is None
    assert load_live(world.registry, ENV, [MODEL]) == {MODEL: 4}


@pytest.mark.parametrize("standby", [0, 2])
def test_standby_count_is_honoured(standby: int) -> None:
    world, loader = FourVersions(), FakeLoader()
    for n in (1, 2, 3):
        world.deploy(n)
    rec = make(world, loader, standby=standby)
    run(lambda: settle(rec))
    table = rec.state.tables[MODEL]
    assert list(table.standby) == [2, 1][:standby]
    assert all(s.state is SlotState.WARM for s in table.standby.values())
