"""Operations (persisted phase by phase) and leases (one operation per deployment) in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, or_, select

from lastgood.adapters import registry_rows as rows
from lastgood.adapters import registry_rules as rc
from lastgood.adapters.sql.session import Tx
from lastgood.adapters.sql.tables import leases, operations
from lastgood.domain import codec
from lastgood.domain.operations import TERMINAL, Operation

_ORDER = (operations.c.created_at, operations.c.id)


class SqlOperations:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def save(self, op: Operation) -> None:
        row = rows.operation_row(op)
        stmt = self._tx.insert(operations).values(**row)
        changes = {name: stmt.excluded[name] for name in row if name != "id"}
        self._tx.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=changes))

    def get(self, op_id: str) -> Operation:
        row = self._tx.execute(select(operations).where(operations.c.id == op_id)).first()
        if row is None:
            raise rc.unknown_operation(op_id)
        return codec.operation_from_json(row._mapping)

    def unfinished(self, *, model: str | None = None, env: str | None = None) -> list[Operation]:
        query = (_filtered(model, env)
                 .where(operations.c.phase.not_in([p.value for p in TERMINAL]))
                 .order_by(*_ORDER))
        return [codec.operation_from_json(r._mapping) for r in self._tx.execute(query)]

    def list(self, *, model: str | None = None, env: str | None = None,
             limit: int = 50) -> list[Operation]:
        query = _filtered(model, env).order_by(*(c.desc() for c in _ORDER)).limit(limit)
        return [codec.operation_from_json(r._mapping) for r in self._tx.execute(query)]


def _filtered(model: str | None, env: str | None) -> Select[Any]:
    query = select(operations)
    if model is not None:
        query = query.where(operations.c.model == model)
    if env is not None:
        query = query.where(operations.c.env == env)
    return query


class SqlLeases:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def acquire(self, key: str, *, holder: str, now: datetime, ttl_s: float) -> None:
        # One atomic upsert: insert, or take over when we hold it already or it has expired.
        # No read-then-write window, so two contenders can never both win.
        stmt = self._tx.insert(leases).values(key=key, holder=holder,
                                              expires_at=rc.expiry(now, ttl_s))
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
            where=or_(leases.c.holder == holder, leases.c.expires_at <= rc.utc(now)),
        )
        if self._tx.execute(stmt.returning(leases.c.key)).first() is None:
            held = self._tx.execute(select(leases.c.holder, leases.c.expires_at)
                                    .where(leases.c.key == key)).one()
            raise rc.lease_held(key, held.holder, held.expires_at)

    def release(self, key: str, *, holder: str) -> None:
        self._tx.execute(delete(leases).where(leases.c.key == key, leases.c.holder == holder))
