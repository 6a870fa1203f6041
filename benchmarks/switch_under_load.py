"""Switching under steady load, side by side on this machine (loopback only, ~2 minutes).

    .venv/bin/python benchmarks/switch_under_load.py [--rate 300] [--compare-pool] [--base main]

Scenarios, each under the same steady load (RATE requests/s paced over CONCURRENCY keep-alive
connections from a separate process, raw sockets, bounded in time); the maximum throughput is a
separate closed-loop run with the servers measured in turns (the others SIGSTOPped), so a
change in the machine's background load hits every contestant alike:
  (a)  lastgood switching to a warm standby: 10 (1 worker) or 6 (4 workers, SO_REUSEPORT)
       registry writes alternating between two versions. Each commit wakes the replicas at
       once (a datagram to each replica's socket beside the SQLite file, as every lastgood
       process that commits does); their 10 ms poll (a stat of the file; the registry is read
       only when it changed) stays as the fallback. The writes are the pointer move
       `lastgood rollback` commits (`switch_registry` below), made directly: no command, no
       plan, no preflight, no confirmation. This measures the data plane's switch;
       benchmarks/rollback_e2e.py measures the command a user types;
  (b)  lastgood switching with a cold load (no standby): the version is fetched, loaded from
       its skops file and warmed on its golden examples in a thread while serving;
  (c)  the restart approach: stop the server process, start it on the old version;
  (d)  a minimal hand-written FastAPI endpoint calling the same model: the overhead floor.
Two iris models (scikit-learn, trained here, saved with skops, registered in a real SQLite
registry and local artifact store) are the versions. Times to the target are measured from
the registry commit (when the desired state changed; the commit's own duration is printed) or
from the restart command. "100% target" is the last response still from the old version (or
the first of the target, when that came later); the load's connections take turns, so a request
leaves every 1/RATE s and that is the resolution of both times. A
refused connection counts as a failed request and is retried at the offered pace. Nothing here
asserts; it prints a table, the targets, and PASS/MISS per target. On a shared machine the
numbers move with the background load: read them with `uptime` in mind.

With `--base REF` each scenario (and the throughput duel) first runs on the src of git REF
(exported to a temporary folder and put first on PYTHONPATH: same interpreter, packages and
benchmark code, in a process of its own), then on this tree, and the table shows each
scenario's two rows one under the other.
"""

# No `from __future__ import annotations`: FastAPI must see the floor's real annotations.
# Heavy imports live inside functions, so the spawned load generator starts in a blink.
import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
MODEL, ENV = "iris", "bench"
COLUMNS = ("sepal_length", "sepal_width", "petal_length", "petal_width")
CONCURRENCY = 8
RETRY_S = 0.01  # a refused connection is retried after this (the offered load continues)
BODY = json.dumps({"records": [dict(zip(COLUMNS, (5.9, 3.0, 5.1, 1.8), strict=True))]}).encode()


# -- models and registry --------------------------------------------------------------------

def train(work: Path) -> dict[int, Path]:
    """Two different iris classifiers saved with skops: version 1 and version 2."""
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_iris(return_X_y=True)
    paths = {}
    for number, est in ((1, LogisticRegression(max_iter=500)),
                        (2, DecisionTreeClassifier(max_depth=3, random_state=0))):
        est.fit(x, y)
        paths[number] = work / f"iris-{number}.skops"
        sio.dump(est, paths[number])
    return paths


