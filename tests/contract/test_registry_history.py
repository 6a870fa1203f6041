"""Metric history under contract: memory, SQLite and PostgreSQL, through both SQL adapters."""

from __future__ import annotations

import pytest

from lastgood.domain.errors import InvalidInput
from lastgood.domain.history import (
    DEFAULT_RETENTION,
    MAX_BATCH,
    ROLLED_UP,
    HistoryPoint,
    Tier,
)
from lastgood.domain.measurements import LATENCY_BOUNDS, Histogram, Moments, RateCounts, Summary
from lastgood.ports import UnitOfWorkFactory

NOW = 1_800_000_000  # a multiple of 600: bucket edges of every tier line up


def summary(requests: int, errors: int, *, latency_s: float = 0.02, labelled: int = 0,
            correct: int = 0) -> Summary:
    return Summary(errors=RateCounts(errors, requests),
                   latency=Histogram.of([latency_s] * requests, LATENCY_BOUNDS),
                   accuracy=RateCounts(correct, labelled) if labelled else None,
                   predictions=Histogram((0.5, 1.5), (requests, 0, 0)),
                   custom={"revenue": Moments(2, 3.0, 0.5)})


def point(at_s: int, *, version: int = 1, replica: str = "r1", resolution_s: int = 10,
          model: str = "iris", env: str = "production", requests: int = 10,
          errors: int = 1) -> HistoryPoint:
    return HistoryPoint(model, env, version, replica, resolution_s, at_s,
                        summary(requests, errors, labelled=4, correct=3))


def read_all(registry: UnitOfWorkFactory, **where: str) -> list[HistoryPoint]:
    with registry() as uow:
        return uow.history.read(where.get("model", "iris"), where.get("env", "production"),
                                since_s=0, until_s=NOW * 2, limit=100_000)


def test_points_read_back_exactly_in_time_order(registry: UnitOfWorkFactory) -> None:
    written = [point(NOW - 20, replica="r2"), point(NOW - 30), point(NOW - 20, version=2)]
    with registry() as uow:
        uow.history.add(written)
        uow.history.add([point(NOW - 10, model="other"), point(NOW - 10, env="staging")])
        uow.commit()
    found = read_all(registry)
    assert [(p.at_s, p.version, p.replica) for p in found] == [
        (NOW - 30, 1, "r1"), (NOW - 20, 1, "r2"), (NOW - 20, 2, "r1")]
    assert found[0] == written[1]  # every family survives the stored form
    assert read_all(registry, model="other")[0].at_s == NOW - 10


def test_a_reading_is_bounded_by_range_and_limit(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.history.add([point(NOW - 10 * i) for i in range(1, 21)])
        uow.commit()
    with registry() as uow:
        window = uow.history.read("iris", "production", since_s=NOW - 100, until_s=NOW - 50,
                                  limit=100)
        capped = uow.history.read("iris", "production", since_s=0, until_s=NOW, limit=3)
    assert [p.at_s for p in window] == [NOW - 100, NOW - 90, NOW - 80, NOW - 70, NOW - 60]
    assert [p.at_s for p in capped] == [NOW - 200, NOW - 190, NOW - 180]  # oldest first


def test_uncommitted_points_are_not_kept(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.history.add([point(NOW)])
    assert read_all(registry) == []


def test_a_write_past_the_batch_limit_is_refused(registry: UnitOfWorkFactory) -> None:
    with registry() as uow, pytest.raises(InvalidInput, match="at most"):
        uow.history.add([point(NOW - i) for i in range(MAX_BATCH + 1)])


def test_compaction_rolls_old_points_up_and_drops_the_oldest(
        registry: UnitOfWorkFactory) -> None:
    hour, day, month = 3600, 86_400, 30 * 86_400
    old_fine = [point(NOW - hour - 600 + 10 * i, replica=r) for i in range(6) for r in ("a", "b")]
    recent = [point(NOW - 60)]
    old_minute = [point(NOW - day - 1200, resolution_s=60)]
    expired = [point(NOW - month - 600, resolution_s=600)]
    with registry() as uow:
        uow.history.add(old_fine + recent + old_minute + expired)
        uow.commit()
    with registry() as uow:
        taken = uow.history.compact(DEFAULT_RETENTION, now_s=NOW, batch=100)
        uow.commit()
    assert taken == len(old_fine) + 2
    found = read_all(registry)
    by_tier = {(p.resolution_s, p.at_s): p for p in found}
    rolled = by_tier[(60, NOW - hour - 600)]  # 12 fine points of two replicas, one minute
    assert rolled.replica == ROLLED_UP
    assert rolled.summary.errors == RateCounts(12, 120)
    assert rolled.summary.accuracy == RateCounts(36, 48)
    assert rolled.summary.latency is not None
    assert rolled.summary.latency.total == 120
    assert rolled.summary.custom["revenue"].count == 24
    assert by_tier[(600, NOW - day - 1200)].summary.errors == RateCounts(1, 10)
    assert (10, NOW - 60) in by_tier  # inside its hour: untouched
    assert not any(p.at_s == NOW - month - 600 for p in found)  # past 30 days: dropped
    assert sum(p.summary.errors.trials for p in found if p.summary.errors) == 140


def test_compaction_takes_bounded_batches(registry: UnitOfWorkFactory) -> None:
    retention = (Tier(10, 60), Tier(60, 3600))
    with registry() as uow:
        uow.history.add([point(NOW - 600 + 10 * i) for i in range(30)])
        uow.commit()
    with registry() as uow:
        first = uow.history.compact(retention, now_s=NOW, batch=7)
        uow.commit()
    assert first == 7
    with registry() as uow:
        while uow.history.compact(retention, now_s=NOW, batch=7):
            uow.commit()
        uow.commit()
    found = read_all(registry)
    assert all(p.resolution_s == 60 for p in found)
    assert sum(p.summary.errors.trials for p in found if p.summary.errors) == 300
