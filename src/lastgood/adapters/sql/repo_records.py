"""Archive records (immutable) and replica reports (latest per replica) in SQL."""

from __future__ import annotations

from sqlalchemy import select

from lastgood.adapters import registry_rows as rows
from lastgood.adapters import registry_rules as rc
from lastgood.adapters.sql.session import Tx
from lastgood.adapters.sql.tables import archives, replicas
from lastgood.domain import codec
from lastgood.domain.archives import ArchiveRecord
from lastgood.domain.deployments import ReplicaReport


class SqlArchives:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def add(self, record: ArchiveRecord) -> None:
        taken = self._tx.execute(select(archives.c.id).where(archives.c.id == record.id)).first()
        if taken is not None:
            raise rc.duplicate_archive(record.id)
        self._tx.execute(archives.insert().values(**rows.archive_row(record)))

    def get(self, archive_id: str) -> ArchiveRecord:
        row = self._tx.execute(select(archives).where(archives.c.id == archive_id)).first()
        if row is None:
            raise rc.unknown_archive(archive_id)
        return codec.archive_from_json(row._mapping)

    def list(self, *, model: str | None = None, env: str | None = None) -> list[ArchiveRecord]:
        query = select(archives).order_by(archives.c.created_at.desc(), archives.c.id.desc())
        if model is not None:
            query = query.where(archives.c.model == model)
        if env is not None:
            query = query.where(archives.c.env == env)
        return [codec.archive_from_json(r._mapping) for r in self._tx.execute(query)]


class SqlReplicas:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def report(self, report: ReplicaReport) -> None:
        row = rows.replica_row(report)
        stmt = self._tx.insert(replicas).values(**row)
        keys = ("replica_id", "model", "env")
        changes = {name: stmt.excluded[name] for name in row if name not in keys}
        self._tx.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=changes))

    def list(self, *, model: str | None = None, env: str | None = None) -> list[ReplicaReport]:
        query = select(replicas).order_by(replicas.c.model, replicas.c.env, replicas.c.replica_id)
        if model is not None:
            query = query.where(replicas.c.model == model)
        if env is not None:
            query = query.where(replicas.c.env == env)
        return [rows.to_replica(r._mapping) for r in self._tx.execute(query)]
