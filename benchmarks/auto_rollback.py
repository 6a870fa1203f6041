"""End to end: a bad deploy under load, rolled back and verified with nobody typing a command.

    .venv/bin/python benchmarks/auto_rollback.py            # 3 runs at 10 requests/s
    .venv/bin/python benchmarks/auto_rollback.py --runs 5 --rps 25 --no-smoke

Each run is the demo's second act on a fresh SQLite registry: a wine classifier (v1) is served by
a real uvicorn on loopback with the watch inside (interval 1 s); the load generator sends held-out
rows at a steady rate with their true labels as feedback; the watch records v1's baseline and
verifies it (bake window 8 s); then v2, trained after a label-mapping bug, is deployed (preflight,
including the smoke test in a fresh interpreter, passes: its golden examples are its own answers).
The clock starts when v2 is live and stops when the rollback to v1 has been verified against v1's
own pre-failure baseline. The steps come from the audit trail. Target (issue 5): <= 60 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import print_table
from lastgood.bootstrap import open_services
from lastgood.bootstrap.demo import run_auto_rollback
from lastgood.bootstrap.demo_models import train, train_mislabelled
from lastgood.config import load_settings
from lastgood.services.registry import RegisterRequest
from lastgood.services.timelines import Timeline

MODEL, ENV, TARGET_S = "wine-quality", "production", 60.0


def one_run(*, rps: float, smoke: bool, bake_s: float) -> Timeline:
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-auto-") as tmp:
        folder = Path(tmp)
        settings = load_settings({"LASTGOOD_HOME": str(folder / "home"),
                                  "LASTGOOD_ACTOR": "bench",
                                  "LASTGOOD_SMOKE_TEST": "on" if smoke else "off"})
        services = open_services(settings)
        good, bad = train(folder)[1], train_mislabelled(folder)
        for item in (good, bad):
            services.registry.register(RegisterRequest(
                model=MODEL, path=item["path"], tag=item["tag"], schema=item["schema"],
                golden=item["golden"]), actor="bench")
        services.deployments.deploy(MODEL, 1, env=ENV, reason="release", actor="bench")
        services.deployments.verify(MODEL, env=ENV, baseline={"accuracy": good["accuracy"]},
                                    reason="offline metrics", actor="bench")
        return run_auto_rollback(services, model=MODEL, env=ENV, bad=2, home=folder,
                                 actor="bench", say=lambda line: None, rps=rps, bake_s=bake_s)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rps", type=float, default=10.0)
    parser.add_argument("--bake", type=float, default=8.0, help="bake window of the baseline")
    parser.add_argument("--no-smoke", action="store_true", help="skip the preflight smoke test")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    timelines = [one_run(rps=args.rps, smoke=not args.no_smoke, bake_s=args.bake)
                 for _ in range(args.runs)]
    steps = [name for name, _ in timelines[0].rows()]
    rows = [[f"run {i + 1}", *(at for _, at in t.rows()), t.outcome] for i, t in
            enumerate(timelines)]
    print_table(f"Bad deploy -> verified rollback, {args.rps:g} requests/s, smoke test "
                f"{'off' if args.no_smoke else 'on'} (times after the bad version went live)",
                ["", *steps, "outcome"], rows)
    totals = [t.total_s for t in timelines if t.total_s is not None]
    if totals:
        median = statistics.median(totals)
        print(f"\nbad deploy to verified rollback: median {median:.1f} s, max {max(totals):.1f} s"
              f" over {len(totals)}/{len(timelines)} runs; target <= {TARGET_S:.0f} s: "
              f"{'PASS' if max(totals) <= TARGET_S else 'MISS'}")
    print(f"detected by: {timelines[0].evidence}")
    print(f"{time.perf_counter() - started:.0f} s wall")


if __name__ == "__main__":
    main()
