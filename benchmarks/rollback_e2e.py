"""The rollback a user types, end to end, under steady load (loopback only, a few minutes).

    .venv/bin/python benchmarks/rollback_e2e.py [--rounds 5] [--rate 300]
                                                [--backends sqlite,postgresql]
                                                [--replicas 1,4]
                                                [--no-mlflow] [--modes fresh,none]
                                                [--base main]

Before and after a change, in one run: with `--base REF` each backend and count of replicas is
first measured on the src of git REF (exported to a temporary folder and put first on
PYTHONPATH, so the setup, the commands and the replicas run REF's lastgood; same interpreter,
packages and benchmark code, in a process of its own), then on this tree, and the table shows
each scenario's two rows one under the other.

What is timed: the real `lastgood rollback iris --env bench --reason ... --yes --json` command,
exec'd as a subprocess, against real `lastgood serve --env bench` subprocesses (one, or four
on four ports: --replicas) answering a steady RATE req/s in all (8 keep-alive connections from
a separate process, spread evenly over the replicas and taking turns, so a request leaves every
1/RATE s and each replica gets one every REPLICAS/RATE s: the resolution of the times below).
Each round first makes a new, bad version live (a setup write, not timed), waits until every
replica serves it and holds the verified v1 warm as its standby, then execs the rollback. Times
run from the exec to the first answer of the target and to "100 % target": the last answer of
the old version from any replica, or the first of the target when that came later, so with
several replicas 100 % means every replica answers with the target. They are broken into
phases from the operation's own audit events:

  start+plan   exec -> `operation.planned` (interpreter, imports, registry open, the plan)
  checks       planned -> `operation.checked` (every preflight check of the chosen target)
  commit       checked -> `deployment.switched` (the pointer move and its event)
  switch       switched -> the first answer of the target from the replica
  100%         switched -> 100 % target (the fast-switch target: commit -> 100 % of traffic
               on the target). `deployment.switched` is stamped inside the pointer's
               transaction before its last statements and the commit, so this over-states
               commit -> 100 % by the rest of that transaction
  confirm      switched -> `switch.confirmed` (the replica's report read back)
  exit         exec -> the command's exit (archive and verification included)
  CPU          user + system CPU time of the command process (and its children: the smoke
               test's interpreter), which a shared machine's other tenants disturb much less
               than the wall times

Modes: "fresh evidence" (the replica's readiness proof of v1 is fresh: the smoke check passes
on it) and "no evidence" (LASTGOOD_READINESS_EVIDENCE=off for the command: the smoke test loads
v1 in a fresh interpreter, as before issue 12), each on SQLite (the committing command wakes
the replicas with a datagram each; their 10 ms poll is the fallback) and on PostgreSQL
(LISTEN/NOTIFY), with each count of replicas.
Beside them, in the same run: `mlflow models serve` on the bad model, killed and started on the
good one under the same load (what a user without lastgood would do); its times run from the
kill, "target" is any answer to a request sent after the old process exited. Nothing here
asserts: it prints a table, the targets and PASS/MISS. The machine is shared: read the numbers
with `uptime` in mind. The commands cache their bytecode, as an installed lastgood does (an
inherited PYTHONDONTWRITEBYTECODE is dropped). The fast-switch targets are p99 over the
rounds, which with 5 rounds is the worst round.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import command_env, registry_url, run_on_base
from benchmarks.switch_under_load import (
    BODY,
    COLUMNS,
    HOST,
    Result,
    Sample,
    fails,
    free_port,
    load_main,
    pct,
    train,
)

MODEL, ENV = "iris", "bench"
LASTGOOD = [sys.executable, "-m", "lastgood"]
PHASES = ("start+plan", "checks", "commit", "switch", "100%", "confirm", "exit", "CPU")
SWITCH_P99_S = {("sqlite", 1): 0.010, ("postgresql", 4): 0.050}
"""Commit -> 100 % target, p99: one replica on SQLite; four replicas on PostgreSQL NOTIFY."""
MLFLOW_BODY = json.dumps({"dataframe_records": json.loads(BODY)["records"]}).encode()


# -- setup (not timed) -----------------------------------------------------------------------

def lastgood_env(home: Path, url: str, **extra: str) -> dict[str, str]:
    return command_env() | {"LASTGOOD_HOME": str(home), "LASTGOOD_DB_URL": url,
                  "LASTGOOD_STORE_URL": str(home / "artifacts"), "LASTGOOD_ACTOR": "bench",
                  "LASTGOOD_SMOKE_TEST": "on", **extra}


@dataclass
class BenchRegistry:
    """A registry with v1 (good, verified) and `bad` copies of the other model to roll from."""

    home: Path
    url: str
    paths: dict[int, Path]
    services: Any = None
    next_bad: int = 2

    def open(self, rounds: int) -> None:
        from lastgood.bootstrap import open_services
        from lastgood.config import load_settings
        from lastgood.domain.versions import Column, Schema
        from lastgood.services.registry import ORIGIN, RegisterRequest

        # The setup's own deploys skip the smoke test; the timed commands run it. Each bad
        # release is the same model under another origin (identical content is otherwise one
        # version).
        self.services = open_services(load_settings(lastgood_env(
            self.home, self.url, LASTGOOD_SMOKE_TEST="off")))
        schema = Schema(inputs=tuple(Column(c, "float64") for c in COLUMNS))
        for n in range(rounds + 1):
            path = self.paths[1 if n == 0 else 2]
            self.services.registry.register(RegisterRequest(
                model=MODEL, path=path, flavor="sklearn", golden=golden(path), tag=f"r{n}",
                schema=schema, provenance={ORIGIN: f"bench round {n}"}), actor="bench")
        self.services.deployments.deploy(MODEL, 1, env=ENV, reason="good", actor="bench")
        self.services.deployments.verify(MODEL, env=ENV, baseline={"error_rate": 0.0},
                                         reason="baked", actor="bench")

    def make_bad_live(self) -> int:
        number, self.next_bad = self.next_bad, self.next_bad + 1
        self.services.deployments.deploy(MODEL, number, env=ENV, reason="bad release",
                                         actor="bench", force=True)
        return number

    def wait_ready(self, live: int, *, fresh: bool, replicas: int,
                   timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            st = self.services.deployments.status(MODEL, env=ENV)
            serving = [r for r in st.replicas if r.version == live and r.state == "serving"]
            holds = len(serving) >= replicas and all(_holds(r.evidence, 1) for r in serving)
            if holds and (not fresh or (st.readiness and st.readiness.ready)):
                return
            time.sleep(0.1)
        raise SystemExit(f"the replicas never all served v{live} with v1 warm and proven")

    def phases(self, op_id: str) -> dict[str, float]:
        """Wall-clock times (epoch s) of the operation's events by action."""
        with self.services.ports.uow() as uow:
            events = [e for e in uow.events.list(model=MODEL, env=ENV)
                      if e.draft.subject == op_id or e.draft.evidence.get("operation") == op_id]
        return {e.action: e.at.timestamp() for e in events}


