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


def read_all(registry: UnitOfWorkFactory, *, resolution_s: int = 10,
             **where: str) -> list[HistoryPoint]:
    with registry() as uow:
        return [p.point() for p in uow.history.read(
            where.get("model", "iris"), where.get("env", "production"),
            resolution_s=resolution_s, since_s=0, until_s=NOW * 2, limit=100_000)]


def every_tier(registry: UnitOfWorkFactory) -> list[HistoryPoint]:
    return [p for tier in DEFAULT_RETENTION
            for p in read_all(registry, resolution_s=tier.resolution_s)]


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
        uow.history.add([point(NOW - 60, resolution_s=60)])
        uow.commit()
    with registry() as uow:
        window = uow.history.read("iris", "production", resolution_s=10, since_s=NOW - 100,
                                  until_s=NOW - 50, limit=100)
        capped = uow.history.read("iris", "production", resolution_s=10, since_s=0,
                                  until_s=NOW, limit=3)
    assert [p.at_s for p in window] == [NOW - 100, NOW - 90, NOW - 80, NOW - 70, NOW - 60]
    assert [p.at_s for p in capped] == [NOW - 200, NOW - 190, NOW - 180]  # oldest first


def test_uncommitted_points_are_not_kept(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        uow.history.add([point(NOW)])
    assert read_all(registry) == []


def test_a_write_past_the_batch_limit_is_refused(registry: UnitOfWorkFactory) -> None:
    with registry() as uow, pytest.raises(InvalidInput, match="at most"):
        uow.history.add([point(NOW - i) for i in range(MAX_BATCH + 1)])


def compact_until_done(registry: UnitOfWorkFactory, retention: tuple[Tier, ...], *,
                       now_s: int, batch: int = 100) -> int:
    total = 0
    while True:
        with registry() as uow:
            done = uow.history.compact(retention, now_s=now_s, batch=batch)
            uow.commit()
        total += done
        if not done:
            return total


def test_settled_buckets_are_rolled_up_and_the_fine_points_kept(
        registry: UnitOfWorkFactory) -> None:
    fine = [point(NOW - 600 + 10 * i, replica=r) for i in range(60) for r in ("a", "b")]
    with registry() as uow:
        uow.history.add(fine)
        uow.commit()
    compact_until_done(registry, DEFAULT_RETENTION, now_s=NOW)
    assert read_all(registry) == sorted(fine, key=lambda p: p.at_s)  # kept for their hour
    minutes = read_all(registry, resolution_s=60)
    # The last minute ended less than SETTLE_S ago: not rolled up yet.
    assert [p.at_s for p in minutes] == [NOW - 600 + 60 * i for i in range(9)]
    first = minutes[0]
    assert first.replica == ROLLED_UP
    assert first.summary.errors == RateCounts(12, 120)  # 6 points of 2 replicas
    assert first.summary.accuracy == RateCounts(36, 48)
    assert first.summary.latency is not None
    assert first.summary.latency.total == 120
    assert first.summary.custom["revenue"].count == 24
    tens = read_all(registry, resolution_s=600)
    assert tens == []  # the ten minutes have not ended yet
    later = NOW + 600
    compact_until_done(registry, DEFAULT_RETENTION, now_s=later)
    assert [p.at_s for p in read_all(registry, resolution_s=60)] == [
        NOW - 600 + 60 * i for i in range(10)]  # each minute rolled up once
    [ten] = read_all(registry, resolution_s=600)
    assert ten.summary.errors == RateCounts(120, 1200)


def test_points_past_their_keep_are_dropped(registry: UnitOfWorkFactory) -> None:
    hour, day, month = 3600, 86_400, 30 * 86_400
    with registry() as uow:
        uow.history.add([point(NOW - hour - 10), point(NOW - hour + 10),
                         point(NOW - day - 60, resolution_s=60),
                         point(NOW - month - 600, resolution_s=600),
                         point(NOW - month + 600, resolution_s=600)])
        uow.commit()
    compact_until_done(registry, (Tier(10, hour), Tier(60, day), Tier(600, month)),
                       now_s=NOW)
    kept = {(p.resolution_s, p.at_s) for p in every_tier(registry)}
    assert (10, NOW - hour - 10) not in kept
    assert (10, NOW - hour + 10) in kept
    assert (60, NOW - day - 60) not in kept
    assert (600, NOW - month - 600) not in kept
    assert (600, NOW - month + 600) in kept


def test_compaction_is_bounded_per_pass(registry: UnitOfWorkFactory) -> None:
    retention = (Tier(10, 3600), Tier(60, 86_400))
    with registry() as uow:
        uow.history.add([point(NOW - 3000 + 10 * i) for i in range(300)])  # 50 minutes
        uow.commit()
    with registry() as uow:
        uow.history.compact(retention, now_s=NOW, batch=100)
        uow.commit()
    first = read_all(registry, resolution_s=60)
    assert len(first) == 10  # ROLLUP_BUCKETS coarse buckets a pass
    compact_until_done(registry, retention, now_s=NOW)
    minutes = read_all(registry, resolution_s=60)
    assert len(minutes) == 49  # the 50th minute ends at NOW: not settled
    assert sum(p.summary.errors.trials for p in minutes if p.summary.errors) == 49 * 60
