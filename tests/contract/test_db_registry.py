"""The registry adapter (DB-API: sqlite3, psycopg) on its own: what the general contract
(`conftest.BACKENDS`) cannot see. Stored forms read back through the schema's own column types,
URLs (files, memory, options), migrations, errors, locks, tamper detection, concurrency across
processes, and the wake-ups sent from its commit.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Boolean, inspect, select

from lastgood.adapters.dbapi import DbRegistry, open_dbapi_registry
from lastgood.adapters.dbapi.connection import BOOLS, JSONS, TIMES, DbTx
from lastgood.adapters.registry_rules import NOTIFY_CHANNEL
from lastgood.adapters.schema import HEAD_REVISION, metadata
from lastgood.adapters.schema.migrate import alembic_config, engine_for
from lastgood.adapters.schema.tables import deployments, versions
from lastgood.adapters.schema.types import Json, UtcDateTime
from lastgood.bootstrap.services import open_registry
from lastgood.domain.access import ApiToken, Role, SigningKey
from lastgood.domain.archives import ArchiveRecord
from lastgood.domain.audit import EventDraft, verify_chain
from lastgood.domain.deployments import DeploymentEnd, ReplicaReport
from lastgood.domain.errors import AlreadyExists, InvalidInput, TransientError
from lastgood.domain.operations import Phase
from lastgood.ports import UnitOfWork
from lastgood.testing import (
    EPOCH,
    RecordingAnnouncer,
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
def registry(url: str) -> Iterator[DbRegistry]:
    """The registry at `url`, opened as the composition root opens it (migrated first)."""
    opened = open_registry(url)
    try:
        yield opened
    finally:
        opened.dispose()


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


def test_what_one_registry_wrote_another_reads_exactly(registry: DbRegistry) -> None:
    with registry() as uow:
        fill(uow)
    with registry() as uow:
        written = everything(uow)
    again = open_dbapi_registry(registry.url)
    try:
        with again() as uow:
            read = everything(uow)
            assert verify_chain(uow.events.scan(), head=uow.events.head()).ok
    finally:
        again.dispose()
    assert read == written
    assert read["versions"][0].metrics["accuracy"] == 0.1 + 0.2
    assert read["history"][0].verified is not None
    assert read["replicas"][0].evidence == {"v": 1}


def test_stored_forms_are_what_the_schemas_column_types_read(registry: DbRegistry) -> None:
    with registry() as uow:
        fill(uow)
        version = uow.versions.list("fraud")[0]
        dep = uow.deployments.history("fraud", "production")[0]
    engine = engine_for(registry.url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(versions)).mappings().one()
            ended = conn.execute(select(deployments)).mappings().one()
    finally:
        engine.dispose()
    assert stored["created_at"] == version.created_at == LATER  # microseconds and zone kept
    assert stored["metrics"] == {"accuracy": 0.1 + 0.2}
    assert stored["unsafe_format"] is True
    assert ended["ended_at"] == dep.ended_at
    assert ended["verified"]["approver"] == "tester"


def test_the_lease_taken_through_one_connection_holds_against_another(
        registry: DbRegistry) -> None:
    from lastgood.domain.errors import OperationInProgress

    other = open_dbapi_registry(registry.url)
    with registry() as uow:
        uow.leases.acquire("fraud/production", holder="a", now=EPOCH, ttl_s=60)
        uow.commit()
    try:
        with other() as uow, pytest.raises(OperationInProgress, match="locked by a"):
            uow.leases.acquire("fraud/production", holder="b",
                               now=EPOCH + timedelta(seconds=59), ttl_s=60)
        with other() as uow:  # expired: the time comparison is on the stored values
            uow.leases.acquire("fraud/production", holder="b",
                               now=EPOCH + timedelta(seconds=61), ttl_s=60)
            uow.commit()
    finally:
        other.dispose()


def test_the_column_kinds_match_the_tables() -> None:
    def kinds(kind: Callable[[Any], bool]) -> dict[str, frozenset[str]]:
        found = {t.name: frozenset(c.name for c in t.columns if kind(c.type))
                 for t in metadata.sorted_tables}
        return {name: columns for name, columns in found.items() if columns}

    assert kinds(lambda t: isinstance(t, UtcDateTime)) == TIMES
    assert kinds(lambda t: isinstance(t, Json)) == JSONS
    assert kinds(lambda t: isinstance(t, Boolean)) == BOOLS


def test_the_composition_root_creates_and_migrates_a_new_database(url: str) -> None:
    registry = open_registry(url)
    try:
        assert registry.revision() == HEAD_REVISION
        with registry() as uow:
            assert uow.models.list() == []
    finally:
        registry.dispose()


def test_memory_and_optioned_sqlite_urls_go_through_the_same_adapter(tmp_path: Path) -> None:
    file_url = f"sqlite:///{tmp_path / 'r.db'}"
    open_registry(file_url).dispose()
    for url in ("sqlite://", "sqlite:///:memory:", f"{file_url}?timeout=5",
                f"sqlite:///file:{tmp_path / 'r.db'}?mode=ro&uri=true"):
        registry = open_registry(url)
        try:
            assert registry.revision() == HEAD_REVISION, url
            with registry() as uow:
                assert uow.models.list() == [], url
        finally:
            registry.dispose()


def test_a_read_only_sqlite_url_refuses_writes_in_one_line(tmp_path: Path) -> None:
    open_registry(f"sqlite:///{tmp_path / 'r.db'}").dispose()
    registry = open_registry(f"sqlite:///file:{tmp_path / 'r.db'}?mode=ro&uri=true")
    try:
        with registry() as uow, pytest.raises(Exception, match="readonly") as caught:
            uow.versions.add(make_new_version("fraud"), at=EPOCH, actor="ana")
        assert type(caught.value).__module__ == "lastgood.domain.errors"
    finally:
        registry.dispose()


@pytest.mark.parametrize(("url", "said"), [
    ("sqlite:///r.db?journal=off", "unknown SQLite URL option(s): journal"),
    ("sqlite:///r.db?timeout=soon", "the SQLite URL's timeout 'soon' is not a number"),
    ("mysql://root@localhost/registry", "unsupported registry database URL"),
])
def test_a_url_the_adapter_cannot_open_is_refused_with_the_forms_it_takes(
        url: str, said: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(said)) as caught:
        open_registry(url)
    assert "sqlite:///PATH" in caught.value.fix


def test_in_memory_registries_are_separate_and_migrated() -> None:
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


def test_a_unit_of_work_opened_inside_another_on_a_memory_registry_joins_it() -> None:
    registry = open_registry("sqlite://")
    try:
        with registry() as outer:
            outer.versions.add(make_new_version("fraud"), at=EPOCH, actor="ana")
            with registry() as inner:
                assert [m.name for m in inner.models.list()] == ["fraud"]
            outer.commit()
        with registry() as uow:
            assert [m.name for m in uow.models.list()] == ["fraud"]
    finally:
        registry.dispose()


def test_a_file_behind_the_schema_is_migrated_before_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    open_registry(url).dispose()
    with sqlite3.connect(tmp_path / "registry.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0002'")
        conn.execute("ALTER TABLE replicas DROP COLUMN evidence")
        conn.execute("ALTER TABLE replicas DROP COLUMN url")
        conn.execute("DROP TABLE metric_history")  # 0004_i23hist, after 0003
    registry = open_registry(url)
    try:
        assert registry.revision() == HEAD_REVISION
        with registry() as uow:
            uow.replicas.report(ReplicaReport(replica_id="r", model="m", env="e", version=1,
                                              since=EPOCH, seen_at=EPOCH, url="http://x"))
            uow.commit()
            assert uow.replicas.list()[0].url == "http://x"
    finally:
        registry.dispose()


def test_the_migrated_schema_matches_the_tables(registry: DbRegistry) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = engine_for(registry.url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            assert "alembic_version" in inspect(conn).get_table_names()
    finally:
        engine.dispose()
    assert alembic_config().get_main_option("script_location", "").endswith("migrations")


def test_the_fast_path_knows_the_newest_revision() -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_driver_errors_never_leave_the_adapter(registry: DbRegistry) -> None:
    with registry() as uow:
        uow.versions.add(make_new_version("fraud"), at=EPOCH, actor="ana")
        uow.commit()
    with registry.connection() as conn:
        with pytest.raises(AlreadyExists, match="already registered") as caught:
            DbTx(conn, registry.url, registry.dialect).execute(
                "INSERT INTO models SELECT * FROM models")
        driver = "psycopg" if registry.dialect.is_postgres else "sqlite3"
        assert type(caught.value.__cause__).__module__.startswith(driver)


def test_an_unopenable_file_or_server_is_a_one_line_transient_error(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.db"
    folder.mkdir()
    for url in (f"sqlite:///{folder}", "postgresql://lastgood:secret@127.0.0.1:1/none"):
        with pytest.raises(TransientError, match="cannot reach the registry database") as caught:
            open_registry(url)
        assert "\n" not in str(caught.value)
        assert "secret" not in str(caught.value)


def test_an_unreachable_server_names_the_url_with_the_password_masked() -> None:
    with pytest.raises(TransientError) as caught:
        open_registry("postgresql+psycopg://lastgood:s3cret@127.0.0.1:1/registry")
    assert str(caught.value) == ("cannot reach the registry database at "
                                 "postgresql+psycopg://lastgood:***@127.0.0.1:1/registry — "
                                 "check LASTGOOD_DB_URL / that the server runs")


def test_a_registry_opened_without_reading_reports_an_unreachable_server_on_first_use() -> None:
    registry = open_dbapi_registry("postgresql://nobody@127.0.0.1:1/registry")
    try:
        with pytest.raises(TransientError, match=r"127\.0\.0\.1:1"), registry():
            pass
    finally:
        registry.dispose()


def test_sqlite_gets_its_directory_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "registry.db"
    registry = open_registry(f"sqlite:///{path}")
    try:
        with registry.connection() as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
            assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    finally:
        registry.dispose()
    assert path.is_file()


def write_chain(registry: DbRegistry, n: int = 5) -> None:
    with registry() as uow:
        for i in range(1, n + 1):
            uow.events.append(EventDraft(action="deploy", actor="ana", model="fraud",
                                         reason=f"step {i}", evidence={"i": i}), at=EPOCH)
        uow.commit()


def tamper(registry: DbRegistry, *statements: str) -> None:
    with registry() as uow:
        tx = uow._tx
        assert tx is not None
        for statement in statements:
            tx.execute(statement)
        uow.commit()


def check(registry: DbRegistry) -> tuple[int | None, str]:
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
        registry: DbRegistry, case: str) -> None:
    write_chain(registry)
    assert check(registry) == (None, "")
    statements, first_bad, problem = TAMPERING[case]
    tamper(registry, *statements)
    bad, said = check(registry)
    assert bad == first_bad
    assert problem in said


def start(uow: UnitOfWork, env: str) -> int:
    return uow.deployments.start(model="m", env=env, version=1, at=EPOCH, actor="t",
                                 reason="t", operation_id=None).id


@pytest.fixture
def announcing(tmp_path: Path) -> Iterator[tuple[DbRegistry, RecordingAnnouncer]]:
    """A SQLite registry whose commits are announced to a recorder."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    open_registry(url).dispose()
    told = RecordingAnnouncer()
    registry = open_dbapi_registry(url, announcer=told)
    with registry() as uow:
        uow.versions.add(make_new_version("m"), at=EPOCH, actor="t")
        uow.commit()
    try:
        yield registry, told
    finally:
        registry.dispose()


