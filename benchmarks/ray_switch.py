"""Switching a model on Ray Serve three ways, under the same steady load, in one run.

    .venv/bin/python benchmarks/ray_switch.py [--rate 100] [--replicas 2] [--rounds 2]

The same two iris models (skops files) are served by a 2-replica Ray Serve application on a
local Ray instance, behind Ray's HTTP proxy on loopback, and switched from the "bad" one to the
"good" one:

  reconfigure   Ray Serve's lightweight update: `serve.run` with a new `user_config` naming the
                other model file; each replica's `reconfigure` loads it (Ray updates replicas
                in place, a share at a time)
  redeploy      Ray Serve's code/argument update: `serve.run` with the other file as the
                deployment's argument; Ray starts new replicas and stops the old ones
  lastgood      `lastgood rollback iris --env bench --reason ... --yes` against
                `lastgood serve --env bench --engine ray --replicas 2`: every Ray replica
                switches in place to the warm standby

Per way: failed requests (any non-200 or transport error), time from the command to 100 % of
answers from the target (the last answer of the old model, or the first of the target when
later), and p99 latency in the 5 s around the switch against the 5 s before.
Targets: lastgood 0 failed, time to 100 % <= 1/10 of the faster Ray way, p99 around the switch
<= 1.5x before. The machine is shared: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers_models import IRIS_SCHEMA, iris_records, three_iris_skops  # noqa: E402
from tests.net import free_port, wait_for  # noqa: E402

from benchmarks._common import command_env, print_table, quantile  # noqa: E402

RECORDS = iris_records(2)
WINDOW_S = 5.0


@dataclass
class Answer:
    sent: float
    took: float
    tag: str  # which model answered ("" on failure)
    ok: bool


@dataclass
class Load:
    """Requests every 1/rate s from one thread per connection (4), each answer stamped."""

    url: str
    rate: float
    tag_of: Any
    body: Any
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def worker(self, offset: float, period: float) -> None:
        with httpx.Client(timeout=10) as client:
            due = time.monotonic() + offset
            while not self.stop.is_set():
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                due += period
                sent = time.monotonic()
                try:
                    answer = client.post(self.url, json=self.body)
                    ok = answer.status_code == 200
                    tag = self.tag_of(answer) if ok else ""
                except httpx.HTTPError:
                    ok, tag = False, ""
                with self.lock:
                    self.answers.append(Answer(sent, time.monotonic() - sent, tag, ok))

    def start(self, connections: int = 4) -> list[threading.Thread]:
        period = connections / self.rate
        threads = [threading.Thread(target=self.worker, args=(i * period / connections,
                                                               period), daemon=True)
                   for i in range(connections)]
        for thread in threads:
            thread.start()
        return threads


@dataclass(frozen=True)
class Outcome:
    way: str
    failed: int
    to_100_ms: float
    p99_before_ms: float
    p99_around_ms: float


def measure(load: Load, switch: Any, target: str) -> Outcome:
    """Switch under `load`; read the answers around the switch."""
    time.sleep(WINDOW_S)  # the window before
    start = time.monotonic()
    switch()
    assert wait_for(lambda: _last_tag(load) == target, timeout_s=180, poll_s=0.05)
    time.sleep(2.0)  # answers still in flight settle
    with load.lock:
        answers = list(load.answers)
    old = [a for a in answers if a.sent >= start and a.ok and a.tag != target]
    new = [a for a in answers if a.sent >= start and a.ok and a.tag == target]
    done_at = max([a.sent + a.took for a in old] + [min(a.sent + a.took for a in new)])
    before = [a.took for a in answers if start - WINDOW_S <= a.sent < start and a.ok]
    around = [a.took for a in answers if start - WINDOW_S / 2 <= a.sent < start + WINDOW_S / 2
              and a.ok]
    return Outcome("", sum(1 for a in answers if not a.ok and a.sent >= start - WINDOW_S),
                   (done_at - start) * 1000, quantile(before, 0.99) * 1000,
                   quantile(around, 0.99) * 1000)


def _last_tag(load: Load) -> str:
    with load.lock:
        return load.answers[-1].tag if load.answers else ""


# -- Ray Serve's own ways ----------------------------------------------------------------------

def ray_ways(models: list[Path], *, rate: float, replicas: int) -> list[Outcome]:
    import ray
    from ray import serve

    from benchmarks.ray_plain import PlainModel  # a module of its own: Ray imports it by name

    port = free_port()
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    outcomes = []
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        bad, good = str(models[2]), str(models[0])
        deployment = PlainModel.options(num_replicas=replicas)

        def run(path: str, config: str) -> None:
            serve.run(deployment.options(user_config={"path": config}).bind(path),
                      name="plain", route_prefix="/")

        run(bad, bad)
        body = {"records": RECORDS}
        load = Load(f"http://127.0.0.1:{port}/", rate, lambda a: a.json()["model"], body)
        threads = load.start()
        try:
            outcome = measure(load, lambda: run(bad, good), Path(good).name)
            outcomes.append(Outcome("Ray: reconfigure (user_config)", *_fields(outcome)))
            run(bad, bad)  # back to the bad model, then the redeploy
            assert wait_for(lambda: _last_tag(load) == Path(bad).name, timeout_s=120)
            outcome = measure(load, lambda: run(good, good), Path(good).name)
            outcomes.append(Outcome("Ray: redeploy (new model path)", *_fields(outcome)))
        finally:
            load.stop.set()
            for thread in threads:
                thread.join(15)
    finally:
        serve.shutdown()
        ray.shutdown()
    return outcomes


def _fields(outcome: Outcome) -> tuple[int, float, float, float]:
    return (outcome.failed, outcome.to_100_ms, outcome.p99_before_ms, outcome.p99_around_ms)


# -- lastgood inside Ray Serve ----------------------------------------------------------------

def lastgood_way(models: list[Path], home: Path, *, rate: float, replicas: int) -> Outcome:
    from lastgood.sdk import Lastgood

    env = command_env() | {"LASTGOOD_HOME": str(home), "LASTGOOD_SMOKE_TEST": "off",
                           "RAY_USAGE_STATS_ENABLED": "0"}
    with Lastgood(home=home, actor="bench") as lg:
        for i, path in enumerate(models, start=1):
            lg.register("iris", path, tag=f"v{i}", schema=IRIS_SCHEMA)
        lg.deploy("iris", 1, env="bench", reason="good")
        lg.verify("iris", env="bench", baseline={"error_rate": 0.01}, reason="baked")
        lg.deploy("iris", 3, env="bench", reason="bad")
    port = free_port()
    lastgood = [sys.executable, "-m", "lastgood"]
    server = subprocess.Popen([*lastgood, "serve", "--env", "bench", "--engine", "ray",
                               "--replicas", str(replicas), "--port", str(port)], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: httpx.get(f"{url}/readyz", timeout=2).status_code == 200,
                        timeout_s=300, poll_s=0.5), "lastgood's Ray replicas never got ready"
        body = {"records": RECORDS}
        load = Load(f"{url}/v1/models/iris/predict", rate,
                    lambda a: f"v{a.headers['x-model-version']}", body)
        threads = load.start()
        time.sleep(20)  # each replica proves its standby once before the rollback relies on it

        def rollback() -> None:
            subprocess.run([*lastgood, "rollback", "iris", "--env", "bench", "--reason",
                            "bench", "--yes"], env=env, check=True, capture_output=True)

        try:
            outcome = measure(load, rollback, "v1")
        finally:
            load.stop.set()
            for thread in threads:
                thread.join(15)
        return Outcome("lastgood rollback --yes", *_fields(outcome))
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(90)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()
    if args.rate <= 0 or args.replicas < 1:
        parser.error("--rate must be > 0 and --replicas >= 1")
    try:
        import ray  # noqa: F401
    except ImportError:
        parser.exit(2, "error: Ray Serve is not installed — pip install 'lastgood[ray]'\n")
    folder = Path(tempfile.mkdtemp(prefix="lastgood-ray-bench-"))
    try:
        models = three_iris_skops(folder / "models")
        outcomes = ray_ways(models, rate=args.rate, replicas=args.replicas)
        outcomes.append(lastgood_way(models, folder / "home", rate=args.rate,
                                     replicas=args.replicas))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print_table(f"Ray Serve, {args.replicas} replicas, {args.rate:.0f} req/s "
                f"(load average {os.getloadavg()[0]:.1f})",
                ["way", "failed", "command -> 100 % target ms", "p99 before ms",
                 "p99 around ms", "around / before"],
                [[o.way, o.failed, f"{o.to_100_ms:.0f}", f"{o.p99_before_ms:.1f}",
                  f"{o.p99_around_ms:.1f}", f"{o.p99_around_ms / o.p99_before_ms:.2f}"]
                 for o in outcomes])
    ours = outcomes[-1]
    fastest_ray = min(o.to_100_ms for o in outcomes[:-1])
    for name, ok in (("lastgood: 0 failed", ours.failed == 0),
                     (f"lastgood: time to 100 % <= 1/10 of the faster Ray way "
                      f"({ours.to_100_ms:.0f} vs {fastest_ray:.0f} ms)",
                      ours.to_100_ms <= fastest_ray / 10),
                     ("lastgood: p99 around the switch <= 1.5x before",
                      ours.p99_around_ms <= 1.5 * ours.p99_before_ms)):
        print(f"{'PASS' if ok else 'MISS'}  {name}")


if __name__ == "__main__":
    main()
