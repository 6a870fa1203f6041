"""How fast the `lastgood` command starts, beside the interpreter's own floor (~20 s).

    .venv/bin/python benchmarks/cli_start.py [--runs 15] [--base main]

Each row is the wall time of a real `lastgood ...` process (exec to exit), run RUNS times in
turns with the others (hyperfine-style: the machine's background load hits every row alike),
p50 and p95. `status` and `rollback --dry-run` run against a real SQLite registry holding one
model with two verified versions (no replica: the smoke check of the dry run is turned off so
the row measures the command, not a model load). The floors on the same machine, in the same
run: `python -c pass`, and `python -c "import sqlalchemy"`: what a command reading the registry
imported before the registry went through the database's own driver (sqlite3 here), so the
commands must now come in under this row. The import breakdown of a command comes from
`python -X importtime -m lastgood ...`; the three biggest top-level imports are listed.
Each row also gives the CPU time (user + system) of the process, which the other tenants of a
shared machine disturb much less than the wall time. The processes cache their bytecode, as an
installed lastgood does (an inherited PYTHONDONTWRITEBYTECODE is dropped).

With `--base REF` the same commands also run on the source tree of git REF (exported to a
temporary folder and put first on PYTHONPATH, same interpreter and packages), in turns with this
tree's, and the table shows both side by side: before and after a change, in the same run.

Targets: --help, --version, status and rollback start in <= 250 ms of wall time.
Nothing here asserts; it prints the table, the targets and PASS/MISS.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import command_env, export_src, with_src

PY = sys.executable
TARGET_MS = 250.0


def environment(home: Path) -> dict[str, str]:
    return command_env() | {"LASTGOOD_HOME": str(home), "LASTGOOD_ACTOR": "bench",
                  "LASTGOOD_SMOKE_TEST": "off"}


def fill(home: Path) -> None:
    """One model, v1 and v2 verified in `bench`, v2 live: something to show and roll back."""
    from benchmarks.switch_under_load import train
    from lastgood.bootstrap import open_services
    from lastgood.config import load_settings
    from lastgood.services.registry import RegisterRequest

    paths = train(home.parent)
    services = open_services(load_settings(environment(home)))
    for number in (1, 2):
        services.registry.register(RegisterRequest(model="iris", path=paths[number],
                                                   flavor="sklearn"), actor="bench")
        services.deployments.deploy("iris", number, env="bench", reason="bench", actor="bench")
        services.deployments.verify("iris", env="bench", baseline={"error_rate": 0.0},
                                    reason="bench", actor="bench")
    services.ports.uow.dispose()  # type: ignore[attr-defined]


COMMANDS: dict[str, list[str]] = {
    "python -c pass (floor)": [PY, "-c", "pass"],
    "python -c 'import sqlalchemy' (the old registry floor)": [PY, "-c", "import sqlalchemy"],
    "lastgood --version": [PY, "-m", "lastgood", "--version"],
    "lastgood --help": [PY, "-m", "lastgood", "--help"],
    "lastgood status iris --env bench": [PY, "-m", "lastgood", "status", "iris", "--env",
                                         "bench"],
    "lastgood rollback --help": [PY, "-m", "lastgood", "rollback", "--help"],
    "lastgood rollback iris --env bench --dry-run": [PY, "-m", "lastgood", "rollback", "iris",
                                                     "--env", "bench", "--dry-run"],
}
TARGETED = ("lastgood --version", "lastgood --help", "lastgood status iris --env bench",
            "lastgood rollback iris --env bench --dry-run")


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one run of `args`, exec to exit."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, timeout=60, check=False)
    took = (time.perf_counter() - began) * 1000
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.decode()[-300:]}")
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime + cpu_after.ru_stime
           - cpu_before.ru_stime) * 1000
    return took, cpu


def trees(env: dict[str, str], base: Path | None) -> dict[str, dict[str, str]]:
    """The environments to run each command in: this tree, and the base tree if given."""
    return {"": env} if base is None else {"": env, "base": with_src(env, base)}


def biggest_imports(args: list[str], env: dict[str, str], n: int = 3) -> str:
    if "lastgood" not in args:
        return ""
    done = subprocess.run([PY, "-X", "importtime", *args[1:]], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    top: list[tuple[int, str]] = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].startswith(" ") and not parts[2].startswith("  "):
            try:
                top.append((int(parts[1]), parts[2].strip()))
            except ValueError:
                continue
    top.sort(reverse=True)
    return ", ".join(f"{name} {us / 1000:.0f}" for us, name in top[:n])


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def cell(values: Sequence[tuple[float, float]]) -> str:
    wall, cpu = [v[0] for v in values], [v[1] for v in values]
    return f"{pct(wall, .5):.0f} / {pct(wall, .95):.0f} | {pct(cpu, .5):.0f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--base", help="a git ref to run side by side (e.g. main)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lastgood-cli-start-") as tmp:
        home = Path(tmp) / "home"
        env = environment(home)
        fill(home)
        runs = trees(env, export_src(args.base, Path(tmp)) if args.base else None)
        for run_env in runs.values():  # warm the page cache and the .pyc files once
            for argv_ in COMMANDS.values():
                timed(argv_, run_env)
        found: dict[tuple[str, str], list[tuple[float, float]]] = {
            (tree, name): [] for tree in runs for name in COMMANDS}
        for _ in range(args.runs):
            for name, argv_ in COMMANDS.items():
                for tree, run_env in runs.items():
                    found[(tree, name)].append(timed(argv_, run_env))
        imports = {name: biggest_imports(argv_, env) for name, argv_ in COMMANDS.items()}
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[0]
    print(f"\nCLI start: wall time exec -> exit, {args.runs} runs each in turns, load average "
          f"{load}, {os.cpu_count()} cores.\n")
    before = f" {args.base}: wall p50 / p95 ms | {args.base}: CPU p50 ms |" if args.base else ""
    print(f"| command |{before} wall p50 / p95 ms | CPU p50 ms | biggest top-level imports "
          "(ms, -X importtime) |")
    print("|---|" + "---|---|" * len(runs) + "---|")
    for name in COMMANDS:
        cells = " | ".join(cell(found[(tree, name)]) for tree in sorted(runs, reverse=True))
        print(f"| {name} | {cells} | {imports[name]} |")
    print(f"\ntargets (wall p50 <= {TARGET_MS:.0f} ms):")
    for name in TARGETED:
        p50 = pct([v[0] for v in found[("", name)]], .5)
        print(f"{'PASS' if p50 <= TARGET_MS else 'MISS'}  {name}: {p50:.0f} ms")


if __name__ == "__main__":
    main()
