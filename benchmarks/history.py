"""Metric history benchmark: what the replicas' history writes cost the registry, and how fast
the dashboard reads a week of it, SQLite and PostgreSQL side by side in one run.

    .venv/bin/python benchmarks/history.py [--models 10] [--replicas 4] [--writes 200]
                                           [--reads 40]

Write cost: each replica writes, every 10 s, one point per model it serves (one transaction of
`models` points), so 10 models x 4 replicas is 4 rows/s. The table gives the time of one such
write (p50/p95), the rows/s one writer sustains back to back (the headroom over the 4 rows/s
needed), the stored bytes per row (database growth over the rows written, indexes included),
the bytes written per day at that rate, the rows kept in the steady state of the default
retention (10 s for 1 h, 1 min for 1 day, 10 min for 30 days) and their size, and the time of
one compaction pass over an hour of 10 s points.

Query: a week of history of every model as the default retention keeps it (10 min points for
the week, 1 min points for the last day, 10 s points of each replica for the last hour), then
`HistoryService.view` of one model for the last hour / day / week, p50 and p95.

Targets: one writer sustains at least 10x the rows/s the fleet writes (headroom for a registry
that also serves operations); the dashboard's history reading p95 <= 50 ms for a week on both
databases. On a shared machine the wall times include waiting for a CPU: the `cpu` figures say
what one reading costs this process.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import p50, print_table, quantile, registry_url, timed
from lastgood.domain.baselines import headline, summary_to_dict
from lastgood.domain.deployments import Environment, VerifiedRecord
from lastgood.domain.history import (
    DEFAULT_RETENTION,
    MAX_BATCH,
    HistoryPoint,
    bucket_of,
    epoch_s,
)
from lastgood.domain.measurements import (
    CATEGORY_BOUNDS,
    LATENCY_BOUNDS,
    Histogram,
    RateCounts,
    Summary,
)
from lastgood.services.history import HistoryService
from lastgood.testing import FixedClock, make_new_version

ENV = "production"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HEADROOM, READ_TARGET_MS = 10.0, 50.0


def summary(rng: random.Random, requests: int) -> Summary:
    """A bucket as a replica writes it: errors, ~8 latency buckets, labels, 3 classes."""
    latency = Histogram.of([rng.lognormvariate(-4.5, 0.4) for _ in range(min(requests, 60))],
                           LATENCY_BOUNDS)
    classes = [0] * (len(CATEGORY_BOUNDS) + 1)
    for i in range(3):
        classes[i] = requests // 3
    return Summary(errors=RateCounts(rng.randrange(3), requests),
                   accuracy=RateCounts(requests // 5 - 1, requests // 5), latency=latency,
                   predictions=Histogram(CATEGORY_BOUNDS, tuple(classes)))


def open_registry(url: str) -> Any:
    from lastgood.bootstrap.services import open_registry as open_any

    return open_any(url)


def seed_models(registry: Any, models: int, *, verified: bool = False) -> None:
    """Version 1 of each model live for 8 days; `verified`: with a measured record (its
    predictions), so a reading works out drift for every point, as in production."""
    with registry() as uow:
        uow.environments.put(Environment(name=ENV))
        for m in range(models):
            uow.versions.add(make_new_version(f"model-{m}"), at=NOW - timedelta(days=8),
                             actor="bench")
            dep = uow.deployments.start(model=f"model-{m}", env=ENV, version=1,
                                        at=NOW - timedelta(days=8), actor="bench",
                                        reason="bench", operation_id=None)
            if verified:
                record = summary(random.Random(m), 3000)
                uow.deployments.set_verified(dep.id, VerifiedRecord(
                    baseline=headline(record), window_start=dep.started_at,
                    window_end=dep.started_at + timedelta(hours=1), approver="bench",
                    at=dep.started_at + timedelta(hours=1), reason="bench",
                    distribution=summary_to_dict(record)))
        uow.commit()


def size_bytes(registry: Any, url: str, folder: Path) -> int:
    if url.startswith("sqlite"):
        return sum(f.stat().st_size for f in folder.glob("registry.db*"))
    with registry() as uow:
        cursor = uow.history._tx.execute(
            "SELECT pg_total_relation_size('metric_history')")
        return int(cursor.fetchone()[0])


def write_cost(url: str, folder: Path, *, models: int, replicas: int,
               writes: int) -> dict[str, Any]:
    """Replica writes of `models` points each, back to back; bytes per row from growth."""
    registry = open_registry(url)
    seed_models(registry, models)
    rng = random.Random(1)
    before = size_bytes(registry, url, folder)
    start_s = epoch_s(NOW) - 3600
    made = [0]

    def one_write() -> None:
        made[0] += 1
        replica = f"replica-{made[0] % replicas}"
        at_s = bucket_of(start_s + 10 * (made[0] // replicas), 10)
        points = [HistoryPoint(f"model-{m}", ENV, 1, replica, 10, at_s, summary(rng, 200))
                  for m in range(models)]
        with registry() as uow:
            uow.history.add(points)
            uow.commit()

    times = timed(one_write, writes)
    if url.startswith("sqlite"):
        with registry() as uow:  # fold the WAL into the file so its size is the data's
            uow.history._tx.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rows = writes * models
    per_row = max(size_bytes(registry, url, folder) - before, 0) / rows
    compact_ms = timed(lambda: compact_all(registry), 1)[0]
    registry.dispose()
    rate = models * replicas / 10  # rows/s the fleet writes
    return {"p50": p50(times), "p95": quantile(times, 0.95),
            "rows_s": rows / (sum(times) / 1000), "per_row": per_row, "rate": rate,
            "compact_ms": compact_ms, "compacted": rows}


def compact_all(registry: Any) -> None:
    now_s = epoch_s(NOW) + 2 * 3600  # every point written is past its hour
    while True:
        with registry() as uow:
            taken = uow.history.compact(DEFAULT_RETENTION, now_s=now_s, batch=2000)
            uow.commit()
        if not taken:
            return


def steady_rows(models: int, replicas: int) -> int:
    """Rows kept once the default retention is full (each tier for its own keep; replicas
    merged in the coarser tiers)."""
    fine = 360 * models * replicas
    minutes = 1440 * models
    tens = 30 * 144 * models
    return fine + minutes + tens


def fill_week(registry: Any, *, models: int, replicas: int) -> int:
    """What a week of serving leaves with the default retention: 10 min points for the week,
    1 min points for the last day, 10 s points of each replica for the last hour (each tier
    rolled up to a few minutes ago)."""
    rng = random.Random(2)
    now_s = epoch_s(NOW)
    points: list[HistoryPoint] = []
    for m in range(models):
        name = f"model-{m}"
        for at_s in range(now_s - 7 * 86_400, now_s - 1200, 600):
            points.append(HistoryPoint(name, ENV, 1, "*", 600, at_s, summary(rng, 12_000)))
        for at_s in range(now_s - 86_400, now_s - 120, 60):
            points.append(HistoryPoint(name, ENV, 1, "*", 60, at_s, summary(rng, 1200)))
        for at_s in range(now_s - 3600, now_s, 10):
            points.extend(HistoryPoint(name, ENV, 1, f"replica-{r}", 10, at_s,
                                       summary(rng, 50)) for r in range(replicas))
    for start in range(0, len(points), MAX_BATCH):
        with registry() as uow:
            uow.history.add(points[start:start + MAX_BATCH])
            uow.commit()
    return len(points)


def read_cost(url: str, *, models: int, replicas: int, reads: int,
              verified: bool = False) -> dict[str, Any]:
    registry = open_registry(url)
    seed_models(registry, models, verified=verified)
    rows = fill_week(registry, models=models, replicas=replicas)
    history = HistoryService(uow=registry, clock=FixedClock(NOW))
    out: dict[str, Any] = {"rows": rows}
    for label, span in (("1h", timedelta(hours=1)), ("1d", timedelta(days=1)),
                        ("1w", timedelta(days=7))):
        view = history.view("model-3", env=ENV, span=span)
        cpu: list[float] = []

        def read(s: timedelta = span, into: list[float] = cpu) -> None:
            started = time.process_time()
            history.view("model-3", env=ENV, span=s)
            into.append((time.process_time() - started) * 1000)

        times = timed(read, reads)
        out[label] = (p50(times), quantile(times, 0.95), len(view.points), p50(cpu))
    registry.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--reads", type=int, default=40)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--verified", action="store_true",
                        help="versions verified with a measured record: drift on every point")
    args = parser.parse_args()
    kinds = args.databases.split(",")
    writes, reads = {}, {}
    for kind in kinds:
        with registry_url(kind) as (url, folder):
            writes[kind] = write_cost(url, folder, models=args.models, replicas=args.replicas,
                                      writes=args.writes)
        with registry_url(kind) as (url, folder):
            reads[kind] = read_cost(url, models=args.models, replicas=args.replicas,
                                    reads=args.reads, verified=args.verified)
    steady = steady_rows(args.models, args.replicas)
    print(f"history: {args.models} models x {args.replicas} replicas, one point per model per "
          f"replica every 10 s ({args.models * args.replicas / 10:g} rows/s); "
          f"{os.cpu_count()} CPUs shared")
    print_table(
        f"replica writes ({args.models} points per transaction, {args.writes} writes)",
        ["database", "write p50 ms", "write p95 ms", "rows/s one writer", "needed rows/s",
         "bytes/row", "MB written/day", "steady rows", "steady MB", "compact 1 h (ms)",
         f"target >= {HEADROOM:g}x needed"],
        [(k, f"{w['p50']:.2f}", f"{w['p95']:.2f}", f"{w['rows_s']:.0f}", f"{w['rate']:g}",
          f"{w['per_row']:.0f}", f"{w['rate'] * 86_400 * w['per_row'] / 1e6:.1f}", steady,
          f"{steady * w['per_row'] / 1e6:.1f}",
          f"{w['compact_ms']:.0f} ({w['compacted']} rows)",
          "ok" if w["rows_s"] >= HEADROOM * w["rate"] else "MISSED")
         for k, w in writes.items()])
    print_table(
        f"dashboard history reading of one model (a week of {args.models} models stored"
        f"{'; verified: drift worked out on every point' if args.verified else ''})",
        ["database", "rows stored", *(f"{s} p50/p95 ms [cpu p50] (points)"
                                      for s in ("1h", "1d", "1w")),
         f"target 1w p95 <= {READ_TARGET_MS:g} ms"],
        [(k, r["rows"], *(f"{r[s][0]:.1f}/{r[s][1]:.1f} [{r[s][3]:.1f}] ({r[s][2]})"
                          for s in ("1h", "1d", "1w")),
          "ok" if r["1w"][1] <= READ_TARGET_MS else "MISSED") for k, r in reads.items()])
    print("\ncpu: this process's CPU time of one reading (the wall time minus waiting for the "
          "CPU on a shared machine, and, on PostgreSQL, minus the server's own work)")


if __name__ == "__main__":
    main()
