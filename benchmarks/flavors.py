"""Serving MLflow models, flavor by flavor: `lastgood serve` against `mlflow models serve`
(and MLServer, the OIP v2 reference server, when its binary is given).

    .venv/bin/python benchmarks/flavors.py [--seconds 4] [--rate 0] [--concurrency 8]
                                           [--models logreg-skops,pipeline,onnx,...]
                                           [--mlserver PATH/TO/bin/mlserver]

The alternative MLflow users have is `mlflow models serve -m DIR --env-manager local`. For each
model of the test zoo (one MLflow directory written by MLflow's own save_model per flavor:
sklearn LogisticRegression and a ColumnTransformer pipeline, ONNX, xgboost, lightgbm, a custom
pyfunc), both servers serve the same directory on loopback, one worker each:
  start       process start -> first 200 answer to a prediction (each server started alone;
              lastgood's includes reading the registry, fetching and warming the version);
  max req/s   closed loop over CONCURRENCY keep-alive connections (raw sockets, a separate
              process), the two servers measured in turns, the idle one SIGSTOPped, over three
              rounds, so a change in the machine's background load hits both alike;
  p50/p99     latency under the same paced steady load for both (RATE req/s; by default half
              the slower server's maximum, so both can sustain it).
One record per request: lastgood's `POST /v1/models/NAME/predict {"records": [...]}`, MLflow's
`POST /invocations {"dataframe_records": [...]}` (`{"inputs": [...]}` for tensors). Both answers
are compared once. Targets (per flavor, pyfunc-served ones included): throughput >= 2x
MLflow's, p99 <= MLflow's, start -> first answer <= MLflow's. With `--mlserver` (MLServer with
mlserver-mlflow, installed apart from lastgood, `parallel_workers: 0`), a third server answers
`POST /v2/models/NAME/infer` (one tensor per column, `content_type` pd, or one tensor) on the
same directory; targets: lastgood's throughput >= 1.5x MLServer's, p99 <= MLServer's. The
`path` column says whether lastgood served natively or through mlflow.pyfunc; for a directory it
serves natively, a fourth server, `lastgood via pyfunc` (the same directory registered again with
`--flavor python_function`), is measured in the same turns, and a second table says what the
native path buys (leave it out with --no-pyfunc-twin). Nothing asserts;
it prints the table and PASS/FAIL per target. The machine is shared: read the numbers with
`uptime` in mind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import print_table
from benchmarks.switch_under_load import HOST, Sample, _one_connection, free_port, lat

DEFAULT_MODELS = ("logreg-skops", "logreg-proba", "pipeline", "multioutput", "onnx", "onnx-zipmap",
                  "onnx-two-inputs", "xgboost", "lightgbm", "pyfunc", "pyfunc-frame",
                  "pyfunc-params", "statsmodels", "catboost")
PYFUNC = "python_function"
ROUNDS = 3


# -- the two servers -------------------------------------------------------------------------

@dataclass
class Server:
    """One server process (and its children, in its own session) and how to ask it."""

    label: str
    argv: list[str]
    env: dict[str, str]
    path: str
    body: bytes
    port: int
    proc: subprocess.Popen[bytes] | None = None
    start_s: float = float("nan")
    samples: dict[str, list[list[Sample]]] = field(default_factory=dict)

    def request(self) -> bytes:
        return (f"POST {self.path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json"
                f"\r\nContent-Length: {len(self.body)}\r\n\r\n").encode() + self.body

    def start(self, timeout_s: float = 120) -> None:
        """Start the process; the time to its first 200 answer is `start_s`."""
        began = time.monotonic()
        self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        while time.monotonic() - began < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited: {self.proc.stderr.read()[-800:]!r}"
                                   if self.proc.stderr else f"{self.label} exited")
            status, body = answer(self.port, self.path, self.body)
            if status == 200:
                self.start_s = time.monotonic() - began
                return
            if status >= 500 and status != 503:  # up, but it cannot answer this model
                raise RuntimeError(f"{self.label} answered {status}: {str(body)[:200]}")
            time.sleep(0.02)
        raise RuntimeError(f"{self.label} gave no 200 within {timeout_s:.0f} s")

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        finally:
            if self.proc.stderr:
                self.proc.stderr.close()


def answer(port: int, path: str, body: bytes) -> tuple[int, Any]:
    """One request on a fresh connection: (status, JSON body); (0, None) if nothing listens."""
    import httpx

    try:
        got = httpx.post(f"http://{HOST}:{port}{path}", content=body, timeout=5,
                         headers={"Content-Type": "application/json", "Connection": "close"})
    except httpx.TransportError:
        return 0, None
    try:
        return got.status_code, got.json()
    except ValueError:
        return got.status_code, None


def first_prediction(body: Any) -> Any:
    """The first prediction of any server's answer (MLflow's ONNX answer: first output; an OIP
    answer: its first output tensor)."""
    if isinstance(body, dict) and isinstance(body.get("outputs"), list) and body["outputs"]:
        tensor = body["outputs"][0]
        width = math.prod(tensor.get("shape", [1])[1:])  # the first row of a flat tensor
        row = list(tensor.get("data") or [])[:width]
        return row if width > 1 else (row[0] if row else None)
    found = body.get("predictions") if isinstance(body, dict) else body
    if isinstance(found, dict):
        found = next(iter(found.values()))
    if isinstance(found, list) and found:
        found = found[0]
    if isinstance(found, dict):  # a DataFrame answer as records
        found = next(iter(found.values()))
    return found[0] if isinstance(found, list) and len(found) == 1 else found


# -- the load generator (its own process) ----------------------------------------------------

def load_main(port: int, request: bytes, duration_s: float, rate: float | None,
              concurrency: int, conn: Connection) -> None:
    """`concurrency` keep-alive connections for `duration_s`, paced to `rate` (None: closed)."""
    interval = concurrency / rate if rate else 0.0
    out: list[Sample] = []

    async def main() -> None:
        start = time.monotonic()
        await asyncio.gather(*(_one_connection(port, request, start + duration_s, interval, out)
                               for _ in range(concurrency)))

    asyncio.run(main())
    conn.send(out)


def drive(server: Server, seconds: float, *, rate: float | None, concurrency: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    loader = ctx.Process(target=load_main, args=(server.port, server.request(), seconds, rate,
                                                 concurrency, child))
    loader.start()
    server.samples.setdefault("paced" if rate else "closed", []).append(parent.recv())
    loader.join()


def in_turns(servers: Sequence[Server], seconds: float, *, rate: float | None,
             concurrency: int) -> None:
    """Each server measured alone, the others frozen, ROUNDS times over."""
    for server in servers:
        server.signal(signal.SIGSTOP)
    for _ in range(ROUNDS):
        for server in servers:
            server.signal(signal.SIGCONT)
            time.sleep(0.2)
            drive(server, seconds / ROUNDS, rate=rate, concurrency=concurrency)
            server.signal(signal.SIGSTOP)
    for server in servers:
        server.signal(signal.SIGCONT)


def throughput(server: Server) -> float:
    """Median over rounds of 200 answers per second in the closed loop."""
    rates = sorted(sum(1 for s in run if s[2] == 200) / (max(s[1] for s in run) - min(
        s[0] for s in run)) for run in server.samples["closed"] if len(run) > 1)
    return rates[len(rates) // 2] if rates else float("nan")


def paced(server: Server) -> tuple[tuple[float, float], int]:
    """(p50, p99) ms of the paced runs' 200 answers (the first 0.2 s of each left out), and
    how many requests failed."""
    ok: list[Sample] = []
    failed = 0
    for run in server.samples["paced"]:
        begin = min(s[0] for s in run)
        ok += [s for s in run if s[2] == 200 and s[0] >= begin + 0.2]
        failed += sum(1 for s in run if s[2] != 200)
    return lat(ok), failed


# -- set-up --------------------------------------------------------------------------------

def lastgood_cli(home: Path, *args: str) -> None:
    env = lastgood_env(home)
    done = subprocess.run([sys.executable, "-m", "lastgood", *args], env=env, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=300,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"lastgood {' '.join(args[:2])}: {done.stderr.strip()[-600:]}")


def lastgood_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASTGOOD_")}
    return env | {"LASTGOOD_HOME": str(home), "LASTGOOD_ACTOR": "bench", "NO_COLOR": "1"}


def served_by_lastgood(entry: Any, home: Path, name: str, record: dict[str, Any], *,
                       label: str, flavor: tuple[str, ...] = ()) -> Server:
    """`lastgood serve` of version 1 of `name` (the entry's directory registered under that
    name, with `--flavor` when given), deployed to an env of its own."""
    env_name = f"bench-{name}"
    pickle = ["--allow-pickle"] if entry.allow_pickle else []
    lastgood_cli(home, "register", name, str(entry.dirs[0]), *pickle, *flavor)
    lastgood_cli(home, "env", "set", env_name)
    lastgood_cli(home, "deploy", name, "1", "--env", env_name, "--reason", "bench")
    port = free_port()
    return Server(label, [sys.executable, "-m", "lastgood", "serve", "--env", env_name,
                          "--port", str(port)], lastgood_env(home),
                  f"/v1/models/{name}/predict", json.dumps({"records": [record]}).encode(), port)


def mlflow_body(entry: Any, record: dict[str, Any]) -> dict[str, Any]:
    """One record as `mlflow models serve` reads it: dataframe_records, one tensor, or named
    tensors (a graph of several inputs)."""
    if hasattr(entry.sample, "columns"):
        return {"dataframe_records": [record]}
    if len(record) > 1:
        return {"inputs": {name: [value] for name, value in record.items()}}
    return {"inputs": [next(iter(record.values()))]}


def contestants(entry: Any, home: Path, mlserver: Path | None, *, twin: bool) -> list[Server]:
    """lastgood (the version registered and deployed to its own env), mlflow, MLServer (when
    its binary is given) and, with `twin`, lastgood serving the same directory through
    mlflow.pyfunc (registered again with --flavor python_function) when it serves it natively."""
    record = entry.records()[0]
    ours = served_by_lastgood(entry, home, entry.name, record, label="lastgood")
    port = free_port()
    bin_dir = Path(sys.executable).parent  # mlflow execs `uvicorn` from PATH: an active venv
    path_env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    theirs = Server("mlflow", [str(bin_dir / "mlflow"), "models", "serve", "-m",
                               str(entry.dirs[0]), "--env-manager", "local", "--host", HOST,
                               "--port", str(port)],
                    path_env, "/invocations", json.dumps(mlflow_body(entry, record)).encode(),
                    port)
    servers = [ours, theirs]
    if mlserver is not None:
        servers.append(mlserver_server(entry, home, mlserver, record))
    if twin and entry.flavor != PYFUNC:
        servers.append(served_by_lastgood(entry, home, f"{entry.name}-pyfunc", record,
                                          label=TWIN, flavor=("--flavor", PYFUNC)))
    return servers


TWIN = "lastgood via pyfunc"


def mlserver_server(entry: Any, home: Path, binary: Path, record: dict[str, Any]) -> Server:
    """MLServer's MLflow runtime on the directory, one process (parallel_workers 0)."""
    root = home / f"mlserver-{entry.name}"
    (root / entry.name).mkdir(parents=True, exist_ok=True)
    port = free_port()
    settings = {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port(),
                "parallel_workers": 0, "debug": False}
    (root / "settings.json").write_text(json.dumps(settings))
    (root / entry.name / "model-settings.json").write_text(json.dumps({
        "name": entry.name, "implementation": "mlserver_mlflow.MLflowRuntime",
        "parameters": {"uri": str(entry.dirs[0])}}))
    env = dict(os.environ, PATH=f"{binary.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return Server("mlserver", [str(binary), "start", str(root)], env,
                  f"/v2/models/{entry.name}/infer", json.dumps(oip_body(entry, record)).encode(),
                  port)


