"""SQL-only guarantees: concurrent writers across processes, tamper detection on raw rows,
unreachable servers, the migrated schema, and SQLite's connection settings."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import Pool

from lastgood.adapters.sql import NOTIFY_CHANNEL, SqlRegistry, open_registry
from lastgood.adapters.sql.migrate import HEAD_REVISION, alembic_config
from lastgood.adapters.sql.session import Tx
from lastgood.adapters.sql.tables import metadata
from lastgood.domain.audit import EventDraft, verify_chain
from lastgood.domain.errors import AlreadyExists, TransientError
from lastgood.testing import EPOCH, make_new_version
from tests.contract.registry_workers import register_once

WORKERS = 20


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgres",
                                                             marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, not yet migrated registry of each SQL kind."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


@pytest.mark.slow
def test_concurrent_registrations_from_many_processes_get_consecutive_numbers(url: str) -> None:
    # The children also race to create the schema: migrations must serialise too.
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(WORKERS), ctx.Queue()
    workers = [ctx.Process(target=register_once, args=(url, start, results))
               for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    numbers = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert all(isinstance(n, int) for n in numbers), numbers
    assert sorted(numbers) == list(range(1, WORKERS + 1))
    assert [w.exitcode for w in workers] == [0] * WORKERS
    registry = open_registry(url)
    try:
        with registry() as uow:
            assert [v.number for v in uow.versions.list("fraud")] == list(range(WORKERS, 0, -1))
            events = list(uow.events.scan())
            report = verify_chain(events, head=uow.events.head())
    finally:
        registry.dispose()
    assert report.ok, report
    assert report.checked == WORKERS
    assert sorted(int(e.draft.subject or 0) for e in events) == list(range(1, WORKERS + 1))


def write_chain(registry: SqlRegistry, n: int = 5) -> None:
    with registry() as uow:
        for i in range(1, n + 1):
            uow.events.append(EventDraft(action="deploy", actor="ana", model="fraud",
                                         reason=f"step {i}", evidence={"i": i}), at=EPOCH)
        uow.commit()


def tamper(registry: SqlRegistry, *statements: str) -> None:
    with registry.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def check(registry: SqlRegistry) -> tuple[int | None, str]:
    with registry() as uow:
        report = verify_chain(uow.events.scan(batch=2), head=uow.events.head())
    return report.first_bad, report.problem


TAMPERING = {
    "edited field": (["UPDATE events SET reason = 'nothing to see' WHERE seq = 3"],
                     3, "event #3 was edited"),
    "edited evidence": (["UPDATE events SET evidence = '{\"i\": 99}' WHERE seq = 4"],
                        4, "event #4 was edited"),
    "deleted middle row": (["DELETE FROM events WHERE seq = 3"],
                           4, "expected event #3, found #4"),
    "deleted last row": (["DELETE FROM events WHERE seq = 5"],
                         5, "events after #4 were deleted"),
    "swapped rows": (["UPDATE events SET seq = -2 WHERE seq = 2",
                      "UPDATE events SET seq = 2 WHERE seq = 3",
                      "UPDATE events SET seq = 3 WHERE seq = -2"],
                     2, "event #2 does not follow #1"),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampering_with_event_rows_is_detected_at_the_first_bad_seq(
        sql_registry: SqlRegistry, case: str) -> None:
    write_chain(sql_registry)
    assert check(sql_registry) == (None, "")
    statements, first_bad, problem = TAMPERING[case]
    tamper(sql_registry, *statements)
    bad, said = check(sql_registry)
    assert bad == first_bad
    assert problem in said


def test_an_unreachable_server_is_a_one_line_transient_error() -> None:
    url = "postgresql+psycopg://lastgood:s3cret@127.0.0.1:1/registry"
    with pytest.raises(TransientError) as caught:
        open_registry(url)
    message = str(caught.value)
    assert message == ("cannot reach the registry database at "
                       "postgresql+psycopg://lastgood:***@127.0.0.1:1/registry — "
                       "check LASTGOOD_DB_URL / that the server runs")
    assert "\n" not in message
    assert "s3cret" not in message


def test_a_lazily_opened_registry_reports_an_unreachable_server_on_first_use() -> None:
    registry = open_registry("postgresql://nobody@127.0.0.1:1/registry", migrate=False)
    try:
        with pytest.raises(TransientError, match=r"127\.0\.0\.1:1"), registry():
            pass
    finally:
        registry.dispose()


def test_driver_errors_never_leave_the_adapter(sql_registry: SqlRegistry) -> None:
    with sql_registry() as uow:
        uow.versions.add(make_new_version("fraud"), at=EPOCH, actor="ana")
        uow.commit()
    duplicate = text("INSERT INTO models (name, created_at, last_number) "
                     "SELECT name, created_at, last_number FROM models")
    with sql_registry.engine.connect() as conn:
        tx = Tx(conn, sql_registry.url)
        with pytest.raises(AlreadyExists, match="already registered") as caught:
            tx.execute(duplicate)
    assert isinstance(caught.value.__cause__, SQLAlchemyError)


def test_the_migrated_schema_matches_the_tables(sql_registry: SqlRegistry) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with sql_registry.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
        assert "alembic_version" in inspect(conn).get_table_names()
    assert alembic_config().get_main_option("script_location", "").endswith("migrations")


def test_sqlite_gets_its_directory_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "registry.db"
    registry = open_registry(f"sqlite:///{path}")
    try:
        with registry.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        registry.dispose()
    assert path.is_file()


def test_the_fast_path_knows_the_newest_revision() -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


@pytest.mark.postgres
def test_postgres_notifies_replicas_when_a_commit_changes_the_desired_state(pg_url: str) -> None:
    import psycopg

    listener = psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"),
                               autocommit=True)
    registry = open_registry(pg_url)
    try:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        with registry() as uow:
            uow.versions.add(make_new_version("fraud"), at=EPOCH, actor="ana")
            uow.commit()
            uow.deployments.start(model="fraud", env="production", version=1, at=EPOCH,
                                  actor="ana", reason="", operation_id=None)  # rolled back
        with registry() as uow:
            uow.deployments.start(model="fraud", env="staging", version=1, at=EPOCH,
                                  actor="ana", reason="", operation_id=None)
            uow.commit()
        first = next(listener.notifies(timeout=30, stop_after=1))
    finally:
        listener.close()
        registry.dispose()
    assert (first.channel, first.payload) == ("lastgood_desired", "staging")


def test_in_memory_sqlite_registries_are_separate_and_migrated() -> None:
    one, two = open_registry("sqlite://"), open_registry("sqlite://")
    try:
        with one() as uow:
            uow.versions.add(make_new_version("fraud"), at=EPOCH, actor="ana")
            uow.commit()
        with one() as uow:
            assert [m.name for m in uow.models.list()] == ["fraud"]
        with two() as uow:
            assert uow.models.list() == []
    finally:
        one.dispose()
        two.dispose()


def test_a_registry_dropped_without_dispose_closes_its_connections(
        sql_registry: SqlRegistry) -> None:
    import gc

    def use_and_drop() -> Pool:
        registry = open_registry(sql_registry.url)
        with registry() as uow:
            uow.models.list()
        assert registry.engine.pool.checkedin() == 1
        return registry.engine.pool

    pool = use_and_drop()
    gc.collect()
    assert pool.checkedin() == 0  # closed, not merely returned (psycopg would warn otherwise)
