"""What replaying model errors on the way back costs: live latency, the wait before a failure is
judged, and the watch's time to detect a genuine regression.

    .venv/bin/python benchmarks/blame.py            # 10 s of load, 30 seeds
    .venv/bin/python benchmarks/blame.py --quick    # a smoke run

1. Serving, in process, side by side in one run: two sklearn pipelines written by MLflow's
   save_model (colour one-hot + size); v2 is live and raises on "red" (a genuine regression,
   ~1 in 6 requests), v1 is its warm standby and answers them. The same steady load (RATE
   requests/s through the native route) runs with replay on (the default) and off
   (`BlameOptions(max_pending=0)`), alternating rounds; for each failure, the time from its 500
   to its replay being settled (it stays `errors_pending` meanwhile, out of the error rate).
2. Detection: the error-rate regression of benchmarks/detection.py (1 % -> 5 %, 10 req/s)
   through the real WatchService on a simulated clock (`watch_replay.replay`), as the counters
   stand, and with errors held pending for a delay before they count: the measured p99 of (1),
   and pessimistic 0.1 s and 1 s. As the gateway source does, errors wait only until the way
   back has answered one (the first error's replay); after that they count at once. Same seeds
   for every column.

Targets: replaying a failure costs about one more prediction, on a thread of its own, capped at
the budget's share (20 % of one thread): the live p50 and p99 of good requests with replay are
within 20 % of those without; the median detection time with the measured delay is within
0.2 s of the one without (the watch looks every 0.2 s while the evidence leans).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.unit.test_serving_support import make_version

from detection import SCENARIOS, arriving, baseline, counters_of, generate
from lastgood.domain.measurements import RateCounts, Summary
from lastgood.domain.versions import Column, Schema
from lastgood.serving.blame import BlameOptions
from lastgood.serving.evidence import EvidenceOptions, Recorder
from lastgood.serving.gateway import GatewayOptions, create_gateway
from lastgood.serving.slots import Slot
from lastgood.serving.state import ServingState
from lastgood.testing import FixedClock
from watch_replay import Counters, replay

MODEL = "pricing"
SCHEMA = Schema(inputs=(Column("colour", "string"), Column("size", "float64")),
                outputs=(Column("label", "int64"),))
COLOURS = ("red", "green", "blue")


def pipeline(folder: Path, name: str, colours: Sequence[str], seed: int) -> Any:
    """A pipeline saved by MLflow's save_model and loaded back by MLflow."""
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"colour": rng.choice(list(colours), 300),
                          "size": rng.normal(size=300)})
    encode = ColumnTransformer([("colour", OneHotEncoder(handle_unknown="error"), ["colour"])],
                               remainder="passthrough")
    model = make_pipeline(encode, LogisticRegression()).fit(frame, frame["size"] > 0)
    mlflow.sklearn.save_model(model, folder / name,
                              signature=infer_signature(frame, model.predict(frame)))
    return mlflow.sklearn.load_model(str(folder / name))


