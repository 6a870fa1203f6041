"""Shared pieces of the benchmarks: fresh SQLite and PostgreSQL registries, timing, tables."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PG_ADMIN = os.environ.get("LASTGOOD_BENCH_PG_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def registry_url(kind: str) -> Iterator[tuple[str, Path]]:
    """(database URL, scratch folder) for a fresh registry of `kind` (sqlite or postgresql)."""
    with tempfile.TemporaryDirectory(prefix=f"lastgood-bench-{kind}-") as tmp:
        folder = Path(tmp)
        if kind == "sqlite":
            yield f"sqlite:///{folder / 'registry.db'}", folder
            return
        import psycopg

        name = f"lg_bench_{uuid.uuid4().hex[:10]}"
        dsn = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}", folder
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds of each of `repeat` calls."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def p50(values: Sequence[float]) -> float:
    return statistics.median(values)


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    line = "  ".join("{:<" + str(w) + "}" for w in widths)
    print(f"\n{title}")
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*(str(x) for x in row)))


def command_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a timed `lastgood` subprocess: no LASTGOOD_ settings of the caller,
    and bytecode caching on. An installed lastgood has its .pyc files (pip compiles them); a
    PYTHONDONTWRITEBYTECODE inherited from a sandbox would time the compiler instead."""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return {k: v for k, v in env.items() if not k.startswith("LASTGOOD_")}


def export_src(ref: str, into: Path) -> Path:
    """The `src` folder of git `ref` of this repository, written under `into`."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "-C", str(root), "archive", ref, "src"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def with_src(env: dict[str, str], src: Path) -> dict[str, str]:
    """`env` with the lastgood under `src` first on the path (before the installed one)."""
    return env | {"PYTHONPATH": os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH", ""))
                                                if p)}


def run_on_base(ref: str, script: Path, argv: Sequence[str]) -> Any:
    """The results of `script argv` run on the lastgood of git `ref` (its `src` exported to a
    temporary folder and put first on PYTHONPATH; same interpreter, packages and benchmark
    code), read back from the JSON file the script writes with `--json-out`."""
    import json
    import subprocess
    import sys

    with tempfile.TemporaryDirectory(prefix="lastgood-bench-base-") as tmp:
        src = export_src(ref, Path(tmp))
        out = Path(tmp) / "results.json"
        env = with_src(dict(os.environ), src)
        subprocess.run([sys.executable, str(script), *argv, "--json-out", str(out)], env=env,
                       check=True)
        return json.loads(out.read_text(encoding="utf-8"))