OIP_TYPES = {bool: "BOOL", int: "INT64", float: "FP64", str: "BYTES"}


def oip_body(entry: Any, record: dict[str, Any]) -> dict[str, Any]:
    """One record as MLServer's MLflow runtime reads it: a tensor per column (pd), or the one
    tensor of a tensor model (np)."""
    if hasattr(entry.sample, "columns"):
        inputs = [{"name": k, "shape": [1], "datatype": OIP_TYPES[type(v)], "data": [v]}
                  for k, v in record.items()]
        return {"parameters": {"content_type": "pd"}, "inputs": inputs}
    samples = entry.sample if isinstance(entry.sample, dict) else {"": entry.sample}
    dtypes = ["FP32" if str(getattr(s, "dtype", "")) == "float32" else "FP64"
              for s in samples.values()]
    return {"inputs": [{"name": name, "shape": [1, len(row)], "datatype": dtype, "data": row,
                        "parameters": {"content_type": "np"}}
                       for (name, row), dtype in zip(record.items(), dtypes, strict=True)]}


@dataclass
class Outcome:
    name: str
    flavor: str  # the path lastgood serves it by (python_function: through mlflow.pyfunc)
    same_answer: bool
    servers: tuple[str, ...]  # lastgood, mlflow[, mlserver][, lastgood via pyfunc]
    start: tuple[float, ...]
    tput: tuple[float, ...]
    latency: tuple[tuple[float, float], ...]
    failed: tuple[int, ...]
    rate: float

    def of(self, label: str) -> int | None:
        """The index of server `label`, None when it was not measured."""
        return self.servers.index(label) if label in self.servers else None