def register(url: str, store_root: Path, paths: dict[int, Path]) -> None:
    """Register both versions with golden examples and deploy+verify 1, then 2."""
    import skops.io as sio
    from sklearn.datasets import load_iris

    from lastgood.adapters.artifacts import LocalArtifactStore
    from lastgood.bootstrap.services import open_registry
    from lastgood.domain.versions import (
        ArtifactFile,
        Column,
        GoldenExample,
        Manifest,
        NewVersion,
        Schema,
    )

    x, _ = load_iris(return_X_y=True)
    store, registry, now = LocalArtifactStore(store_root), open_registry(url), datetime.now(UTC)
    with registry() as uow:
        for number, path in sorted(paths.items()):
            est = sio.load(path, trusted=sio.get_untrusted_types(file=path))
            with path.open("rb") as fh:
                blob = store.put(fh)
            golden = tuple(GoldenExample(inputs=dict(zip(COLUMNS, map(float, row), strict=True)),
                                         expected=int(est.predict([row])[0]))
                           for row in x[::30])
            uow.versions.add(NewVersion(
                model=MODEL, flavor="sklearn", golden=golden, tag=f"v{number}",
                manifest=Manifest((ArtifactFile(path.name, blob.size, blob.sha256),)),
                schema=Schema(inputs=tuple(Column(c, "float64") for c in COLUMNS))),
                at=now, actor="bench")
        uow.commit()
    for number in (1, 2):
        switch_registry(url, number)


_REGISTRIES: dict[str, Any] = {}


def committing_registry(url: str) -> Any:
    """The registry as every lastgood process that commits opens it (its commits wake the
    replicas), one per URL."""
    from lastgood.bootstrap.services import open_committing_registry

    return _REGISTRIES.get(url) or _REGISTRIES.setdefault(url, open_committing_registry(url))


def switch_registry(url: str, number: int) -> float:
    """What `lastgood deploy`/`rollback` write: end the live deployment, start `number`.

    Returns the monotonic time of the commit: from then on the desired state has changed.
    """
    from lastgood.domain.deployments import DeploymentEnd, VerifiedRecord

    registry = committing_registry(url)
    now = datetime.now(UTC)
    with registry() as uow:
        live = uow.deployments.live(MODEL, ENV)
        if live is not None:
            uow.deployments.end(live.id, at=now, end=DeploymentEnd.ROLLED_BACK, reason="bench")
        dep = uow.deployments.start(model=MODEL, env=ENV, version=number, at=now, actor="bench",
                                    reason="bench", operation_id=None)
        uow.deployments.set_verified(dep.id, VerifiedRecord(
            baseline={}, window_start=now, window_end=now, approver="bench", at=now))
        uow.commit()
    return time.monotonic()


# -- servers (each in its own process) ------------------------------------------------------

def run_lastgood(url: str, store_root: str, cache: str, port: int, workers: int,
                 standby: int, inline_below_ms: float) -> None:
    from lastgood.adapters.artifacts import LocalArtifactStore
    from lastgood.adapters.formats import LocalModelFormats
    from lastgood.adapters.system.clock import SystemClock
    from lastgood.adapters.wakeups.change_signals import signal_for_url
    from lastgood.bootstrap.services import open_registry
    from lastgood.bootstrap.serving import artifact_loader
    from lastgood.serving.gateway import GatewayOptions
    from lastgood.serving.reconciler import ReconcilerOptions
    from lastgood.serving.server import ServingOptions, serve
    from lastgood.serving.slots import StandbyLimits

    options = ServingOptions(
        reconciler=ReconcilerOptions(standby=StandbyLimits(count=standby), heartbeat_s=1.0),
        gateway=GatewayOptions(inline_below_ms=inline_below_ms))
    serve(ENV, host=HOST, port=port, workers=workers,
          uow_factory_builder=partial(open_registry, url),
          loader_builder=partial(artifact_loader, partial(LocalArtifactStore, Path(store_root)),
                                 LocalModelFormats, Path(cache)), replica_prefix="bench",
          signal_builder=signal_for_url(url, poll_interval_s=options.poll_interval_s),
          clock=SystemClock(), options=options)


def run_minimal(model_path: str, version: int, port: int) -> None:
    """The hand-written floor, and the server the restart approach restarts."""
    import numpy as np
    import skops.io as sio
    import uvicorn
    from fastapi import FastAPI, Response
    from pydantic import BaseModel

    class Body(BaseModel):
        records: list[dict[str, float]]  # what a hand-written endpoint would declare

    est = sio.load(model_path, trusted=sio.get_untrusted_types(file=model_path))
    app = FastAPI()

    @app.post("/predict")
    async def predict(body: Body, response: Response) -> dict[str, Any]:
        x = np.array([[r[c] for c in COLUMNS] for r in body.records])
        response.headers["X-Model-Version"] = str(version)
        return {"version": version, "predictions": est.predict(x).tolist()}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False, ws="none")


