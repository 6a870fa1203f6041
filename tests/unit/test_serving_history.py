"""A replica writes its metric history with its reports: one point per version per bucket, the
change of its counters, merged exactly by a reading; nothing lost while the registry is down."""

from __future__ import annotations

import asyncio

from lastgood.domain.errors import TransientError
from lastgood.domain.measurements import RateCounts
from lastgood.ports import UnitOfWork
from lastgood.serving.history import HistoryRecorder
from lastgood.testing import FixedClock
from tests.unit.test_serving_reconciler import ENV, FourVersions, make, settle
from tests.unit.test_serving_support import MODEL, FakeLoader


def serve(rec_state: object, version: int, *, ok: int, failed: int, at: object) -> None:
    recorder = rec_state.recorder  # type: ignore[attr-defined]
    for i in range(ok):
        recorder.success(MODEL, version, request_id=f"{version}-{i}-{at}", records=[{}],
                         predictions=[1], seconds=0.004, at=at)
    for i in range(failed):
        recorder.failure(MODEL, version, request_id=f"f{version}-{i}-{at}", records=[{}],
                         error="boom", seconds=0.2, at=at)


def history(world: FourVersions) -> list:  # type: ignore[type-arg]
    with world.registry() as uow:
        return [p.point() for p in uow.history.read(MODEL, ENV, resolution_s=10, since_s=0,
                                                    until_s=2**40,
                                                    limit=10_000)]


def test_each_bucket_writes_the_change_of_the_counters() -> None:
    world, loader = FourVersions(), FakeLoader()
    world.deploy(1)
    rec = make(world, loader)

    async def go() -> None:
        await settle(rec)  # nothing served yet: no point
        serve(rec.state, 1, ok=8, failed=2, at=world.clock.now())
        world.clock.advance(10)
        await rec.report()
        serve(rec.state, 1, ok=5, failed=0, at=world.clock.now())
        world.clock.advance(3)
        await rec.report()  # inside the same bucket: not due yet
        world.clock.advance(7)
        await rec.report()

    asyncio.run(go())
    points = history(world)
    assert [(p.version, p.replica, p.summary.errors) for p in points] == [
        (1, "r1", RateCounts(2, 10)), (1, "r1", RateCounts(0, 5))]
    assert points[0].at_s < points[1].at_s
    assert all(p.at_s % 10 == 0 and p.resolution_s == 10 for p in points)
    assert points[0].summary.latency is not None
    assert points[0].summary.latency.total == 10


def test_counts_are_kept_while_the_registry_is_down_and_written_after() -> None:
    world, loader = FourVersions(), FakeLoader()
    world.deploy(1)
    down = {"now": False}

    def factory() -> UnitOfWork:
        if down["now"]:
            raise TransientError("registry unreachable", fix="check the database")
        return world.registry()

    rec = make(world, loader, factory=factory)

    async def go() -> bool:
        await settle(rec)
        serve(rec.state, 1, ok=4, failed=1, at=world.clock.now())
        down["now"] = True
        world.clock.advance(10)
        failed = await rec.write_history()
        down["now"] = False
        serve(rec.state, 1, ok=3, failed=0, at=world.clock.now())
        world.clock.advance(10)
        await rec.report()
        return failed

    assert asyncio.run(go()) is False
    [point] = history(world)
    assert point.summary.errors == RateCounts(1, 8)


def test_a_counter_that_went_down_starts_a_new_count() -> None:
    world, loader = FourVersions(), FakeLoader()
    world.deploy(1)
    first, second = make(world, loader), make(world, loader)
    clock: FixedClock = world.clock
    recorder = HistoryRecorder(env=ENV, replica_id="r1")
    serve(first.state, 1, ok=10, failed=0, at=clock.now())
    pending = recorder.collect([(MODEL, first.state.recorder.stats(MODEL, 1))], now=clock.now())
    recorder.committed(pending, now=clock.now())
    clock.advance(10)
    serve(second.state, 1, ok=3, failed=1, at=clock.now())  # a restarted process: fewer
    again = recorder.collect([(MODEL, second.state.recorder.stats(MODEL, 1))], now=clock.now())
    assert [p.summary.errors for p in again.points] == [RateCounts(1, 4)]


def test_one_replica_at_a_time_compacts() -> None:
    world, loader = FourVersions(), FakeLoader()
    world.deploy(1)
    first, second = make(world, loader), make(world, loader)
    second.replica_id = "r2"
    start = world.clock.now()
    with world.registry() as uow:  # fifteen minutes of 10 s points of two replicas
        uow.history.add([point for i in range(90) for point in (
            _point(start, i, "r1"), _point(start, i, "r2"))])
        uow.commit()
    world.clock.advance(1800)

    def minutes() -> list[int]:
        with world.registry() as uow:
            found = uow.history.read(MODEL, ENV, resolution_s=60, since_s=0, until_s=2**40,
                                     limit=1000)
        trials = sum(p.point().summary.errors.trials for p in found)  # type: ignore[union-attr]
        return [trials, len(found)]

    first._compact_history(world.clock.now())
    assert minutes() == [10 * 60, 10]  # ten minute buckets a pass
    second._compact_history(world.clock.now())
    assert minutes() == [10 * 60, 10]  # r1 holds the compaction lease: r2 leaves it
    first._compact_history(world.clock.now())
    assert minutes() == [15 * 60, 15]


def _point(start: object, i: int, replica: str) -> object:
    from lastgood.domain.history import HistoryPoint, bucket_of, epoch_s
    from lastgood.domain.measurements import Summary

    at_s = bucket_of(epoch_s(start) - epoch_s(start) % 600 + 10 * i, 10)  # type: ignore[arg-type]
    return HistoryPoint(MODEL, ENV, 1, replica, 10, at_s,
                        Summary(errors=RateCounts(0, 5)))