def bench_one(entry: Any, home: Path, *, seconds: float, rate: float, concurrency: int,
              mlserver: Path | None, twin: bool) -> Outcome:
    took = time.monotonic()
    servers = contestants(entry, home, mlserver, twin=twin)
    note(f"  registered and deployed in {time.monotonic() - took:.0f} s")
    try:
        for server in list(servers):  # one at a time: each on an otherwise idle machine
            try:
                server.start()
            except RuntimeError as exc:
                if server.label not in ("mlserver", TWIN):  # the optional columns
                    raise
                print(f"{entry.name}: {server.label} cannot serve it, measured without it "
                      f"({exc})", flush=True)
                server.stop()
                servers.remove(server)
        note("  started: " + ", ".join(f"{s.label} {s.start_s:.1f} s" for s in servers))
        answers = [first_prediction(answer(s.port, s.path, s.body)[1]) for s in servers]
        in_turns(servers, seconds, rate=None, concurrency=concurrency)
        tputs = tuple(throughput(s) for s in servers)
        steady = rate or max(1.0, 0.5 * min(tputs))
        in_turns(servers, seconds, rate=steady, concurrency=concurrency)
        measured = [paced(s) for s in servers]
    finally:
        for server in servers:
            server.stop()
    return Outcome(entry.name, entry.flavor, all(same(answers[0], a) for a in answers[1:]),
                   tuple(s.label for s in servers), tuple(s.start_s for s in servers), tputs,
                   tuple(m[0] for m in measured), tuple(m[1] for m in measured), steady)


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def same(a: Any, b: Any) -> bool:
    """Equal within 1e-5 relative, element by element (an OIP tensor's data comes flat)."""
    a, b = flat(a), flat(b)
    if len(a) != len(b):
        return False
    try:
        return all(abs(float(x) - float(y)) <= 1e-5 * max(1.0, abs(float(y)))
                   for x, y in zip(a, b, strict=True))
    except (TypeError, ValueError):
        return a == b