# -- the load generator (its own process)

Sample = tuple[float, float, int, str]  # sent, received, status (0 = connection error), version


async def _one_connection(port: int, request: bytes, deadline: float, interval_s: float,
                          out: list[Sample], *, phase_s: float = 0.0) -> None:
    """Send on one keep-alive connection every `interval_s` (0: as fast as answers come),
    the first request `phase_s` late (so that the connections take turns)."""
    retry = max(RETRY_S, interval_s)  # a failed attempt is retried at the offered pace
    await asyncio.sleep(phase_s)
    while time.monotonic() < deadline:
        sent = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            out.append((sent, time.monotonic(), 0, ""))
            await asyncio.sleep(retry)
            continue
        due = time.monotonic()  # no burst to catch up after an outage
        try:
            while time.monotonic() < deadline:
                due += interval_s
                sent = time.monotonic()
                writer.write(request)
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
                length = int(head.split("\r\ncontent-length:")[1].split("\r\n")[0])
                await reader.readexactly(length)
                version = head.split("\r\nx-model-version:")[1].split("\r\n")[0].strip() \
                    if "\r\nx-model-version:" in head else ""
                out.append((sent, time.monotonic(), int(head[9:12]), version))
                await asyncio.sleep(max(0.0, due - time.monotonic()))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, IndexError,
                ValueError):  # a response that does not parse counts as a failed request
            out.append((sent, time.monotonic(), 0, ""))
            await asyncio.sleep(retry)
        finally:
            writer.close()