def _holds(evidence: Any, version: int) -> bool:
    return bool(evidence) and any(p["version"] == version for p in evidence.get("standbys", ()))


def golden(path: Path) -> tuple[Any, ...]:
    import skops.io as sio
    from sklearn.datasets import load_iris

    from lastgood.domain.versions import GoldenExample

    est = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    x, _ = load_iris(return_X_y=True)
    return tuple(GoldenExample(inputs=dict(zip(COLUMNS, map(float, row), strict=True)),
                               expected=int(est.predict([row])[0])) for row in x[::30])


# -- load and one timed command ---------------------------------------------------------------

def drive(ports: Sequence[int], path: str, duration_s: float, rate: float, at_s: float,
          action: Callable[[], tuple[float, dict[str, Any]]]) -> tuple[Result, dict[str, Any]]:
    """Steady load over `ports` for `duration_s`; at `at_s` run `action` (returns its start
    and facts)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    loader = ctx.Process(target=load_main, args=(list(ports), path, duration_s, rate, child))
    loader.start()
    start: float = parent.recv()
    time.sleep(max(0.0, start + at_s - time.monotonic()))
    began, facts = action()
    samples: list[Sample] = parent.recv()
    loader.join()
    return Result(samples, [(began, facts.get("target", ""))], start, start + duration_s), facts


def exec_rollback(world: BenchRegistry, *, evidence: bool) -> tuple[float, dict[str, Any]]:
    env = lastgood_env(world.home, world.url,
                       LASTGOOD_READINESS_EVIDENCE="on" if evidence else "off")
    offset = time.time() - time.monotonic()  # events carry wall time, the samples monotonic
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    done = subprocess.run([*LASTGOOD, "rollback", MODEL, "--env", ENV, "--reason",
                           "bench: bad release", "--yes", "--json"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    ended = time.monotonic()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"lastgood rollback failed: {done.stderr.strip()}")
    op = json.loads(done.stdout)
    smoke = next(c for cand in op["candidates"] if cand["version"] == op["target_version"]
                 for c in cand["checks"] if c["name"] == "smoke")
    return began, {"target": str(op["target_version"]), "op": op["id"], "offset": offset,
                   "exit": ended - began, "smoke": smoke["summary"],
                   "cpu": (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)}


def rollback_round(world: BenchRegistry, ports: Sequence[int], *, evidence: bool,
                   rate: float) -> dict[str, Any]:
    live = world.make_bad_live()
    world.wait_ready(live, fresh=evidence, replicas=len(ports))
    result, facts = drive(ports, f"/v1/models/{MODEL}/predict", 9.0 if evidence else 30.0,
                          rate, 1.5, lambda: exec_rollback(world, evidence=evidence))
    [(first, full)] = result.reach()
    began = result.commands[0][0]
    events = {k: v - facts["offset"] - began for k, v in world.phases(facts["op"]).items()}
    planned, checked = events["operation.planned"], events["operation.checked"]
    switched = events["deployment.switched"]
    return {"first": first, "full": full, "failed": fails([s for s in result.samples
                                                           if s[0] >= began]),
            "phases": {"start+plan": planned, "checks": checked - planned,
                       "commit": switched - checked, "switch": first - switched,
                       "100%": full - switched,
                       "confirm": events["switch.confirmed"] - switched,
                       "exit": facts["exit"], "CPU": facts["cpu"]},
            "smoke": facts["smoke"]}


def serve_lastgood(world: BenchRegistry, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*LASTGOOD, "serve", "--env", ENV, "--port", str(port),
                             "--readiness-interval", "5"],
                            env=lastgood_env(world.home, world.url),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def lastgood_runs(kind: str, paths: dict[int, Path], *, rounds: int, rate: float,
                  replicas: int = 1, modes: Sequence[str] = ("fresh", "none"),
                  ) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    with registry_url(kind) as (url, folder):
        world = BenchRegistry(folder / "home", url, paths)
        world.open(rounds * len(modes))
        ports = [free_port() for _ in range(replicas)]
        servers = [serve_lastgood(world, port) for port in ports]
        try:
            for i in range(rounds * len(modes)):
                mode = modes[i % len(modes)]
                print(f"  {kind} x{replicas} round {i + 1}/{rounds * len(modes)} "
                      f"({mode} evidence)", file=sys.stderr, flush=True)
                found[mode].append(rollback_round(world, ports, evidence=mode == "fresh",
                                                  rate=rate))
        finally:
            for server in servers:
                stop(server)
            world.services.ports.uow.dispose()
    return found


# -- mlflow models serve, restarted ----------------------------------------------------------

def mlflow_models(work: Path, paths: dict[int, Path]) -> dict[int, Path]:
    import mlflow.sklearn
    import skops.io as sio

    out = {}
    for number, path in paths.items():
        out[number] = work / f"mlflow-{number}"
        mlflow.sklearn.save_model(sio.load(path, trusted=sio.get_untrusted_types(file=path)),
                                  str(out[number]),
                                  skops_trusted_types=["sklearn.tree._tree.Tree"])
    return out


def mlflow_serve(model_dir: Path, port: int) -> subprocess.Popen[bytes]:
    bin_dir = Path(sys.executable).parent  # mlflow execs `uvicorn` from PATH
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.Popen([str(bin_dir / "mlflow"), "models", "serve", "-m", str(model_dir),
                             "--env-manager", "local", "-h", HOST, "-p", str(port), "-w", "1"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def wait_http(url: str, timeout_s: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} never answered")


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, 15)  # mlflow runs uvicorn/gunicorn children in its own session
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def mlflow_load(port: int, duration_s: float, rate: float, conn: Any) -> None:
    import benchmarks.switch_under_load as sul

    sul.BODY = MLFLOW_BODY  # the load process's own copy: the MLflow scoring body
    sul.load_main(port, "/invocations", duration_s, rate, conn)


def mlflow_round(models: dict[int, Path], rate: float) -> dict[str, Any]:
    port = free_port()
    current = [mlflow_serve(models[2], port)]
    wait_http(f"http://{HOST}:{port}/ping")
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    loader = ctx.Process(target=mlflow_load, args=(port, 40.0, rate, child))
    loader.start()
    start: float = parent.recv()
    time.sleep(max(0.0, start + 1.5 - time.monotonic()))
    began = time.monotonic()
    kill_group(current[0])
    gone = time.monotonic()  # from here on no answer can come from the old version
    current[0] = mlflow_serve(models[1], port)
    samples: list[Sample] = parent.recv()
    loader.join()
    kill_group(current[0])
    after = [s for s in samples if s[0] >= began]
    ok = sorted(s[1] - began for s in after if s[2] == 200 and s[0] >= gone)
    first = ok[0] if ok else float("nan")
    return {"first": first, "full": first, "failed": fails(after), "phases": {}, "smoke": ""}


# -- the table -------------------------------------------------------------------------------

def ms(value: float) -> str:
    return "-" if value != value else f"{value * 1000:.0f}"


def summary_row(label: str, runs: Sequence[dict[str, Any]]) -> str:
    first = [r["first"] for r in runs]
    full = [r["full"] for r in runs]
    phases = " | ".join(ms(pct([r["phases"][p] for r in runs if p in r["phases"]], .5))
                        for p in PHASES)
    return (f"| {label} | {len(runs)} | {sum(r['failed'] for r in runs)} | "
            f"{ms(pct(first, .5))}/{ms(pct(first, .95))} | {ms(pct(full, .5))}/"
            f"{ms(pct(full, .95))} | {phases} |")


def scenario(key: str) -> tuple[str, int, str]:
    """(backend, replicas, mode) of a results key "sqlite x1, fresh"; mlflow: ("", 0, "")."""
    head, _, mode = key.partition(", ")
    kind, _, count = head.partition(" x")
    return (kind, int(count), mode) if count else ("", 0, "")


def verdicts(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = []
    for key, runs in results.items():
        if scenario(key)[2] != "fresh":
            continue
        p95 = pct([r["full"] for r in runs], .95)
        failed = sum(r["failed"] for r in runs)
        lines.append(f"{'PASS' if p95 <= 0.5 else 'MISS'}  {key}: exec -> 100 % target p95 "
                     f"<= 500 ms ({ms(p95)} ms)")
        lines.append(f"{'PASS' if failed == 0 else 'MISS'}  {key}: 0 failed requests ({failed})")
    for key, runs in results.items():
        kind, replicas, _ = scenario(key)
        limit = SWITCH_P99_S.get((kind, replicas))
        if limit is None:
            continue
        p99 = pct([r["phases"]["100%"] for r in runs], .99)
        count = "one replica" if replicas == 1 else f"{replicas} replicas"
        lines.append(f"{'PASS' if p99 <= limit else 'MISS'}  {key}: commit -> 100 % target p99 "
                     f"<= {limit * 1000:.0f} ms ({ms(p99)} ms, {count}, {len(runs)} rounds)")
    return lines


@dataclass
class Args:
    rounds: int
    rate: float
    backends: list[str]
    mlflow: bool
    replicas: list[int] = field(default_factory=lambda: [1, 4])
    modes: list[str] = field(default_factory=lambda: ["fresh", "none"])
    labels: dict[str, str] = field(default_factory=dict)
    base: str | None = None
    json_out: Path | None = None


def parse(argv: Sequence[str] | None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rollbacks per mode and backend")
    parser.add_argument("--rate", type=float, default=300.0, help="steady load, requests/s")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--replicas", default="1,4",
                        help="counts of `lastgood serve` processes to measure on each backend")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--modes", default="fresh,none", help="fresh, none, or both")
    parser.add_argument("--base", help="a git ref to measure too, side by side (e.g. main)")
    parser.add_argument("--json-out", type=Path, help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    modes = [m for m in ns.modes.split(",") if m in ("fresh", "none")] or ["fresh", "none"]
    try:
        replicas = [int(n) for n in ns.replicas.split(",") if n]
    except ValueError:
        parser.error(f"--replicas takes counts such as 1,4, not {ns.replicas!r}")
    if not replicas or min(replicas) < 1:
        parser.error(f"--replicas takes counts of at least 1 such as 1,4, not {ns.replicas!r}")
    backends = [b for b in ns.backends.split(",") if b]
    unknown = sorted(set(backends) - {"sqlite", "postgresql"})
    if unknown:
        parser.error(f"unknown backend {unknown[0]!r}: use --backends sqlite,postgresql")
    return Args(ns.rounds, ns.rate, backends, not ns.no_mlflow, replicas=replicas, modes=modes,
                base=ns.base, json_out=ns.json_out)


Runs = dict[str, list[dict[str, Any]]]


def measure(args: Args, base: Callable[[str, int], Runs] | None = None,
            ) -> tuple[Runs, dict[str, str], Runs]:
    """(results per scenario, what the smoke check said last, `base`'s results) on the
    lastgood imported here; each backend and count of replicas is measured on `base` (another
    tree) right before it is measured here, so both see the same minute's background load."""
    results: Runs = {}
    before: Runs = {}
    smoke_seen: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="lastgood-rollback-e2e-") as tmp:
        paths = train(Path(tmp))
        for kind in args.backends:
            for replicas in args.replicas:
                if base is not None:
                    before.update(base(kind, replicas))
                print(f"lastgood on {kind}, {replicas} replica(s) ...", file=sys.stderr,
                      flush=True)
                found = lastgood_runs(kind, paths, rounds=args.rounds, rate=args.rate,
                                      replicas=replicas, modes=args.modes)
                for mode, runs in found.items():
                    key = f"{kind} x{replicas}, {mode}"
                    results[key] = runs
                    smoke_seen[key] = runs[-1]["smoke"] if runs else ""
                    print(f"  {key}: " + summary_row(mode, runs), file=sys.stderr, flush=True)
                    print(f"  {key}: commit -> 100 % per round (ms): " + ", ".join(
                        ms(r["phases"]["100%"]) for r in runs), file=sys.stderr, flush=True)
        if args.mlflow:
            print("mlflow models serve, restarted ...", file=sys.stderr, flush=True)
            try:
                models = mlflow_models(Path(tmp), paths)
                results["mlflow restart"] = [mlflow_round(models, args.rate) for _ in range(2)]
            except Exception as exc:  # the lastgood rows still print
                print(f"  mlflow models serve could not be measured: {exc}", file=sys.stderr)
    return results, smoke_seen, before


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    began = time.monotonic()
    if args.json_out is not None:  # one scenario of the --base run on another tree
        found, _, _ = measure(args)
        args.json_out.write_text(json.dumps(found), encoding="utf-8")
        return
    base = None
    if args.base:
        def base(kind: str, replicas: int) -> Runs:
            print(f"[{args.base}] ...", file=sys.stderr, flush=True)
            found: Runs = run_on_base(args.base, Path(__file__).resolve(), [
                "--rounds", str(args.rounds), "--rate", str(args.rate), "--backends", kind,
                "--replicas", str(replicas), "--modes", ",".join(args.modes),
                "--no-mlflow"])  # the restarted mlflow row runs no lastgood: measured once
            return found

    results, smoke_seen, before = measure(args, base=base)
    labels = {"fresh": "lastgood rollback --yes, fresh readiness evidence",
              "none": "lastgood rollback --yes, no evidence (smoke test in a fresh process)"}
    print(f"\nrollback end to end: steady {args.rate:g} req/s, loopback, "
          f"{multiprocessing.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, total "
          f"{time.monotonic() - began:.0f} s. Times in ms from the exec of the command (mlflow: "
          "from the kill of the old server), p50/p95 over the rounds; phases are medians. "
          f"A request leaves every {1000 / args.rate:.1f} ms, spread evenly over the replicas."
          + (f" Rows marked [{args.base}] ran the same measurement on git {args.base}'s src "
             "right before this tree's, backend by backend." if before else "") + "\n")
    print("| scenario | rounds | failed requests | exec->first target p50/p95 | "
          "exec->100% target p50/p95 | " + " | ".join(PHASES) + " |")
    print("|---|---|---|---|---|" + "---|" * len(PHASES))
    for key, runs in results.items():
        kind, replicas, mode = scenario(key)
        where = f"{kind}, {replicas} replica{'s' if replicas > 1 else ''}"
        label = (f"{labels[mode]} ({where})" if mode else
                 "mlflow models serve killed and restarted on v1")
        if key in before:
            print(summary_row(f"{label} [{args.base}]", before[key]))
        print(summary_row(f"{label}{' [this tree]' if key in before else ''}", runs))
    print("\nsmoke check said (last round):")
    for key, text in smoke_seen.items():
        print(f"  {key}: {text}")
    print("\ntargets:")
    print("\n".join(verdicts(results)))


if __name__ == "__main__":
    main()