def flat(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [v for item in value for v in flat(item)]
    return [value]


# -- the table -------------------------------------------------------------------------------

def fmt(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


def table(outcomes: Sequence[Outcome]) -> None:
    rows = []
    for o in outcomes:
        path = "mlflow.pyfunc" if o.flavor == PYFUNC else f"native {o.flavor}"
        for i, who in enumerate(o.servers):
            rows.append((o.name, path if i == 0 else "", who, fmt(o.start[i], 2),
                         fmt(o.tput[i], 0),
                         f"{fmt(o.latency[i][0], 2)}/{fmt(o.latency[i][1], 2)}",
                         o.failed[i], fmt(o.rate, 0), "yes" if o.same_answer else "NO"))
    print_table("serving MLflow models: lastgood vs mlflow models serve (and MLServer), "
                "1 worker each",
                ("model", "lastgood path", "server", "start->first 200 s", "max req/s",
                 "p50/p99 ms at rate", "failed", "rate req/s", "same answer"), rows)


def native_table(outcomes: Sequence[Outcome]) -> None:
    """What the native path buys: the same directory served natively and through pyfunc."""
    rows = []
    for o in outcomes:
        twin = o.of(TWIN)
        if twin is None:
            continue
        rows.append((o.name, f"native {o.flavor}", fmt(o.tput[0], 0), fmt(o.tput[twin], 0),
                     f"{fmt(o.tput[0] / o.tput[twin], 2)}x" if o.tput[twin] else "-",
                     f"{fmt(o.latency[0][1], 2)} / {fmt(o.latency[twin][1], 2)}",
                     f"{fmt(o.tput[twin] / o.tput[1], 2)}x" if o.tput[1] else "-"))
    if rows:
        print_table("the native path against the pyfunc path (same directory, same run)",
                    ("model", "native path", "native req/s", "pyfunc req/s", "native buys",
                     "p99 ms native / pyfunc", "pyfunc vs mlflow"), rows)


def verdicts(outcomes: Sequence[Outcome]) -> list[str]:
    lines = []
    for o in outcomes:
        ratio = o.tput[0] / o.tput[1] if o.tput[1] else float("nan")
        checks = [
            ("throughput >= 2x mlflow", ratio >= 2.0, f"{fmt(ratio, 2)}x"),
            ("p99 <= mlflow", o.latency[0][1] <= o.latency[1][1],
             f"{fmt(o.latency[0][1], 2)} vs {fmt(o.latency[1][1], 2)} ms"),
            ("start -> first answer <= mlflow", o.start[0] <= o.start[1],
             f"{fmt(o.start[0], 2)} vs {fmt(o.start[1], 2)} s"),
            ("same answer, no failed request", o.same_answer and not any(o.failed),
             "failed " + "/".join(str(f) for f in o.failed)),
        ]
        ms = o.of("mlserver")
        if ms is not None:
            vs = o.tput[0] / o.tput[ms] if o.tput[ms] else float("nan")
            checks += [("throughput >= 1.5x mlserver", vs >= 1.5, f"{fmt(vs, 2)}x"),
                       ("p99 <= mlserver", o.latency[0][1] <= o.latency[ms][1],
                        f"{fmt(o.latency[0][1], 2)} vs {fmt(o.latency[ms][1], 2)} ms")]
        lines += [f"{'PASS' if ok else 'FAIL'}  {o.name} ({o.flavor}): {label}  ({seen})"
                  for label, ok, seen in checks]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="seconds of load per server and phase (closed loop, then paced)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="paced load, req/s (0: half the slower server's maximum)")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS),
                        help="zoo entries to measure (tests/mlflow_zoo.py)")
    parser.add_argument("--mlserver", type=Path, default=None,
                        help="the mlserver binary of a venv with mlserver and mlserver-mlflow "
                             "(kept apart from lastgood's): adds MLServer as a third server")
    parser.add_argument("--no-pyfunc-twin", dest="twin", action="store_false",
                        help="leave out lastgood serving each natively served directory through "
                             "mlflow.pyfunc as well (what the native path buys)")
    args = parser.parse_args(argv)
    if args.mlserver is None or not args.mlserver.is_file():
        print(f"MLServer column left out: {args.mlserver or 'no --mlserver'} is not an mlserver "
              "binary (pip install mlserver mlserver-mlflow in a separate venv, then pass "
              "--mlserver VENV/bin/mlserver)", flush=True)
        args.mlserver = None
    from tests.mlflow_zoo import build_zoo

    began = time.monotonic()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-flavors-") as tmp:
        note("saving the models with mlflow ...")
        zoo = build_zoo(Path(tmp) / "zoo", args.models.split(","))
        for entry in zoo:
            note(f"measuring {entry.name} ({entry.flavor}) ...")
            try:
                outcomes.append(bench_one(entry, Path(tmp) / "home", seconds=args.seconds,
                                          rate=args.rate, concurrency=args.concurrency,
                                          mlserver=args.mlserver, twin=args.twin))
            except RuntimeError as exc:
                print(f"FAIL  {entry.name} ({entry.flavor}): not measured: {exc}", flush=True)
    print(f"\n{len(outcomes)} models, {args.concurrency} keep-alive connections, one record per "
          f"request, loopback, {multiprocessing.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}, total {time.monotonic() - began:.0f} s")
    table(outcomes)
    native_table(outcomes)
    print("\ntargets:")
    lines = verdicts(outcomes)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