class FramePredictor:
    """Records as a DataFrame into the loaded pipeline."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        import pandas as pd

        return [int(v) for v in self.model.predict(pd.DataFrame(list(records)))]


def state_of(good: Any, bad: Any) -> ServingState:
    clock = FixedClock()
    state = ServingState(env="production", recorder=Recorder(
        options=EvidenceOptions(sample_rate=0.0)))
    state.deployed = frozenset({MODEL})
    table = state.table(MODEL)
    for number, model in ((1, good), (2, bad)):
        slot = Slot(make_version(number, model=MODEL, schema=SCHEMA, golden=())).warmed(
            FramePredictor(model), at=clock.now(), load_ms=1.0, warmup_ms=[1.0],
            per_record_ms=0.5)
        table.switch(slot, at=clock.now())
    table.standby[1] = table.warm(1) or Slot(make_version(1))
    return state


async def load(state: ServingState, options: GatewayOptions, rate: float,
               seconds: float) -> tuple[list[float], list[float]]:
    """(latency ms of good requests, seconds each failure stayed pending)."""
    import httpx

    app = create_gateway(state, options=options, clock=FixedClock())
    good: list[float] = []
    failed_at: list[float] = []
    judged_at: list[float] = []

    async def watch_judged() -> None:
        seen = 0
        while True:
            stats = state.recorder.stats(MODEL, 2)
            settled = stats.errors - stats.errors_pending
            while seen < settled:
                judged_at.append(time.perf_counter())
                seen += 1
            await asyncio.sleep(0.0005)

    poller = asyncio.create_task(watch_judged())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gw") as http:
        start, i = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            colour = COLOURS[i % 3] if i % 2 else "green"  # red in 1 of 6
            sent = time.perf_counter()
            r = await http.post(f"/v1/models/{MODEL}/predict",
                                json={"records": [{"colour": colour, "size": 0.1 * (i % 9)}]})
            done = time.perf_counter()
            (good.append((done - sent) * 1000) if r.status_code == 200
             else failed_at.append(done))
            i += 1
            await asyncio.sleep(max(start + i / rate - time.perf_counter(), 0))
        deadline = time.perf_counter() + 5
        while len(judged_at) < len(failed_at) and time.perf_counter() < deadline:
            await asyncio.sleep(0.001)
    poller.cancel()
    await app.state.gateway.core.blame.stop()
    app.state.gateway.pool.shutdown(wait=False)
    pending = [j - f for f, j in zip(failed_at, judged_at, strict=False)]
    return good, pending


def pct(values: Sequence[float], q: float) -> float:
    return float(np.quantile(values, q)) if values else float("nan")


def serving_rounds(rate: float, seconds: float, rounds: int) -> tuple[dict[str, list[float]],
                                                                      list[float]]:
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-blame-") as tmp:
        good = pipeline(Path(tmp), "v1", COLOURS, 1)
        bad = pipeline(Path(tmp), "v2", ("green", "blue"), 2)
        latency: dict[str, list[float]] = {"replay on": [], "replay off": []}
        pending: list[float] = []
        for r in range(rounds):
            for name in (("replay on", "replay off") if r % 2 == 0
                         else ("replay off", "replay on")):
                blame = BlameOptions() if name == "replay on" else BlameOptions(max_pending=0)
                options = GatewayOptions(blame=blame)
                ms, waits = asyncio.run(load(state_of(good, bad), options, rate, seconds))
                latency[name] += ms
                if name == "replay on":
                    pending += waits
    return latency, pending


class Delayed:
    """The counters with every error held pending `delay_s` before it counts (out of both the
    errors and the requests meanwhile, as the metric source leaves pending errors out) until
    the first error's replay is settled: the way back answered it, so from then on the
    source counts waiting errors at once (a genuine regression)."""

    def __init__(self, counters: Counters, delay_s: float) -> None:
        self.counters, self.delay_s = counters, delay_s
        first = np.flatnonzero(counters.error)
        self.answered_at = (float(counters.sec[first[0]] + counters.offset[first[0]]) + delay_s
                            if first.size else float("inf"))

    def summary_at(self, t: float) -> Summary:
        now = self.counters.summary_at(t)
        if self.delay_s <= 0 or now.errors is None or t >= self.answered_at:
            return now
        then = self.counters.summary_at(max(round(t - self.delay_s, 6), 0.0))
        counted = then.errors.events if then.errors is not None else 0
        waiting = now.errors.events - counted
        return replace(now, errors=RateCounts(counted, now.errors.trials - waiting))


def detection(seeds: int, delays: Sequence[float]) -> dict[float, list[float | None]]:
    scenario = SCENARIOS[0]
    found: dict[float, list[float | None]] = {d: [] for d in delays}
    for seed in range(seeds):
        rng = np.random.default_rng([0, seed])
        base = baseline(scenario, rng)
        live = arriving(generate(scenario, rng, 1800, labels_all=False), [0, seed])
        counters = counters_of(live)
        for delay in delays:
            at, _, _ = replay(Delayed(counters, delay), baseline=base.summary,  # type: ignore[arg-type]
                              stated=None, seconds=live.seconds)
            found[delay].append(at)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.seeds = 3.0, 2, 5
    latency, pending = serving_rounds(args.rate, args.seconds, args.rounds)
    print(f"\n1. serving: {args.rate:.0f} req/s, {args.rounds} x {args.seconds:.0f} s each, "
          "1 in 6 requests fails on v2 (live) and is answered by v1 (standby)\n")
    print(f"{'':12} {'good requests':>14} {'p50 ms':>8} {'p99 ms':>8}")
    for name, ms in latency.items():
        print(f"{name:12} {len(ms):>14} {pct(ms, 0.5):>8.2f} {pct(ms, 0.99):>8.2f}")
    p99 = pct(pending, 0.99)
    print(f"\nfailures judged: {len(pending)}; pending until judged: p50 "
          f"{pct(pending, 0.5) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max "
          f"{max(pending, default=float('nan')) * 1000:.1f} ms")
    delays = [0.0, round(p99, 4), 0.1, 1.0]
    found = detection(args.seeds, delays)
    print(f"\n2. detection of error rate 1% -> 5% (10 req/s), the watch service, "
          f"{args.seeds} seeds\n")
    print(f"{'errors held pending':>22} {'median s':>9} {'mean s':>8} {'missed':>7} "
          f"{'vs none: mean diff s':>21}")
    base = found[0.0]
    for delay, times in found.items():
        hit = [t for t in times if t is not None]
        diffs = [t - b for t, b in zip(times, base, strict=True) if t is not None and b is not None]
        print(f"{delay * 1000:>19.1f} ms {statistics.median(hit):>9.1f} "
              f"{statistics.fmean(hit):>8.1f} {len(times) - len(hit):>7} "
              f"{statistics.fmean(diffs):>21.2f}")
    on, off = latency["replay on"], latency["replay off"]
    lat_ok = all(pct(on, q) <= 1.2 * pct(off, q) for q in (0.5, 0.99))
    med = statistics.median([t for t in found[delays[1]] if t is not None])
    med0 = statistics.median([t for t in base if t is not None])
    print(f"\ntarget: live p50/p99 with replay within 20 % of without: "
          f"{'PASS' if lat_ok else 'MISS'}")
    print(f"target: median detection with the measured p99 delay within 0.2 s of none: "
          f"{'PASS' if abs(med - med0) <= 0.2 else 'MISS'} ({med - med0:+.2f} s)")


if __name__ == "__main__":
    main()
