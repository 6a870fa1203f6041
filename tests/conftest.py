"""Shared fixtures: a private PostgreSQL database per test session, and a private LASTGOOD_HOME.

PostgreSQL legs run against the real server (LASTGOOD_TEST_PG_URL, default the local one). When
the server cannot be reached they are skipped with the reason, except under CI (CI=true), where a
missing server is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get(
    "LASTGOOD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _admin_dsn() -> str:
    return PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of a reachable PostgreSQL server."""
    import psycopg

    try:
        with psycopg.connect(_admin_dsn(), connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL unreachable at {PG_ADMIN_URL} under CI: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL} (set LASTGOOD_TEST_PG_URL): {exc}")
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"lg_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private LASTGOOD_HOME with no registry, store or remote settings leaking in."""
    for key in list(os.environ):
        if key.startswith("LASTGOOD_") and key != "LASTGOOD_TEST_PG_URL":
            monkeypatch.delenv(key)
    path = tmp_path / "lastgood-home"
    monkeypatch.setenv("LASTGOOD_HOME", str(path))
    monkeypatch.setenv("LASTGOOD_ACTOR", "tester")
    return path


# -- pytest-xdist: the suite runs on several workers (addopts: -n auto --dist loadfile) -----------

def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """One worker per CPU: the e2e tests' servers and child processes need the CPU they wait on
    (two per CPU let a loaded worker's smoke child miss the per-test timeout).
    PYTEST_XDIST_AUTO_NUM_WORKERS sets another number; `-n 0` runs the suite in one process."""
    wanted = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    if wanted:
        return int(wanted)
    return len(os.sched_getaffinity(0))