def test_a_sqlite_commit_that_moves_pointers_announces_their_envs_once_after_it(
        announcing: tuple[DbRegistry, RecordingAnnouncer]) -> None:
    registry, told = announcing
    with registry() as uow:
        dep = start(uow, "production")
        start(uow, "staging")
        assert told.announced == []  # not before the commit: replicas would read the old state
        uow.commit()
        uow.deployments.end(dep, at=EPOCH, end=DeploymentEnd.SUPERSEDED, reason="undeploy")
        uow.commit()
    assert told.announced == [["production", "staging"], ["production"]]


def test_commits_that_move_no_pointer_and_uncommitted_moves_announce_nothing(
        announcing: tuple[DbRegistry, RecordingAnnouncer]) -> None:
    registry, told = announcing
    with registry() as uow:
        start(uow, "production")  # left without commit: rolled back
    with registry() as uow:
        assert uow.deployments.live("m", "production") is None
        dep = start(uow, "staging")
        uow.commit()
        uow.deployments.set_verified(dep, make_verified_record())
        uow.commit()
    assert told.announced == [["staging"]]


def test_a_failing_announcer_never_undoes_the_commit(tmp_path: Path) -> None:
    class Broken:
        def announce(self, envs: Collection[str]) -> None:
            raise OSError("no socket for you")

    url = f"sqlite:///{tmp_path / 'registry.db'}"
    open_registry(url).dispose()
    registry = open_dbapi_registry(url, announcer=Broken())
    try:
        with registry() as uow:
            uow.versions.add(make_new_version("m"), at=EPOCH, actor="t")
            start(uow, "production")
            uow.commit()
        with registry() as uow:
            assert uow.deployments.live("m", "production") is not None
    finally:
        registry.dispose()


