"""What keeping and replaying today's traffic costs (loopback only, ~3 minutes).

    .venv/bin/python benchmarks/replay.py [--seconds 4] [--rounds 3] [--requests 1000]

1. Serving cost. Three `lastgood serve` replicas (1 worker each, a warm standby, the SQLite
   registry) serve the two iris versions of benchmarks/switch_under_load.py: one with
   --replay-reservoir 0, one with the reservoir (1,000 requests) and the replay at the default
   schedule (60 s), one replaying every second (60 times the default: the replay thread is
   at work for much of the run, the worst case).
   Closed-loop load (CONCURRENCY keep-alive connections, a separate process) goes to each in
   turns, the idle one SIGSTOPped, over ROUNDS rounds. Targets: throughput cost <= 5 %,
   p99 <= 1.1x.
2. Time to replay REQUESTS one-record requests on a standby, for the sklearn pipeline
   (ColumnTransformer + OneHotEncoder), ONNX and xgboost of the test zoo (MLflow directories
   written by MLflow's save_model, loaded the way a replica loads them): wall time under the
   default CPU budget (0.05 of one core), the replay thread's CPU time, and wall time with no
   budget.
3. Memory of a full reservoir per model (tracemalloc), for one-record and eight-record requests.
Nothing here asserts; it prints the tables, the targets and PASS/MISS per target: the
throughput cost judged both ways, by req/s and by the server's CPU per request (the cost a
saturated replica pays, far less sensitive to the machine's other load).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import tracemalloc
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import print_table
from benchmarks.protocols import cpu_s
from benchmarks.switch_under_load import (
    ENV,
    HOST,
    MODEL,
    drive,
    free_port,
    lat,
    register,
    stop,
    tput,
    train,
    wait_ready,
)


def run_replica(url: str, store_root: str, cache: str, port: int, reservoir: int,
                interval_s: float) -> None:
    from lastgood.adapters.artifacts import LocalArtifactStore
    from lastgood.adapters.formats import LocalModelFormats
    from lastgood.adapters.system.clock import SystemClock
    from lastgood.adapters.wakeups.change_signals import signal_for_url
    from lastgood.bootstrap.services import open_registry
    from lastgood.bootstrap.serving import artifact_loader
    from lastgood.serving.reconciler import ReconcilerOptions
    from lastgood.serving.reservoir import ReservoirOptions
    from lastgood.serving.server import ServingOptions, serve
    from lastgood.serving.slots import StandbyLimits
    from lastgood.serving.standby_prover import ReadinessOptions

    options = ServingOptions(
        reconciler=ReconcilerOptions(standby=StandbyLimits(count=1), heartbeat_s=1.0,
                                     readiness=ReadinessOptions(interval_s=interval_s)),
        reservoir=ReservoirOptions(size=reservoir))
    serve(ENV, host=HOST, port=port, workers=1,
          uow_factory_builder=partial(open_registry, url),
          loader_builder=partial(artifact_loader, partial(LocalArtifactStore, Path(store_root)),
                                 LocalModelFormats, Path(cache)),
          replica_prefix=f"bench-{reservoir}",
          signal_builder=signal_for_url(url, poll_interval_s=options.poll_interval_s),
          clock=SystemClock(), options=options)


OFF, DEFAULT, STRESS = "replay off", "replay on, every 60 s", "replay on, every 1 s"
REPLICAS = ((OFF, 0, 60.0), (DEFAULT, 1000, 60.0), (STRESS, 1000, 1.0))


def serving_cost(work: Path, *, seconds: float, rounds: int) -> dict[str, dict[str, float]]:
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{work / 'registry.db'}"
    register(url, work / "store", train(work))
    ctx = multiprocessing.get_context("spawn")
    servers: dict[str, tuple[Any, int]] = {}
    for name, size, interval in REPLICAS:
        port = free_port()
        proc = ctx.Process(target=run_replica, args=(url, str(work / "store"),
                                                     str(work / f"cache-{name}"), port, size,
                                                     interval))
        proc.start()
        wait_ready(f"http://{HOST}:{port}/readyz", lambda r: r.status_code == 200)
        servers[name] = (proc, port)
    samples: dict[str, list[Any]] = {name: [] for name in servers}
    cpu: dict[str, list[float]] = {name: [] for name in servers}
    try:
        for name, size, _ in REPLICAS:  # fill the reservoirs
            if size:
                drive(servers[name][1], f"/v1/models/{MODEL}/predict", 2.0, rate=None)
        names = list(servers)
        for turn in range(rounds):  # each round starts with another replica
            for name in names[turn % len(names):] + names[:turn % len(names)]:
                port = servers[name][1]
                others = [p for n, (p, _) in servers.items() if n != name]
                for other in others:
                    os.kill(other.pid, signal.SIGSTOP)
                pid = servers[name][0].pid
                try:
                    before = cpu_s(pid)
                    result = drive(port, f"/v1/models/{MODEL}/predict", seconds, rate=None)
                    used = cpu_s(pid) - before
                finally:
                    for other in others:
                        os.kill(other.pid, signal.SIGCONT)
                samples[name].append(result.samples)
                cpu[name].append(used / max(len(result.samples), 1))
    finally:
        for proc, _ in servers.values():
            stop(proc)
    out = {}
    for name, runs in samples.items():
        rates = sorted(tput(s) for s in runs)
        p99s = sorted(lat(s)[1] for s in runs)
        per_request = sorted(cpu[name])
        out[name] = {"rps": rates[len(rates) // 2], "p99": p99s[len(p99s) // 2],
                     "cpu_us": per_request[len(per_request) // 2] * 1e6}
    return out


def replay_times(work: Path, requests: int) -> list[tuple[str, float, float, float, int]]:
    from tests.mlflow_zoo import build_zoo

    from lastgood.adapters.artifacts import LocalArtifactStore
    from lastgood.adapters.formats import LocalModelFormats
    from lastgood.bootstrap.serving import artifact_loader
    from lastgood.sdk import Lastgood
    from lastgood.serving.replay import ReplayBudget
    from lastgood.serving.replay_proof import ReplayOptions, _run_records
    from lastgood.serving.reservoir import Kept

    zoo = build_zoo(work / "zoo", ["pipeline", "onnx", "xgboost"])
    home = work / "home"
    rows = []
    for entry in zoo:
        with Lastgood(home=home, actor="bench") as lg:
            version = lg.register(entry.name, entry.dirs[0], allow_pickle=entry.allow_pickle)
        loader = artifact_loader(partial(LocalArtifactStore, home / "artifacts"),
                                 LocalModelFormats, work / "cache")
        predictor = loader(version)
        records = entry.records()
        answers = predictor.predict(records)
        kept = [Kept([records[i % len(records)]], [answers[i % len(records)]], 1, 0.0)
                for i in range(requests)]
        timed = []
        for budget in (ReplayOptions().budget, 1.0):
            options = ReplayOptions(budget=budget)
            shared = ReplayBudget(share=budget, burst_s=options.burst_s,
                                  max_seconds=options.timeout_s)
            start = time.perf_counter()
            run = _run_records(predictor, version, kept, options, shared)
            timed.append((time.perf_counter() - start, run.cpu_s, run.failed))
        rows.append((entry.name, timed[0][0], timed[0][1], timed[1][0], timed[0][2]))
    return rows


def offer_cost(count: int = 100_000) -> float:
    """Microseconds the hot path spends per request to offer it to a full reservoir."""
    from lastgood.serving.reservoir import Kept, ReservoirOptions, Reservoirs

    reservoirs = Reservoirs(ReservoirOptions(size=1000), seed=0)
    records, start = [{"sepal_length": 5.9, "sepal_width": 3.0}], time.perf_counter()
    for _ in range(count):
        reservoirs.offer(MODEL, Kept(records, [1], 2, time.monotonic()), size_bytes=100)
    return (time.perf_counter() - start) / count * 1e6


def reservoir_memory(size: int) -> list[tuple[str, float]]:
    import random

    from lastgood.serving.reservoir import Kept, Reservoir, ReservoirOptions

    found = []
    for per_request in (1, 8):
        tracemalloc.start()
        reservoir = Reservoir(ReservoirOptions(size=size), random.Random(0))
        for i in range(size):
            records = [{"color": random.choice(["red", "green", "blue"]),
                        "sepal_length": random.random() * 8, "petal_width": random.random() * 3,
                        "stems": i % 5} for _ in range(per_request)]
            reservoir.add(Kept(records, [i % 3] * per_request, 1, float(i)), size_bytes=100)
        held, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        found.append((f"{size:,} requests x {per_request} record(s), 4 columns", held / 2**20))
    return found


def target_row(name: str, on: dict[str, float], off: dict[str, float]) -> tuple[str, ...]:
    """One replica against replay off: the throughput cost (req/s, and the CPU per request a
    saturated replica pays), the p99 ratio, and whether both targets hold."""
    drop, ratio = 1 - on["rps"] / off["rps"], on["p99"] / off["p99"]
    extra = on["cpu_us"] / off["cpu_us"] - 1
    def say(ok: bool) -> str:
        return "PASS" if ok else "MISS"
    verdict = f"req/s {say(drop <= 0.05)}, CPU {say(extra <= 0.05)}, p99 {say(ratio <= 1.1)}"
    return (name, f"{drop * 100:+.1f} %", f"{extra * 100:+.1f} %", f"{ratio:.2f}x",
            "cost <= 5 %, p99 <= 1.1x", verdict)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--no-zoo", action="store_true", help="skip part 2 (builds the zoo)")
    args = parser.parse_args(argv)
    print(f"load average: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        cost = serving_cost(Path(tmp) / "serve", seconds=args.seconds, rounds=args.rounds)
        off = cost[OFF]
        print_table("Serving with the reservoir and the replay on vs off",
                    ["replica", "max req/s", "p99 ms", "server CPU us/request"],
                    [(name, f"{v['rps']:.0f}", f"{v['p99']:.2f}", f"{v['cpu_us']:.0f}")
                     for name, v in cost.items()])
        print("(medians of the rounds; the server is one process, so its CPU per request bounds "
              "its throughput: the CPU cost is the throughput cost a saturated replica pays, "
              "and it is far less sensitive to the machine's other load than req/s)")
        offered = offer_cost()
        print(f"the hot path's own cost: {offered:.1f} us per request to offer it to a full "
              f"reservoir = {offered / off['cpu_us'] * 100:.1f} % of the server's CPU per "
              "request with replay off (target <= 5 %): "
              f"{'PASS' if offered / off['cpu_us'] <= 0.05 else 'MISS'}")
        print_table("Targets: reservoir and replay on vs off (same run)",
                    ["replica", "throughput cost (req/s)", "CPU per request", "p99 ratio",
                     "target", "verdict"],
                    [target_row(name, cost[name], off) for name in (DEFAULT, STRESS)])
        rows = [] if args.no_zoo else replay_times(Path(tmp) / "zoo", args.requests)
        print_table(f"Replaying {args.requests:,} one-record requests on a standby (the wait a "
                    "deploy adds before its switch: its shadow's replay)",
                    ["model", "wall s (default budget)", "CPU s of the replay thread",
                     "CPU share", "wall s (no budget)", "failed"],
                    [(n, f"{w:.2f}", f"{c:.2f}", f"{c / w:.2f}", f"{free:.2f}", f)
                     for n, w, c, free, f in rows])
    print_table("Memory of a full reservoir (one model)", ["reservoir", "MiB"],
                [(n, f"{m:.2f}") for n, m in reservoir_memory(1000)])


if __name__ == "__main__":
    main()
