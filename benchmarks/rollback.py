"""Rollback benchmark: plan + checks + switch on a registry with 10,000 versions and 100,000
events, with and without the smoke test, SQLite and PostgreSQL side by side in one run.

    .venv/bin/python benchmarks/rollback.py [--versions 10000] [--events 100000] [--repeat 3]

Targets: a rollback without the smoke test <= 250 ms on both databases; with the smoke test
(a fresh interpreter loads the model and replays its golden examples) <= 10 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import p50, print_table, registry_url
from benchmarks.registry import bulk_fill, make_model
from lastgood.bootstrap import open_services
from lastgood.domain.audit import EventDraft
from lastgood.domain.versions import GoldenExample
from lastgood.sdk import Lastgood

ENV = "production"


def golden() -> list[GoldenExample]:
    from sklearn.datasets import load_iris

    x, _ = load_iris(return_X_y=True)
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return [GoldenExample(dict(zip(names, map(float, row), strict=True)), None) for row in x[:5]]


def fill_events(lg: Lastgood, total: int) -> None:
    uow_factory, clock = lg.services.ports.uow, lg.services.ports.clock
    with uow_factory() as uow:
        have = uow.events.head()[0]
    while have < total:
        with uow_factory() as uow:
            for _ in range(min(5000, total - have)):
                have += 1
                uow.events.append(EventDraft(action="bench.noise", actor="bench",
                                             model="bench", env="staging"), at=clock.now())
            uow.commit()


def prepare(lg: Lastgood, model: Path, versions: int, events: int) -> None:
    from lastgood.domain.versions import Column, Schema

    schema = Schema(inputs=tuple(Column(n, "float64") for n in
                                 ("sepal_length", "sepal_width", "petal_length", "petal_width")))
    for i in range(3):  # identical bytes are one version unless their origin differs
        lg.register("bench", model, schema=schema, golden=golden(),
                    provenance={"origin": f"bench-build-{i}"})
    bulk_fill(lg, versions)
    fill_events(lg, events)
    for n in (1, 2):
        lg.deploy("bench", n, env=ENV, reason="release")
        lg.verify("bench", env=ENV, baseline={"error_rate": 0.01}, reason="baked")


def one_rollback(lg: Lastgood, bad: int) -> tuple[float, float]:
    """(plan ms, full rollback ms) starting from `bad` live."""
    lg.deploy("bench", bad, env=ENV, reason="bad release", force=True)
    start = time.perf_counter()
    lg.plan_rollback("bench", env=ENV)
    plan = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    op = lg.rollback("bench", env=ENV, reason="benchmark")
    assert op.target_version == 2, op
    return plan, (time.perf_counter() - start) * 1000


def measure(kind: str, model: Path, args: argparse.Namespace) -> dict[str, float]:
    with registry_url(kind) as (url, folder):
        lg = Lastgood(home=folder, db_url=url, actor="bench")
        prepare(lg, model, args.versions, args.events)
        out: dict[str, float] = {}
        for smoke in (False, True):
            lg.close()
            lg.services = open_services(replace(lg.settings, smoke_test=smoke))
            runs = [one_rollback(lg, 3 + i + (args.repeat if smoke else 0))
                    for i in range(args.repeat)]
            label = "with smoke" if smoke else "no smoke"
            out[f"plan ({label})"] = p50([r[0] for r in runs])
            out[f"rollback ({label})"] = p50([r[1] for r in runs])
        start = time.perf_counter()
        report = lg.audit_verify()
        out["audit verify"] = (time.perf_counter() - start) * 1000
        assert report.ok, report
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = make_model(Path(tmp))
        results = {kind: measure(kind, model, args) for kind in ("sqlite", "postgresql")}
    targets = {"rollback (no smoke)": 250.0, "rollback (with smoke)": 10_000.0}
    rows = []
    for metric in results["sqlite"]:
        s, p = results["sqlite"][metric], results["postgresql"][metric]
        goal = targets.get(metric)
        verdict = f"<= {goal:g}: {'PASS' if max(s, p) <= goal else 'MISS'}" if goal else ""
        rows.append((metric + " ms", f"{s:.1f}", f"{p:.1f}", f"{p / s:.2f}x", verdict))
    print_table(f"Rollback on {args.versions:,} versions and {args.events:,} events "
                f"(median of {args.repeat})", ["metric", "SQLite", "PostgreSQL", "PG/SQLite",
                                               "target"], rows)


if __name__ == "__main__":
    main()
