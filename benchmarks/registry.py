"""Registry benchmark: register throughput and `versions`/`show` latency with 10,000 versions,
SQLite and PostgreSQL side by side in one run.

    .venv/bin/python benchmarks/registry.py [--versions 10000] [--registrations 100]

Targets: registering a small model >= 10 versions/s; `show` p95 <= 10 ms and `versions --limit 50`
p95 <= 25 ms on both databases with 10,000 versions of one model.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import p50, print_table, quantile, registry_url, timed
from lastgood.sdk import Lastgood


def make_model(folder: Path) -> Path:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from skops.io import dump

    x, y = load_iris(return_X_y=True)
    path = folder / "iris.skops"
    dump(LogisticRegression(max_iter=500).fit(x, y), path)
    return path


def bulk_fill(lg: Lastgood, total: int) -> None:
    """Add versions straight through the unit of work, 1,000 per transaction."""
    template = lg.versions("bench")[0]
    from lastgood.domain.audit import EventDraft
    from lastgood.domain.versions import NewVersion

    new = NewVersion(model="bench", manifest=template.manifest, flavor=template.flavor,
                     runtime=template.runtime, schema=template.schema,
                     metrics={"accuracy": 0.9})
    uow_factory = lg.services.ports.uow
    clock = lg.services.ports.clock
    have = len(lg.versions("bench"))
    while have < total:
        with uow_factory() as uow:
            for _ in range(min(1000, total - have)):
                have += 1
                v = uow.versions.add(replace(new, tag=f"b{have}"), at=clock.now(), actor="bench")
                uow.events.append(EventDraft(action="version.registered", actor="bench",
                                             model="bench", subject=f"v{v.number}"),
                                  at=clock.now())
            uow.commit()


def measure(kind: str, model: Path, *, versions: int, registrations: int) -> dict[str, float]:
    with registry_url(kind) as (url, folder):
        lg = Lastgood(home=folder, db_url=url, actor="bench")
        start = time.perf_counter()
        # identical bytes are one version unless their origin differs
        for i in range(registrations):
            lg.register("bench", model, provenance={"origin": f"bench-build-{i}"})
        rate = registrations / (time.perf_counter() - start)
        bulk_fill(lg, versions)
        numbers = [random.randint(1, versions) for _ in range(200)]
        show = timed(lambda: lg.show("bench", numbers.pop()), 200)
        tags = [f"b{random.randint(registrations + 1, versions)}" for _ in range(200)]
        by_tag = timed(lambda: lg.show("bench", tags.pop()), 200)
        registry = lg.services.registry
        page = timed(lambda: registry.versions("bench", limit=50), 100)
        full = timed(lambda: registry.versions("bench"), 5)
        return {"register/s": rate, "show p50": p50(show), "show p95": quantile(show, 0.95),
                "show tag p95": quantile(by_tag, 0.95), "versions 50 p50": p50(page),
                "versions 50 p95": quantile(page, 0.95), "versions all p50": p50(full)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--registrations", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = make_model(Path(tmp))
        results = {kind: measure(kind, model, versions=args.versions,
                                 registrations=args.registrations)
                   for kind in ("sqlite", "postgresql")}
    targets = {"register/s": (">=", 10.0), "show p95": ("<=", 10.0),
               "versions 50 p95": ("<=", 25.0)}
    rows = []
    for metric in results["sqlite"]:
        s, p = results["sqlite"][metric], results["postgresql"][metric]
        goal = targets.get(metric)
        verdict = ""
        if goal:
            ok = all((v >= goal[1]) if goal[0] == ">=" else (v <= goal[1]) for v in (s, p))
            verdict = f"{goal[0]} {goal[1]:g}: {'PASS' if ok else 'MISS'}"
        unit = "" if metric.endswith("/s") else " ms"
        rows.append((metric + unit, f"{s:.2f}", f"{p:.2f}", f"{p / s:.2f}x", verdict))
    print_table(f"Registry with {args.versions:,} versions of one model "
                f"({args.registrations} timed registrations of a small skops model)",
                ["metric", "SQLite", "PostgreSQL", "PG/SQLite", "target"], rows)


if __name__ == "__main__":
    main()
