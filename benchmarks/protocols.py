"""The protocols under load, side by side on this machine (loopback only, ~2 minutes).

    .venv/bin/python benchmarks/protocols.py [--rate 300]

One `lastgood serve` replica (1 worker, a warm standby, the SQLite registry) serves the two
iris versions of benchmarks/switch_under_load.py. Through each door in turn — the native
`/v1/models/iris/predict`, `/v2/models/iris/infer` with JSON tensors, the same with binary
tensors (tritonclient's default), and MLflow's `/invocations` (a `dataframe_split` body, what
MLflow's own client sends) — the same steady load (RATE requests/s over CONCURRENCY keep-alive
connections from a separate process) runs while the registry switches between the versions 10
times. Both versions are MLflow model directories written by mlflow.sklearn.save_model. Then
the maximum throughput (closed loop) is measured in rounds, door by door, and
`mlflow models serve --env-manager local -w 1` on the same directory as version 2 takes its
turns on `/invocations` with the same body, the other
server frozen (SIGSTOP) meanwhile so the machine's background load hits both alike. Nothing
here asserts; it prints the table, the targets and PASS/MISS per target.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.switch_under_load import (
    _REGISTRIES,
    COLUMNS,
    CONCURRENCY,
    ENV,
    HOST,
    MODEL,
    drive,
    fmt,
    free_port,
    pct,
    run_lastgood,
    stop,
    switch_registry,
    train,
    wait_ready,
    wait_replicas,
)

ROW = (5.9, 3.0, 5.1, 1.8)
SWITCHES, SPACING_S = 10, 0.3


def http_request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\n{head}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def native() -> bytes:
    body = json.dumps({"records": [dict(zip(COLUMNS, ROW, strict=True))]}).encode()
    return http_request(f"/v1/models/{MODEL}/predict", body,
                        {"Content-Type": "application/json"})


def oip_json() -> bytes:
    body = json.dumps({"inputs": [{"name": c, "shape": [1], "datatype": "FP64", "data": [v]}
                                  for c, v in zip(COLUMNS, ROW, strict=True)]}).encode()
    return http_request(f"/v2/models/{MODEL}/infer", body, {})


def oip_binary() -> bytes:
    """What tritonclient sends by default: a JSON header, then the raw little-endian values."""
    header = json.dumps({"inputs": [{"name": c, "shape": [1], "datatype": "FP64",
                                     "parameters": {"binary_data_size": 8}} for c in COLUMNS],
                         "parameters": {"binary_data_output": True}}).encode()
    blobs = b"".join(struct.pack("<d", v) for v in ROW)
    return http_request(f"/v2/models/{MODEL}/infer", header + blobs,
                        {"Inference-Header-Content-Length": str(len(header))})


def invocations() -> bytes:
    body = json.dumps({"dataframe_split": {"columns": list(COLUMNS), "data": [list(ROW)]}})
    return http_request("/invocations", body.encode(), {"Content-Type": "application/json"})


DOORS: dict[str, tuple[str, Callable[[], bytes]]] = {
    "native": ("native POST /v1/models/iris/predict", native),
    "oip_json": ("OIP v2 infer, JSON tensors", oip_json),
    "oip_binary": ("OIP v2 infer, binary tensors", oip_binary),
    "invocations": ("MLflow /invocations (dataframe_split)", invocations),
}


# -- mlflow models serve on the same estimator --------------------------------------------------

def save_for_mlflow(skops_path: Path, folder: Path) -> Path:
    """The estimator of a skops file as an MLflow model directory (mlflow.sklearn.save_model):
    what `mlflow models serve` serves and what lastgood registers, so both serve the same."""
    import mlflow.sklearn
    import pandas as pd
    import skops.io as sio
    from mlflow.models import infer_signature

    est = sio.load(skops_path, trusted=sio.get_untrusted_types(file=skops_path))
    frame = pd.DataFrame([ROW], columns=list(COLUMNS))
    target = folder / f"mlflow-{skops_path.stem}"
    signature = infer_signature(frame, est.predict(frame.to_numpy()))
    # MLflow saves with skops by default; the decision tree's node storage must be trusted
    mlflow.sklearn.save_model(est, target, signature=signature,
                              skops_trusted_types=["sklearn.tree._tree.Tree"])
    return target


def start_mlflow(model_dir: Path, port: int) -> subprocess.Popen[bytes]:
    bin_dir = Path(sys.executable).parent  # mlflow runs `uvicorn` from PATH
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.Popen([str(bin_dir / "mlflow"), "models", "serve", "-m", str(model_dir),
                             "-p", str(port), "-h", HOST, "--env-manager", "local", "-w", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True, env=env)


TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and every descendant still running."""
    total = 0.0
    for found in [pid, *descendants(pid)]:
        try:
            fields = Path(f"/proc/{found}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) * TICK_S  # utime, stime
    return total


def descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def measured(port: int, pid: int, request: bytes, seconds: float) -> tuple[float, float]:
    """(closed-loop req/s, server CPU µs per answered request) of one run."""
    before = cpu_s(pid)
    result = drive(port, "", seconds, rate=None, request=request)
    answered = sum(1 for sample in result.samples if sample[2] == 200)
    return result.analyse()["tput"], (cpu_s(pid) - before) / max(answered, 1) * 1e6


def freeze(pid: int, *, group: bool, on: bool) -> None:
    sig = signal.SIGSTOP if on else signal.SIGCONT
    os.killpg(pid, sig) if group else os.kill(pid, sig)


def register_dirs(url: str, store_root: Path, dirs: dict[int, Path]) -> None:
    """Register the MLflow directories as versions 1 and 2 (every file, content-addressed),
    with golden examples, and deploy+verify 1, then 2 (as switch_under_load.register does)."""
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
    store, registry = LocalArtifactStore(store_root), open_registry(url)
    with registry() as uow:
        for number, folder in sorted(dirs.items()):
            files = []
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                with path.open("rb") as fh:
                    blob = store.put(fh)
                files.append(ArtifactFile(path.relative_to(folder).as_posix(), blob.size,
                                          blob.sha256))
            skops = folder / "model.skops"
            est = sio.load(skops, trusted=sio.get_untrusted_types(file=skops))
            golden = tuple(GoldenExample(dict(zip(COLUMNS, map(float, row), strict=True)),
                                         int(est.predict([row])[0])) for row in x[::30])
            uow.versions.add(NewVersion(
                model=MODEL, flavor="sklearn", golden=golden, tag=f"v{number}",
                manifest=Manifest(tuple(files)),
                schema=Schema(inputs=tuple(Column(c, "float64") for c in COLUMNS))),
                at=datetime.now(UTC), actor="bench")
        uow.commit()
    registry.dispose()
    for number in (1, 2):
        switch_registry(url, number)


# -- the app alone: microseconds per request, in process ------------------------------------

def asgi_costs(url: str, folder: Path, rounds: int = 7, calls: int = 500) -> dict[str, float]:
    """Each door's CPU time in the gateway app itself (no sockets, no HTTP parsing), on a slot
    of version 2 loaded as `lastgood serve` loads it; the doors interleaved, the best round
    kept. CPU time, so the load on a shared machine moves this far less than a throughput."""
    import asyncio

    from lastgood.adapters.formats import LocalModelFormats
    from lastgood.adapters.system.clock import SystemClock
    from lastgood.bootstrap.services import open_registry
    from lastgood.serving.gateway import create_gateway
    from lastgood.serving.slots import Slot
    from lastgood.serving.state import ServingState

    registry = open_registry(url)
    with registry() as uow:
        version = uow.versions.get(MODEL, 2)
    registry.dispose()
    now = datetime.now(UTC)
    slot = Slot(version).warmed(LocalModelFormats().load(version, folder), at=now, load_ms=0.0,
                                warmup_ms=[], per_record_ms=0.05)
    state = ServingState(env=ENV)
    state.deployed = frozenset({MODEL})
    state.table(MODEL).switch(slot, at=now)
    app = create_gateway(state, clock=SystemClock())
    best: dict[str, float] = {}

    async def call(scope: dict[str, Any], body: bytes) -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] != 200:
                raise SystemExit(f"{scope['path']} answered {message['status']}")

        await app(scope, receive, send)

    async def measure() -> None:
        for _ in range(rounds):
            for key, (_, build) in DOORS.items():
                scope, body = _scope(build())
                began = time.process_time()  # CPU time: others' load does not count
                for _ in range(calls):
                    await call(scope, body)
                took = (time.process_time() - began) / calls * 1e6
                best[key] = min(best.get(key, took), took)

    asyncio.run(measure())
    return best