@pytest.mark.postgres
def test_postgres_notifies_replicas_when_a_commit_changes_the_desired_state(pg_url: str) -> None:
    import psycopg

    listener = psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"),
                               autocommit=True)
    registry = open_registry(pg_url, announce=True)
    try:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        with registry() as uow:
            uow.versions.add(make_new_version("fraud"), at=EPOCH, actor="ana")
            uow.commit()
            start_fraud(uow, "production")  # rolled back
        with registry() as uow:
            start_fraud(uow, "staging")
            uow.commit()
        first = next(listener.notifies(timeout=30, stop_after=1))
    finally:
        listener.close()
        registry.dispose()
    assert (first.channel, first.payload) == ("lastgood_desired", "staging")


def start_fraud(uow: UnitOfWork, env: str) -> None:
    uow.deployments.start(model="fraud", env=env, version=1, at=EPOCH, actor="ana", reason="",
                          operation_id=None)


@pytest.mark.slow
def test_concurrent_registrations_from_many_processes_get_consecutive_numbers(url: str) -> None:
    workers_n = 12  # the children also race to create the schema: migrations serialise too
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(workers_n), ctx.Queue()
    workers = [ctx.Process(target=register_once, args=(url, start, results))
               for _ in range(workers_n)]
    for worker in workers:
        worker.start()
    numbers = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(numbers) == list(range(1, workers_n + 1)), numbers
    lite = open_dbapi_registry(url)
    with lite() as uow:
        report = verify_chain(list(uow.events.scan()), head=uow.events.head())
    lite.dispose()
    assert report.ok, report
    assert report.checked == workers_n