def load_main(port: int | Sequence[int], path: str, duration_s: float, rate: float | None,
              conn: Connection, request: bytes | None = None) -> None:
    """The load process: CONCURRENCY connections, paced to `rate` req/s (None: closed loop),
    taking turns: connection i sends i/CONCURRENCY of an interval after connection 0, so a
    request leaves every 1/rate s (not all eight at once every CONCURRENCY/rate s, which would
    make "the first answer after a switch" wait for the next burst). Several ports: connection i
    goes to port i % len(ports), so each server gets the same evenly spaced share.
    `request` (a whole HTTP request) replaces the native predict request (benchmarks/protocols)."""
    ports = [port] if isinstance(port, int) else list(port)
    request = request or (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY
    interval = CONCURRENCY / rate if rate else 0.0
    out: list[Sample] = []

    async def main() -> None:
        start = time.monotonic()
        conn.send(start)
        await asyncio.gather(*(_one_connection(ports[i % len(ports)], request,
                                               start + duration_s, interval, out,
                                               phase_s=i * interval / CONCURRENCY)
                               for i in range(CONCURRENCY)))

    try:
        import uvloop
        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
    conn.send(out)


@dataclass
class Result:
    samples: list[Sample]
    commands: list[tuple[float, str]]  # (monotonic time the command took effect, target)
    start: float
    end: float
    command_s: list[float] = field(default_factory=list)  # how long each command itself took

    def reach(self) -> list[tuple[float, float]]:
        """Per command: seconds to the first target response and to 100% target responses."""
        ok = [s for s in self.samples if s[2] == 200]
        found = []
        for i, (at, target) in enumerate(self.commands):
            until = self.commands[i + 1][0] if i + 1 < len(self.commands) else self.end
            window = [s for s in ok if at <= s[1] < until]
            hits = [s[1] - at for s in window if s[3] == target]
            misses = [s[1] - at for s in window if s[3] != target]
            first = min(hits) if hits else float("nan")
            found.append((first, max([first, *misses])))
        return found

    def analyse(self) -> dict[str, Any]:
        ok = [s for s in self.samples if s[2] == 200]
        if not self.commands:
            steady = [s for s in ok if self.start + 0.3 <= s[0]]
            return {"before": lat(steady), "tput": tput(steady), "failed": fails(self.samples)}
        reach = self.reach()
        first_cmd = self.commands[0][0]
        during_end = self.commands[-1][0] + max(reach[-1][1], 0.0)
        return {"before": lat([s for s in ok if self.start + 0.3 <= s[0] < first_cmd]),
                "during": lat([s for s in ok if first_cmd <= s[0] <= during_end]),
                "after": lat([s for s in ok if during_end < s[0]]),
                "failed": fails([s for s in self.samples if s[0] >= first_cmd]),
                "first": [r[0] for r in reach], "full": [r[1] for r in reach],
                "command_ms": pct(self.command_s, 0.5) * 1000}


def drive(port: int, path: str, duration_s: float, *, rate: float | None,
          commands: Sequence[tuple[float, str, Callable[[], float]]] = (),
          request: bytes | None = None) -> Result:
    """Load for `duration_s`; run each command at its offset; a command returns when it took
    effect (the registry commit, or the restart command)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    loader = ctx.Process(target=load_main, args=(port, path, duration_s, rate, child, request))
    loader.start()
    start: float = parent.recv()
    done: list[tuple[float, str]] = []
    issued: list[float] = []
    for offset, target, action in commands:
        time.sleep(max(0.0, start + offset - time.monotonic()))
        issued.append(time.monotonic())
        done.append((action(), target))
    samples: list[Sample] = parent.recv()
    loader.join()
    return Result(samples, done, start, start + duration_s,
                  [effect - began for (effect, _), began in zip(done, issued, strict=True)])


# -- analysis -------------------------------------------------------------------------------

def lat(samples: Sequence[Sample]) -> tuple[float, float]:
    ms = sorted((s[1] - s[0]) * 1000 for s in samples)
    if not ms:
        return (float("nan"), float("nan"))
    return (ms[len(ms) // 2], ms[min(int(len(ms) * 0.99), len(ms) - 1)])


def tput(samples: Sequence[Sample]) -> float:
    if len(samples) < 2:
        return float("nan")
    return len(samples) / (max(s[1] for s in samples) - min(s[0] for s in samples))


def fails(samples: Sequence[Sample]) -> int:
    return sum(1 for s in samples if s[2] != 200)


def pct(values: Sequence[float], q: float) -> float:
    clean = sorted(v for v in values if v == v)
    if not clean:
        return float("nan")
    return clean[min(int(q * len(clean)), len(clean) - 1)]


# -- the scenarios --------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(url: str, predicate: Callable[[Any], bool], timeout_s: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate(httpx.get(url, timeout=2, headers={"Connection": "close"})):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"server at {url} did not get ready")


def wait_replicas(url: str, workers: int, version: int) -> None:
    registry = committing_registry(url)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with registry() as uow:
            reports = uow.replicas.list(model=MODEL, env=ENV)
        if sum(1 for r in reports if r.version == version and r.state == "serving") >= workers:
            return
        time.sleep(0.05)
    raise SystemExit("replicas did not report in time")


def stop(proc: multiprocessing.process.BaseProcess) -> None:
    proc.terminate()
    proc.join(30)
    if proc.is_alive():
        proc.kill()
        proc.join()


@dataclass
class Bench:
    work: Path
    url: str
    store: Path
    paths: dict[int, Path]
    rate: float
    steady_s: float


def lastgood(bench: Bench, *, workers: int, standby: int, switches: int, spacing_s: float,
             inline_below_ms: float = 2.0) -> dict[str, Any]:
    import httpx

    ctx = multiprocessing.get_context("spawn")
    port = free_port()
    proc = ctx.Process(target=run_lastgood, args=(
        bench.url, str(bench.store), str(bench.work / "cache"), port, workers, standby,
        inline_below_ms))
    proc.start()
    try:
        wait_replicas(bench.url, workers, 2)
        base = f"http://{HOST}:{port}/v1/models/{MODEL}"
        if standby:  # every worker holds version 1 warm before the clock starts
            wait_ready(base, lambda r: all(
                httpx.get(base, headers={"Connection": "close"}).json()["standby"]
                for _ in range(4 * workers)))
        path = f"/v1/models/{MODEL}/predict"
        targets = [str(1 + i % 2) for i in range(switches)]  # 1, 2, 1, 2 ...: ends on 2
        commands = [(bench.steady_s + i * spacing_s, t, partial(switch_registry, bench.url,
                                                                int(t)))
                    for i, t in enumerate(targets)]
        duration = 2 * bench.steady_s + switches * spacing_s
        return drive(port, path, duration, rate=bench.rate, commands=commands).analyse()
    finally:
        stop(proc)


def restart(bench: Bench, *, restarts: int, spacing_s: float = 12.0) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    port = free_port()
    current = [ctx.Process(target=run_minimal, args=(str(bench.paths[2]), 2, port))]
    current[0].start()
    wait_ready(f"http://{HOST}:{port}/healthz", lambda r: r.status_code == 200)

    def restart_on(version: int) -> float:
        issued = time.monotonic()
        stop(current[0])  # what `rollout undo` or restarting `mlflow models serve` amounts to
        current[0] = ctx.Process(target=run_minimal,
                                 args=(str(bench.paths[version]), version, port))
        current[0].start()
        return issued

    targets = [1 + i % 2 for i in range(restarts)]
    commands = [(bench.steady_s + i * spacing_s, str(t), partial(restart_on, t))
                for i, t in enumerate(targets)]
    try:
        return drive(port, "/predict", 2 * bench.steady_s + restarts * spacing_s,
                     rate=bench.rate, commands=commands).analyse()
    finally:
        stop(current[0])


def floor(bench: Bench) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    port = free_port()
    proc = ctx.Process(target=run_minimal, args=(str(bench.paths[2]), 2, port))
    proc.start()
    try:
        wait_ready(f"http://{HOST}:{port}/healthz", lambda r: r.status_code == 200)
        return drive(port, "/predict", bench.steady_s, rate=bench.rate).analyse()
    finally:
        stop(proc)


def start_lastgood(bench: Bench, port: int, *, inline_below_ms: float) -> Any:
    proc = multiprocessing.get_context("spawn").Process(target=run_lastgood, args=(
        bench.url, str(bench.store), str(bench.work / "cache"), port, 1, 1, inline_below_ms))
    proc.start()
    return proc


def duel(bench: Bench, *, compare_pool: bool, rounds: int = 3,
         seconds: float = 1.0) -> dict[str, float]:
    """Maximum throughput (closed loop), servers measured in turns, the others frozen (SIGSTOP),
    so a change in the machine's background load hits every contestant alike."""
    ports = {key: free_port() for key in ("a1", "d", "e")}
    procs = {"a1": start_lastgood(bench, ports["a1"], inline_below_ms=2.0),
             "d": multiprocessing.get_context("spawn").Process(
                 target=run_minimal, args=(str(bench.paths[2]), 2, ports["d"]))}
    procs["d"].start()
    if compare_pool:
        procs["e"] = start_lastgood(bench, ports["e"], inline_below_ms=0.0)
    paths = {"a1": f"/v1/models/{MODEL}/predict", "e": f"/v1/models/{MODEL}/predict",
             "d": "/predict"}
    found: dict[str, list[float]] = {key: [] for key in procs}
    try:
        for key in procs:
            ready = "/healthz" if key == "d" else "/readyz"
            wait_ready(f"http://{HOST}:{ports[key]}{ready}", lambda r: r.status_code == 200)
            os.kill(procs[key].pid, signal.SIGSTOP)
        for _ in range(rounds):
            for key, proc in procs.items():
                os.kill(proc.pid, signal.SIGCONT)
                time.sleep(0.3)
                found[key].append(drive(ports[key], paths[key], seconds, rate=None)
                                  .analyse()["tput"])
                os.kill(proc.pid, signal.SIGSTOP)
    finally:
        for proc in procs.values():
            os.kill(proc.pid, signal.SIGCONT)
            stop(proc)
    return {key: sorted(values)[len(values) // 2] for key, values in found.items()}


# -- the table ------------------------------------------------------------------------------

def fmt(value: float) -> str:
    return "-" if value != value else f"{value:.1f}"  # NaN -> "-"


def row(name: str, a: dict[str, Any]) -> str:
    reach = "- | -"
    if "first" in a:
        reach = (f"{fmt(pct(a['first'], .5) * 1000)}/{fmt(pct(a['first'], .99) * 1000)}"
                 f" | {fmt(pct(a['full'], .5) * 1000)}/{fmt(pct(a['full'], .99) * 1000)}")
    parts = [f"{fmt(a[k][0])}/{fmt(a[k][1])}" if k in a else "-"
             for k in ("before", "during", "after")]
    return (f"| {name} | {a['failed']} | {reach} | {' | '.join(parts)} | "
            f"{fmt(a.get('tput', float('nan')))} |")


def verdicts(res: dict[str, dict[str, Any]]) -> list[str]:
    a1, a4, b, d = res["a1"], res["a4"], res["b"], res["d"]
    checks = [
        ("(a) 1 worker: 0 failed requests", a1["failed"] == 0, f"{a1['failed']}"),
        ("(a) 1 worker: commit -> 100% target p99 <= 10 ms (fast switch, SQLite, one replica)",
         pct(a1["full"], .99) <= 0.010, f"{fmt(pct(a1['full'], .99) * 1000)} ms"),
        ("(a) 4 workers: 0 failed requests", a4["failed"] == 0, f"{a4['failed']}"),
        ("(a) 4 workers: command -> 100% target p99 <= 500 ms",
         pct(a4["full"], .99) <= 0.500, f"{fmt(pct(a4['full'], .99) * 1000)} ms"),
        ("(a) 1 worker: p99 during switch <= 1.5x before",
         a1["during"][1] <= 1.5 * a1["before"][1],
         f"{fmt(a1['during'][1])} vs {fmt(a1['before'][1])} ms"),
        ("(b) cold load: 0 failed requests", b["failed"] == 0, f"{b['failed']}"),
        ("(b) cold load: p99 while loading <= 3x before", b["during"][1] <= 3 * b["before"][1],
         f"{fmt(b['during'][1])} vs {fmt(b['before'][1])} ms"),
        ("throughput lastgood (1 worker) >= 0.9x minimal FastAPI (d)",
         a1["tput"] >= 0.9 * d["tput"], f"{fmt(a1['tput'])} vs {fmt(d['tput'])} req/s"),
    ]
    return [f"{'PASS' if ok else 'MISS'}  {label}  ({seen})" for label, ok, seen in checks]


def scenarios(bench: Bench) -> list[tuple[str, str, Callable[[], Any]]]:
    runs: list[tuple[str, str, Callable[[], Any]]] = [
        ("a1", "(a) lastgood warm standby, 1 worker, pointer written directly", partial(
            lastgood, bench, workers=1, standby=1, switches=10, spacing_s=0.3)),
        ("a4", "(a) lastgood warm standby, 4 workers, pointer written directly", partial(
            lastgood, bench, workers=4, standby=1, switches=6, spacing_s=0.5)),
        ("b", "(b) lastgood cold load, 1 worker, pointer written directly", partial(
            lastgood, bench, workers=1, standby=0, switches=4, spacing_s=1.0)),
        ("c", "(c) restart approach", partial(restart, bench, restarts=1)),
        ("d", "(d) minimal FastAPI floor (no switch)", partial(floor, bench)),
    ]
    return runs


STEPS = ("a1", "a4", "b", "c", "d", "tput")
"""The measurements in their order: the scenarios, then the closed-loop throughputs."""


def measure(args: argparse.Namespace, only: Sequence[str] = STEPS,
            base: Callable[[str], dict[str, dict[str, Any]]] | None = None,
            ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(this tree's results, `base`'s) of the steps in `only`, on the lastgood this process
    imports; each step is measured on `base` (another tree, given a step) right before it is
    measured here, so both see the machine's background load of the same minute."""
    results: dict[str, dict[str, Any]] = {}
    before: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-") as tmp:
        work = Path(tmp)
        paths = train(work)
        url = f"sqlite:///{work / 'registry.db'}"
        register(url, work / "store", paths)
        bench = Bench(work, url, work / "store", paths, args.rate, args.steady)
        runs = {key: (label, run) for key, label, run in scenarios(bench)}
        for step in only:
            for key, value in (base(step) if base is not None else {}).items():
                before.setdefault(key, {"failed": 0}).update(
                    {"tput": value["tput"]} if step == "tput" else value)
            if step == "tput":
                print("measuring maximum throughput ...", file=sys.stderr, flush=True)
                for key, value in duel(bench, compare_pool=args.compare_pool).items():
                    results.setdefault(key, {"failed": 0})["tput"] = value
                continue
            label, run = runs[step]
            print(f"running {label} ...", file=sys.stderr, flush=True)
            took = time.monotonic()
            results[step] = run()
            print(f"  {time.monotonic() - took:.0f} s", file=sys.stderr, flush=True)
        for registry in _REGISTRIES.values():
            registry.dispose()
    return results, before


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=300.0, help="steady load, requests/s")
    parser.add_argument("--steady", type=float, default=1.5, help="seconds before and after")
    parser.add_argument("--compare-pool", action="store_true",
                        help="also measure lastgood with every prediction in the thread pool")
    parser.add_argument("--base", help="a git ref to measure too, side by side (e.g. main)")
    parser.add_argument("--json-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=STEPS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    began = time.monotonic()
    if args.json_out is not None:  # one step of the --base run on another tree: results only
        found, _ = measure(args, only=[args.only] if args.only else STEPS)
        args.json_out.write_text(json.dumps(found), encoding="utf-8")
        return
    base = None
    if args.base:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from benchmarks._common import run_on_base

        def base(step: str) -> dict[str, dict[str, Any]]:
            print(f"[{args.base}] ...", file=sys.stderr, flush=True)
            found: dict[str, dict[str, Any]] = run_on_base(
                args.base, Path(__file__).resolve(),
                ["--rate", str(args.rate), "--steady", str(args.steady), "--only", step,
                 *(["--compare-pool"] if args.compare_pool else [])])
            return found

    results, before = measure(args, base=base)
    lines = ["| scenario | failed during switch | command->first target p50/p99 ms | "
             "command->100% target p50/p99 ms | p50/p99 before ms | p50/p99 during ms | "
             "p50/p99 after ms | max req/s (closed loop, median of 3) |",
             "|---|---|---|---|---|---|---|---|"]
    labels = [(key, label) for key, label, _ in scenarios(None)]  # type: ignore[arg-type]
    if args.compare_pool:
        labels.append(("e", "lastgood, every prediction in the thread pool (no switch)"))
    for key, label in labels:
        if key in before:
            lines.append(row(f"{label} [{args.base}]", before[key]))
        lines.append(row(f"{label}{' [this tree]' if before else ''}", results[key]))
    print(f"\nswitch under load: steady {args.rate:g} req/s over {CONCURRENCY} keep-alive "
          f"connections (max req/s: closed loop), loopback, {multiprocessing.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}, total {time.monotonic() - began:.0f} s. "
          f"Times are from the registry commit (median commit "
          f"{fmt(results['a1']['command_ms'])} ms) or the restart command. "
          "lastgood rows write the deployment pointer directly (what the engine commits), "
          "bypassing `lastgood rollback` (plan, preflight, confirmation): see "
          "benchmarks/rollback_e2e.py for the command end to end."
          + (f" Rows marked [{args.base}] ran the same measurement on git {args.base}'s src "
             "right before this tree's, step by step." if before else "") + "\n")
    print("\n".join(lines))
    print("\ntargets:")
    print("\n".join(verdicts(results)))


if __name__ == "__main__":
    main()