def _scope(request: bytes) -> tuple[dict[str, Any], bytes]:
    head, body = request.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split()[1]
    headers = [(k.strip().lower().encode(), v.strip().encode())
               for k, v in (line.split(":", 1) for line in lines[1:])]
    return ({"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": headers, "http_version": "1.1", "scheme": "http",
             "server": (HOST, 0), "client": (HOST, 1), "root_path": ""}, body)


# -- the runs ------------------------------------------------------------------------------

@dataclass
class Replica:
    url: str
    port: int
    proc: multiprocessing.process.BaseProcess


def start_replica(url: str, work: Path) -> Replica:
    import httpx

    port = free_port()
    proc = multiprocessing.get_context("spawn").Process(target=run_lastgood, args=(
        url, str(work / "store"), str(work / "cache"), port, 1, 1, 2.0))
    proc.start()
    wait_replicas(url, 1, 2)
    base = f"http://{HOST}:{port}/v1/models/{MODEL}"
    wait_ready(base, lambda r: bool(httpx.get(base, headers={"Connection": "close"})
                                    .json()["standby"]))
    return Replica(url, port, proc)


def switching(replica: Replica, request: bytes, rate: float, steady_s: float) -> dict[str, Any]:
    """The steady load through one door while the registry switches SWITCHES times."""
    targets = [str(1 + i % 2) for i in range(SWITCHES)]  # 1, 2, 1, 2 ...: ends on 2
    commands = [(steady_s + i * SPACING_S, t, partial(switch_registry, replica.url, int(t)))
                for i, t in enumerate(targets)]
    duration = 2 * steady_s + SWITCHES * SPACING_S
    return drive(replica.port, "", duration, rate=rate, commands=commands,
                 request=request).analyse()