def test_a_sqlite_writer_waits_for_the_lock_and_a_stuck_one_is_told_the_registry_is_busy(
        sqlite_url: str) -> None:
    import threading

    from lastgood.adapters.dbapi.connection import begin_immediate, translate_sqlite

    lite = open_registry(sqlite_url)
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


def test_history_rows_of_the_json_summary_form_are_converted_by_the_migration(url: str) -> None:
    """0004_i23hist stored one JSON summary a point; 0005 keeps the same numbers in columns,
    and going back down gives the same summaries again."""
    from alembic import command

    from lastgood.domain.history import HistoryPoint
    from lastgood.domain.measurements import LATENCY_BOUNDS, Histogram, Moments, RateCounts
    from lastgood.domain.measurements import Summary as Sum

    point = HistoryPoint("iris", "production", 2, "r1", 10, 1_800_000_000, Sum(
        errors=RateCounts(3, 200), accuracy=RateCounts(40, 50),
        latency=Histogram.of([0.004] * 150 + [0.2] * 50, LATENCY_BOUNDS),
        predictions=Histogram((0.5, 1.5), (10, 5, 0)), custom={"revenue": Moments(4, 2.5, 1.0)}))
    old = ('{"e":[3,200],"a":[40,50],"l":{"n":"l","c":%s},"p":{"b":[0.5,1.5],"c":[0,10,1,5]},'
           '"x":{"revenue":[4,2.5,1.0]}}')
    pairs = [x for i, c in enumerate(point.summary.latency.counts) if c for x in (i, c)]  # type: ignore[union-attr]
    open_registry(url).dispose()
    engine = engine_for(url)
    config = alembic_config()
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0004_i23hist")
            conn.exec_driver_sql(
                "INSERT INTO metric_history (model, env, version, replica, resolution_s, at_s, "
                "summary) VALUES ('iris', 'production', 2, 'r1', 10, 1800000000, "
                f"'{old % json.dumps(pairs).replace(' ', '')}'), ('iris', 'production', 2, "
                "'r2', 10, 1800000000, '{\"e\":[1')")
            command.upgrade(config, "head")
    finally:
        engine.dispose()
    registry = open_registry(url)
    try:
        with registry() as uow:
            found = uow.history.read("iris", "production", resolution_s=10, since_s=0,
                                     until_s=2_000_000_000, limit=10)
        assert found[0].point() == point
        with pytest.raises(InvalidInput, match="damaged"):
            found[1].point()  # a damaged summary stays damaged: readings skip it
    finally:
        registry.dispose()
