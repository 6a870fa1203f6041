"""The DB-API registry and the SQLAlchemy one share a database: each reads what the other wrote.

The general contract runs on both (`conftest.BACKENDS`); these tests hold what is particular to
two adapters over one schema, on SQLite and PostgreSQL: stored forms, column kinds, errors,
locks, concurrency across processes.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Boolean

from lastgood.adapters.dbapi import DbRegistry, open_dbapi_registry
from lastgood.adapters.dbapi.connection import BOOLS, JSONS, TIMES, DbTx
from lastgood.adapters.registry_rules import SCHEMA_REVISION
from lastgood.adapters.sql import SqlRegistry, open_registry
from lastgood.adapters.sql.tables import metadata
from lastgood.adapters.sql.types import Json, UtcDateTime
from lastgood.bootstrap.services import open_registry as open_any_registry
from lastgood.domain.access import ApiToken, Role, SigningKey
from lastgood.domain.archives import ArchiveRecord
from lastgood.domain.audit import EventDraft, verify_chain
from lastgood.domain.deployments import DeploymentEnd, ReplicaReport
from lastgood.domain.errors import AlreadyExists, TransientError
from lastgood.domain.operations import Phase
from lastgood.ports import UnitOfWork
from lastgood.testing import (
    EPOCH,
    make_environment,
    make_new_version,
    make_operation,
    make_verified_record,
)
from tests.contract.registry_workers import register_once

LATER = EPOCH + timedelta(seconds=90, microseconds=123456)


DATABASES = [pytest.param("sqlite_url", id="sqlite"),
             pytest.param("pg_url", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def url(request: pytest.FixtureRequest) -> str:
    """A fresh database of each kind."""
    return str(request.getfixturevalue(request.param))


@pytest.fixture
def pair(url: str) -> Iterator[tuple[SqlRegistry, DbRegistry]]:
    """The same database opened by both adapters."""
    sql = open_registry(url)
    lite = open_dbapi_registry(url)
    assert lite is not None
    try:
        yield sql, lite
    finally:
        sql.dispose()
        lite.dispose()


def fill(uow: UnitOfWork) -> None:
    """One of every record, with the values that are easy to store wrongly: times with
    microseconds, None, booleans, nested and non-ASCII JSON, a float that must stay exact."""
    uow.environments.put(make_environment("production", require_signature=True,
                                            trusted_keys=("k1",), switch_timeout_s=12.5))
    version = uow.versions.add(make_new_version("fraud", tag="v-ß", unsafe_format=True,
                                                metrics={"accuracy": 0.1 + 0.2}),
                               at=LATER, actor="ana")
    live = uow.deployments.start(model="fraud", env="production", version=version.number,
                                 at=LATER, actor="ana", reason="first", operation_id=None)
    uow.deployments.set_verified(live.id, make_verified_record(at=LATER))
    uow.deployments.end(live.id, at=LATER + timedelta(seconds=1), end=DeploymentEnd.ROLLED_BACK,
                        reason="broke")
    uow.events.append(EventDraft(action="deploy", actor="ana", model="fraud", env="production",
                                 evidence={"nested": {"x": [1, 2.5, None]}, "ü": True}),
                      at=LATER)
    uow.operations.save(make_operation("op-7", phase=Phase.CHECKING, at=LATER, forced=True,
                                       trigger={"by": "watch"}))
    uow.leases.acquire("fraud/production", holder="op-7", now=LATER, ttl_s=30)
    uow.archives.add(ArchiveRecord(id="ar-1", model="fraud", env="production", version=1,
                                   operation_id="op-7", sha256="ab" * 32, size=12,
                                   created_at=LATER, manifest={"files": ["a"]}))
    uow.replicas.report(ReplicaReport(replica_id="r1", model="fraud", env="production",
                                      version=1, since=EPOCH, seen_at=LATER,
                                      url="http://127.0.0.1:9000", evidence={"v": 1}))
    uow.tokens.add(ApiToken(id="t1", owner="ana", role=Role.parse("operator"),
                            token_hash="cd" * 32, created_at=LATER, created_by="root",
                            expires_at=LATER + timedelta(days=1)))
    uow.keys.add(SigningKey(name="k1", public_key="cHVi", fingerprint="ef" * 8,
                            created_at=LATER, created_by="ana"))
    uow.commit()


def everything(uow: UnitOfWork) -> dict[str, Any]:
    return {
        "models": uow.models.list(), "versions": uow.versions.list("fraud"),
        "envs": uow.environments.list(), "history": uow.deployments.history("fraud", "production"),
        "generation": uow.deployments.generation("production"),
        "events": uow.events.list(), "head": uow.events.head(),
        "ops": uow.operations.list(), "unfinished": uow.operations.unfinished(),
        "archives": uow.archives.list(), "replicas": uow.replicas.list(),
        "tokens": uow.tokens.list(), "keys": uow.keys.list(),
    }


@pytest.mark.parametrize("writer", ["sql", "dbapi"])
def test_each_adapter_reads_exactly_what_the_other_wrote(
        pair: tuple[SqlRegistry, DbRegistry], writer: str) -> None:
    sql, lite = pair
    first, second = (sql, lite) if writer == "sql" else (lite, sql)
    with first() as uow:
        fill(uow)
    with first() as uow:
        written = everything(uow)
    with second() as uow:
        read = everything(uow)
        assert verify_chain(uow.events.scan(), head=uow.events.head()).ok
    assert read == written
    assert read["versions"][0].metrics["accuracy"] == 0.1 + 0.2
    assert read["history"][0].verified is not None
    assert read["replicas"][0].evidence == {"v": 1}


def test_the_lease_taken_through_one_adapter_holds_against_the_other(
        pair: tuple[SqlRegistry, DbRegistry]) -> None:
    from lastgood.domain.errors import OperationInProgress

    sql, lite = pair
    with sql() as uow:
        uow.leases.acquire("fraud/production", holder="a", now=EPOCH, ttl_s=60)
        uow.commit()
    with lite() as uow, pytest.raises(OperationInProgress, match="locked by a"):
        uow.leases.acquire("fraud/production", holder="b", now=EPOCH + timedelta(seconds=59),
                           ttl_s=60)
    with lite() as uow:  # expired: the time comparison is on the stored text of both
        uow.leases.acquire("fraud/production", holder="b", now=EPOCH + timedelta(seconds=61),
                           ttl_s=60)
        uow.commit()


def test_the_column_kinds_match_the_tables() -> None:
    def kinds(kind: Callable[[Any], bool]) -> dict[str, frozenset[str]]:
        found = {t.name: frozenset(c.name for c in t.columns if kind(c.type))
                 for t in metadata.sorted_tables}
        return {name: columns for name, columns in found.items() if columns}

    assert kinds(lambda t: isinstance(t, UtcDateTime)) == TIMES
    assert kinds(lambda t: isinstance(t, Json)) == JSONS
    assert kinds(lambda t: isinstance(t, Boolean)) == BOOLS


def test_the_composition_root_takes_files_and_postgresql_through_dbapi(url: str) -> None:
    registry = open_any_registry(url)  # a new database: created and migrated first
    assert isinstance(registry, DbRegistry)
    with registry() as uow:
        assert uow.models.list() == []
    registry.dispose()


def test_memory_and_optioned_sqlite_stay_with_sqlalchemy(tmp_path: Path) -> None:
    for other in ("sqlite://", "sqlite:///:memory:", f"sqlite:///{tmp_path}/r.db?mode=ro"):
        assert open_dbapi_registry(other) is None
    memory = open_any_registry("sqlite://")
    assert isinstance(memory, SqlRegistry)
    memory.dispose()


def test_a_file_behind_the_schema_is_migrated_before_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    # made in another process: this one would remember that it migrated the URL already
    subprocess.run([sys.executable, "-c", "from lastgood.adapters.sql import open_registry; "
                    f"open_registry({url!r}).dispose()"], check=True, timeout=60)
    with sqlite3.connect(tmp_path / "registry.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0002'")
        conn.execute("ALTER TABLE replicas DROP COLUMN evidence")
        conn.execute("ALTER TABLE replicas DROP COLUMN url")
        conn.execute("DROP TABLE metric_history")  # revision 0004_i23hist
    registry = open_any_registry(url)
    try:
        assert isinstance(registry, DbRegistry)
        assert registry.revision() == SCHEMA_REVISION
        with registry() as uow:
            uow.replicas.report(ReplicaReport(replica_id="r", model="m", env="e", version=1,
                                              since=EPOCH, seen_at=EPOCH, url="http://x"))
            uow.commit()
            assert uow.replicas.list()[0].url == "http://x"
    finally:
        registry.dispose()


def test_driver_errors_never_leave_the_adapter(pair: tuple[SqlRegistry, DbRegistry]) -> None:
    _, lite = pair
    with lite() as uow:
        uow.versions.add(make_new_version("fraud"), at=EPOCH, actor="ana")
        uow.commit()
    conn = lite.take()
    try:
        with pytest.raises(AlreadyExists, match="already registered") as caught:
            DbTx(conn, lite.url, lite.dialect).execute("INSERT INTO models SELECT * FROM models")
        driver = "psycopg" if lite.dialect.is_postgres else "sqlite3"
        assert type(caught.value.__cause__).__module__.startswith(driver)
    finally:
        lite.give_back(conn)


def test_an_unopenable_file_or_server_is_a_one_line_transient_error(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.db"
    folder.mkdir()
    for url in (f"sqlite:///{folder}", "postgresql://lastgood:secret@127.0.0.1:1/none"):
        with pytest.raises(TransientError, match="cannot reach the registry database") as caught:
            open_any_registry(url)
        assert "\n" not in str(caught.value)
        assert "secret" not in str(caught.value)


def test_connections_get_wal_foreign_keys_and_a_busy_timeout(sqlite_url: str) -> None:
    lite = open_dbapi_registry(sqlite_url)
    assert lite is not None
    conn = lite.take()
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    finally:
        lite.give_back(conn)
        lite.dispose()


@pytest.mark.slow
def test_concurrent_registrations_from_many_processes_get_consecutive_numbers(url: str) -> None:
    workers_n = 12
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(workers_n), ctx.Queue()
    workers = [ctx.Process(target=register_once, args=(url, start, results, "root"))
               for _ in range(workers_n)]
    for worker in workers:
        worker.start()
    numbers = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(numbers) == list(range(1, workers_n + 1)), numbers
    lite = open_dbapi_registry(url)
    assert lite is not None
    with lite() as uow:
        report = verify_chain(list(uow.events.scan()), head=uow.events.head())
    lite.dispose()
    assert report.ok, report
    assert report.checked == workers_n


def test_a_sqlite_writer_waits_for_the_lock_and_a_stuck_one_is_told_the_registry_is_busy(
        sqlite_url: str) -> None:
    import threading

    from lastgood.adapters.dbapi.connection import begin_immediate, translate_sqlite

    lite = open_dbapi_registry(sqlite_url)
    assert lite is not None
    holder, waiter = lite.take(), lite.take()
    try:
        holder.execute("BEGIN IMMEDIATE")
        released = threading.Event()

        def release() -> None:
            time.sleep(0.05)
            released.set()
            holder.execute("COMMIT")

        threading.Thread(target=release).start()
        begin_immediate(waiter)  # waits for the holder instead of failing at once
        assert released.is_set()
        assert waiter.in_transaction
        waiter.execute("ROLLBACK")
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            begin_immediate(waiter, timeout_s=0.05)
        assert not waiter.in_transaction
        assert waiter.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000  # restored
        busy = translate_sqlite(sqlite3.OperationalError("database is locked"), lite.url)
        assert isinstance(busy, TransientError)
        assert "busy" in str(busy)
    finally:
        for conn in (holder, waiter):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        lite.give_back(holder)
        lite.give_back(waiter)
        lite.dispose()