def duel(replica: Replica, mlflow_port: int, mlflow: subprocess.Popen[bytes], *,
         rounds: int = 11, seconds: float = 0.5) -> dict[str, tuple[float, float]]:
    """Closed-loop req/s and server CPU per request, per door and for mlflow, in rounds, the
    idle server frozen; the doors take turns in a rotated order each round, so a drift in
    background load favours none. Medians over the rounds."""
    found: dict[str, list[tuple[float, float]]] = {key: [] for key in [*DOORS, "mlflow"]}
    freeze(mlflow.pid, group=True, on=True)
    keys, pid = list(DOORS), replica.proc.pid or 0
    try:
        for turn in range(rounds):
            for key in keys[turn % len(keys):] + keys[:turn % len(keys)]:
                found[key].append(measured(replica.port, pid, DOORS[key][1](), seconds))
            freeze(pid, group=False, on=True)
            freeze(mlflow.pid, group=True, on=False)
            time.sleep(0.3)
            found["mlflow"].append(measured(mlflow_port, mlflow.pid, invocations(), seconds))
            freeze(mlflow.pid, group=True, on=True)
            freeze(pid, group=False, on=False)
            time.sleep(0.3)
    finally:
        freeze(mlflow.pid, group=True, on=False)
    return {key: (median([v[0] for v in values]), median([v[1] for v in values]))
            for key, values in found.items()}


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


# -- the table -----------------------------------------------------------------------------

def row(label: str, a: dict[str, Any], loop: tuple[float, float], cost: float) -> str:
    full = a.get("full", [])
    return (f"| {label} | {a['failed']} | {fmt(pct(full, .5) * 1000)}/"
            f"{fmt(pct(full, .99) * 1000)} | {fmt(a['before'][0])}/{fmt(a['before'][1])} | "
            f"{fmt(a['during'][0])}/{fmt(a['during'][1])} | {fmt(loop[0])} | "
            f"{fmt(1e6 / loop[1])} | {fmt(cost)} |")


