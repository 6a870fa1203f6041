"""Operations, leases, archives, replica reports, API tokens and signing keys over DB-API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lastgood.adapters import registry_rows as rows
from lastgood.adapters import registry_rules as rc
from lastgood.adapters.dbapi.connection import DbTx
from lastgood.domain import codec
from lastgood.domain.access import ApiToken, SigningKey
from lastgood.domain.archives import ArchiveRecord
from lastgood.domain.deployments import ReplicaReport
from lastgood.domain.operations import TERMINAL, Operation


def _where(model: str | None, env: str | None) -> tuple[str, list[Any]]:
    """` WHERE ...` for the optional model and env filters, and its parameters."""
    clauses, params = [], []
    for column, value in (("model", model), ("env", env)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


class DbOperations:
    def __init__(self, tx: DbTx) -> None:
        self._tx = tx

    def save(self, op: Operation) -> None:
        self._tx.upsert("operations", rows.operation_row(op), ["id"])

    def get(self, op_id: str) -> Operation:
        row = self._tx.row("operations", "SELECT * FROM operations WHERE id = ?", (op_id,))
        if row is None:
            raise rc.unknown_operation(op_id)
        return codec.operation_from_json(row)

    def unfinished(self, *, model: str | None = None, env: str | None = None) -> list[Operation]:
        where, params = _where(model, env)
        done = [p.value for p in TERMINAL]
        where += (" AND " if where else " WHERE ") + \
            f"phase NOT IN ({', '.join('?' for _ in done)})"
        found = self._tx.rows("operations", f"SELECT * FROM operations{where} "
                              "ORDER BY created_at, id", [*params, *done])
        return [codec.operation_from_json(r) for r in found]

    def list(self, *, model: str | None = None, env: str | None = None,
             limit: int = 50) -> list[Operation]:
        where, params = _where(model, env)
        found = self._tx.rows("operations", f"SELECT * FROM operations{where} "
                              "ORDER BY created_at DESC, id DESC LIMIT ?", [*params, limit])
        return [codec.operation_from_json(r) for r in found]


class DbLeases:
    def __init__(self, tx: DbTx) -> None:
        self._tx = tx

    def acquire(self, key: str, *, holder: str, now: datetime, ttl_s: float) -> None:
        # One atomic upsert: insert, or take over when we hold it already or it has expired.
        taken = self._tx.value(
            'INSERT INTO leases ("key", holder, expires_at) VALUES (:key, :holder, :expires) '
            'ON CONFLICT ("key") DO UPDATE SET holder = excluded.holder, '
            "expires_at = excluded.expires_at "
            "WHERE leases.holder = :holder OR leases.expires_at <= :now RETURNING \"key\"",
            {"key": key, "holder": holder, "expires": self._tx.time(rc.expiry(now, ttl_s)),
             "now": self._tx.time(now)})
        if taken is None:
            held = self._tx.row("leases", 'SELECT holder, expires_at FROM leases WHERE "key" = ?',
                                (key,))
            assert held is not None  # the conflict that refused us is that row
            raise rc.lease_held(key, held["holder"], held["expires_at"])

    def release(self, key: str, *, holder: str) -> None:
        self._tx.execute('DELETE FROM leases WHERE "key" = ? AND holder = ?', (key, holder))


class DbArchives:
    def __init__(self, tx: DbTx) -> None:
        self._tx = tx

    def add(self, record: ArchiveRecord) -> None:
        if self._tx.value("SELECT id FROM archives WHERE id = ?", (record.id,)) is not None:
            raise rc.duplicate_archive(record.id)
        self._tx.insert("archives", rows.archive_row(record))

    def get(self, archive_id: str) -> ArchiveRecord:
        row = self._tx.row("archives", "SELECT * FROM archives WHERE id = ?", (archive_id,))
        if row is None:
            raise rc.unknown_archive(archive_id)
        return codec.archive_from_json(row)

    def list(self, *, model: str | None = None, env: str | None = None) -> list[ArchiveRecord]:
        where, params = _where(model, env)
        found = self._tx.rows("archives", f"SELECT * FROM archives{where} "
                              "ORDER BY created_at DESC, id DESC", params)
        return [codec.archive_from_json(r) for r in found]


class DbReplicas:
    def __init__(self, tx: DbTx) -> None:
        self._tx = tx

    def report(self, report: ReplicaReport) -> None:
        self._tx.upsert("replicas", rows.replica_row(report), ["replica_id", "model", "env"])

    def list(self, *, model: str | None = None, env: str | None = None) -> list[ReplicaReport]:
        where, params = _where(model, env)
        found = self._tx.rows("replicas", f"SELECT * FROM replicas{where} "
                              "ORDER BY model, env, replica_id", params)
        return [rows.to_replica(r) for r in found]


class DbTokens:
    def __init__(self, tx: DbTx) -> None:
        self._tx = tx

    def add(self, token: ApiToken) -> None:
        if self._tx.value("SELECT id FROM api_tokens WHERE id = ?", (token.id,)) is not None:
            raise rc.duplicate_token(token.id)
        self._tx.insert("api_tokens", rows.token_row(token))

    def by_hash(self, token_hash: str) -> ApiToken | None:
        row = self._tx.row("api_tokens", "SELECT * FROM api_tokens WHERE token_hash = ?",
                           (token_hash,))
        return None if row is None else rows.to_token(row)

    def get(self, token_id: str) -> ApiToken:
        row = self._tx.row("api_tokens", "SELECT * FROM api_tokens WHERE id = ?", (token_id,))
        if row is None:
            raise rc.unknown_token(token_id)
        return rows.to_token(row)

    def list(self) -> list[ApiToken]:
        return [rows.to_token(r) for r in self._tx.rows(
            "api_tokens", "SELECT * FROM api_tokens ORDER BY created_at, id")]

    def revoke(self, token_id: str, *, at: datetime) -> ApiToken:
        token = self.get(token_id)
        if token.revoked_at is None:
            self._tx.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ?",
                             (self._tx.time(at), token_id))
            token = self.get(token_id)
        return token


class DbKeys:
    def __init__(self, tx: DbTx) -> None:
        self._tx = tx

    def add(self, key: SigningKey) -> None:
        if self._tx.value("SELECT name FROM signing_keys WHERE name = ?", (key.name,)) is not None:
            raise rc.duplicate_key(key.name)
        self._tx.insert("signing_keys", rows.key_row(key))

    def get(self, name: str) -> SigningKey:
        row = self._tx.row("signing_keys", "SELECT * FROM signing_keys WHERE name = ?", (name,))
        if row is None:
            known = [r[0] for r in self._tx.execute("SELECT name FROM signing_keys").fetchall()]
            raise rc.unknown_key(name, known)
        return rows.to_key(row)

    def list(self) -> list[SigningKey]:
        return [rows.to_key(r) for r in self._tx.rows(
            "signing_keys", "SELECT * FROM signing_keys ORDER BY name")]
