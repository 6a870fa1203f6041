"""The SQL unit of work: one connection, transactions begun on first use, repositories over it."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Self

from sqlalchemy.exc import SQLAlchemyError

from lastgood.adapters.sql.errors import translate, translated
from lastgood.adapters.sql.repo_access import SqlKeys, SqlTokens
from lastgood.adapters.sql.repo_deployments import SqlDeployments, SqlEnvironments
from lastgood.adapters.sql.repo_events import SqlEvents
from lastgood.adapters.sql.repo_history import SqlHistory
from lastgood.adapters.sql.repo_operations import SqlLeases, SqlOperations
from lastgood.adapters.sql.repo_records import SqlArchives, SqlReplicas
from lastgood.adapters.sql.repo_versions import SqlModels, SqlVersions
from lastgood.adapters.sql.session import Tx

if TYPE_CHECKING:
    from lastgood.adapters.sql.registry import SqlRegistry


class SqlUnitOfWork:
    """One transaction at a time over one pooled connection; use it as a context manager.

    `commit()` makes the changes durable; the next statement begins a new transaction. Leaving
    the block rolls back whatever was not committed and returns the connection to the pool.
    """

    models: SqlModels
    versions: SqlVersions
    events: SqlEvents
    environments: SqlEnvironments
    deployments: SqlDeployments
    operations: SqlOperations
    leases: SqlLeases
    archives: SqlArchives
    replicas: SqlReplicas
    tokens: SqlTokens
    keys: SqlKeys
    history: SqlHistory

    def __init__(self, registry: SqlRegistry) -> None:
        self._registry = registry
        self._tx: Tx | None = None

    def __enter__(self) -> Self:
        if self._tx is not None:
            raise RuntimeError("this unit of work is already open")
        self._registry.migrate()
        with translated(self._registry.url):
            conn = self._registry.engine.connect()
        self._bind(Tx(conn, self._registry.url))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        tx, self._tx = self._tx, None
        if tx is None:
            return
        try:
            tx.conn.close()  # rolls back an open transaction
        except SQLAlchemyError as error:
            if exc is None:  # do not hide the error that is already on its way out
                raise translate(error, tx.url) from error

    def commit(self) -> None:
        """Make every change since the last commit durable, all or nothing."""
        if self._tx is None:
            raise RuntimeError("commit() outside `with uow:`")
        with translated(self._tx.url):
            self._tx.conn.commit()

    def _bind(self, tx: Tx) -> None:
        self._tx = tx
        self.models = SqlModels(tx)
        self.versions = SqlVersions(tx)
        self.events = SqlEvents(tx)
        self.environments = SqlEnvironments(tx)
        self.deployments = SqlDeployments(tx)
        self.operations = SqlOperations(tx)
        self.leases = SqlLeases(tx)
        self.archives = SqlArchives(tx)
        self.replicas = SqlReplicas(tx)
        self.tokens = SqlTokens(tx)
        self.keys = SqlKeys(tx)
        self.history = SqlHistory(tx)