def verdicts(results: dict[str, dict[str, Any]],
             loop: dict[str, tuple[float, float]]) -> list[str]:
    """The issue's targets; each throughput both as measured (req/s, at the mercy of the
    machine's other load) and per CPU second of the server (what the server itself costs)."""
    checks = [(f"{DOORS[k][0]}: 0 failed requests during the switches",
               results[k]["failed"] == 0, f"{results[k]['failed']}") for k in DOORS]
    per_cpu = {k: 1e6 / v[1] for k, v in loop.items()}
    for name, value in (("req/s", {k: v[0] for k, v in loop.items()}),
                        ("req per CPU second", per_cpu)):
        checks += [(f"{DOORS[k][0]}: {name} >= 0.9x native", value[k] >= 0.9 * value["native"],
                    f"{value[k] / value['native']:.2f}x") for k in DOORS if k != "native"]
        checks.append((f"/invocations {name} >= 2x `mlflow models serve` (same model)",
                       value["invocations"] >= 2 * value["mlflow"],
                       f"{fmt(value['invocations'])} vs {fmt(value['mlflow'])} = "
                       f"{value['invocations'] / value['mlflow']:.2f}x"))
    return [f"{'PASS' if ok else 'MISS'}  {label}  ({seen})" for label, ok, seen in checks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=300.0, help="steady load, requests/s")
    parser.add_argument("--steady", type=float, default=1.5, help="seconds before and after")
    args = parser.parse_args()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-protocols-") as tmp:
        work = Path(tmp)
        dirs = {n: save_for_mlflow(path, work) for n, path in train(work).items()}
        url = f"sqlite:///{work / 'registry.db'}"
        register_dirs(url, work / "store", dirs)
        mlflow_port = free_port()
        mlflow = start_mlflow(dirs[2], mlflow_port)
        replica = start_replica(url, work)
        try:
            wait_ready(f"http://{HOST}:{mlflow_port}/ping", lambda r: r.status_code == 200
                       or mlflow.poll() is not None, timeout_s=120)
            if mlflow.poll() is not None:
                raise SystemExit(f"mlflow models serve exited with {mlflow.returncode}")
            results = {}
            for key, (label, build) in DOORS.items():
                print(f"switching under load through {label} ...", file=sys.stderr, flush=True)
                results[key] = switching(replica, build(), args.rate, args.steady)
            print("measuring maximum throughput ...", file=sys.stderr, flush=True)
            loop = duel(replica, mlflow_port, mlflow)
        finally:
            stop(replica.proc)
            if mlflow.poll() is None:
                os.killpg(mlflow.pid, signal.SIGTERM)  # mlflow and the uvicorn it started
                mlflow.wait(30)
            for registry in _REGISTRIES.values():
                registry.dispose()
        print("measuring the app alone ...", file=sys.stderr, flush=True)
        costs = asgi_costs(url, dirs[2])
    print(f"\nprotocols under load: steady {args.rate:g} req/s over {CONCURRENCY} keep-alive "
          f"connections, {SWITCHES} warm switches {SPACING_S:g} s apart ({ENV}), loopback, "
          f"{multiprocessing.cpu_count()} cores, total {time.monotonic() - began:.0f} s.\n")
    print("| door | failed during switches | command->100% target p50/p99 ms | "
          "p50/p99 before ms | p50/p99 during ms | max req/s (closed loop, median of 11) | "
          "req per server CPU second (same runs) | app CPU µs/request (in process, best of 7) |")
    print("|---|---|---|---|---|---|---|---|")
    for key, (label, _) in DOORS.items():
        print(row(label, results[key], loop[key], costs[key]))
    print(f"| `mlflow models serve` /invocations (same model, no switch) | - | - | - | - | "
          f"{fmt(loop['mlflow'][0])} | {fmt(1e6 / loop['mlflow'][1])} | - |")
    print("\ntargets:")
    print("\n".join(verdicts(results, loop)))


if __name__ == "__main__":
    main()
