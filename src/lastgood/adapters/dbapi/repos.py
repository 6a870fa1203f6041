"""Models, versions, environments, deployments and the audit log over DB-API.

Plain SQL over the tables of `adapters/schema` (SQLite's spelling; `connection.Dialect`
rewrites it for PostgreSQL); rows are built and read by `adapters/registry_rows.py`. SQLite
serialises writers with BEGIN IMMEDIATE and PostgreSQL locks the rows a use case updates, so a
read followed by a write in one unit of work is never raced.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from lastgood.adapters import registry_rows as rows
from lastgood.adapters import registry_rules as rc
from lastgood.adapters import registry_rules as rules
from lastgood.adapters.dbapi.connection import DbTx
from lastgood.domain import codec
from lastgood.domain.audit import Event, EventDraft, seal
from lastgood.domain.deployments import Deployment, DeploymentEnd, Environment, VerifiedRecord
from lastgood.domain.errors import AlreadyExists
from lastgood.domain.versions import Model, NewVersion, Version, VersionStatus

HEAD_ID = 1


def known_models(tx: DbTx) -> list[str]:
    return [r[0] for r in tx.execute("SELECT name FROM models ORDER BY name").fetchall()]


def require_model(tx: DbTx, model: str) -> int:
    """The model's last number; raises NotFound naming the known models."""
    number = tx.value("SELECT last_number FROM models WHERE name = ?", (model,))
    if number is None:
        raise rc.unknown_model(model, known_models(tx))
    return int(number)


def _models(tx: DbTx, name: str | None) -> list[Model]:
    """Models with their last number and version count, by name (one model when `name`)."""
    where = "" if name is None else "WHERE m.name = :name"
    found = tx.rows("models", f"""
        SELECT m.name, m.created_at, m.last_number, COUNT(v.id) AS version_count
        FROM models m LEFT OUTER JOIN versions v ON v.model = m.name {where}
        GROUP BY m.name, m.created_at, m.last_number ORDER BY m.name""", {"name": name})
    return [Model(name=r["name"], created_at=r["created_at"], latest_number=r["last_number"],
                  version_count=r["version_count"]) for r in found]


class DbModels:
    def __init__(self, tx: DbTx) -> None:
        self._tx = tx

    def list(self) -> list[Model]:
        return _models(self._tx, None)

    def get(self, name: str) -> Model:
        found = _models(self._tx, name)
        if not found:
            raise rc.unknown_model(name, known_models(self._tx))
        return found[0]


class DbVersions:
    def __init__(self, tx: DbTx) -> None:
        self._tx = tx

    def add(self, new: NewVersion, *, at: datetime, actor: str) -> Version:
        if new.tag is not None:
            taken = self._tx.value("SELECT number FROM versions WHERE model = ? AND tag = ?",
                                   (new.model, new.tag))
            if taken is not None:
                raise rc.duplicate_tag(new.model, new.tag, int(taken))
        number = self._allocate(new.model, rc.utc(at))
        try:
            self._tx.insert("versions", rows.version_row(new, number=number, at=rc.utc(at),
                                                     actor=actor))
        except AlreadyExists as exc:
            raise rc.duplicate_tag(new.model, new.tag or "", None) from exc
        return self.get(new.model, number)  # as stored, JSON round trip included

    def _allocate(self, model: str, at: datetime) -> int:
        bump = ("UPDATE models SET last_number = last_number + 1 WHERE name = ? "
                "RETURNING last_number")
        number = self._tx.value(bump, (model,))
        if number is None:
            self._tx.execute("INSERT INTO models (name, created_at, last_number) VALUES (?, ?, 0) "
                             "ON CONFLICT (name) DO NOTHING", (model, self._tx.time(at)))
            number = self._tx.value(bump, (model,))
        return int(number)

    def get(self, model: str, ref: int | str) -> Version:
        column = "number" if isinstance(ref, int) else "tag"
        row = self._tx.row("versions", f"SELECT * FROM versions WHERE model = ? AND {column} = ?",
                           (model, ref))
        if row is None:
            raise rc.unknown_version(model, ref, require_model(self._tx, model))
        return rows.to_version(row)

    def list(self, model: str, *, limit: int | None = None, offset: int = 0) -> list[Version]:
        require_model(self._tx, model)
        every = self._tx.dialect.no_limit
        found = self._tx.rows("versions", "SELECT * FROM versions WHERE model = ? "
                              "ORDER BY number DESC LIMIT ? OFFSET ?",
                              (model, every if limit is None else limit, offset))
        return [rows.to_version(r) for r in found]

    def set_status(self, model: str, number: int, status: VersionStatus) -> Version:
        self.get(model, number)
        self._tx.execute("UPDATE versions SET status = ? WHERE model = ? AND number = ?",
                         (status.value, model, number))
        return self.get(model, number)

    def with_digest(self, model: str, digest: str, *, key: str,
                    origin: str | None) -> Version | None:
        sql, params = "SELECT * FROM versions WHERE model = ? AND digest = ?", [model, digest]
        if origin is not None:  # a text pre-filter (provenance is JSON text); checked exactly below
            sql += " AND provenance LIKE '%' || ? || '%' ESCAPE '/'"
            params.append(json.dumps(origin).replace("/", "//").replace("%", "/%")
                          .replace("_", "/_"))
        for row in self._tx.rows("versions", sql + " ORDER BY number", params):
            found = rows.to_version(row)
            if origin is None or found.provenance.get(key) == origin:
                return found
        return None

    def referenced_blobs(self) -> set[str]:
        manifests = self._tx.execute("SELECT manifest FROM versions").fetchall()
        return {f["sha256"] for (text,) in manifests for f in json.loads(text)}


class DbEnvironments:
    def __init__(self, tx: DbTx) -> None:
        self._tx = tx

    def get(self, name: str) -> Environment:
        row = self._tx.row("environments", "SELECT * FROM environments WHERE name = ?", (name,))
        if row is None:
            known = [r[0] for r in self._tx.execute("SELECT name FROM environments").fetchall()]
            raise rc.unknown_env(name, known)
        return rows.to_environment(name, row["settings"])

    def put(self, env: Environment) -> Environment:
        settings = rows.environment_settings(env)
        self._tx.upsert("environments", {"name": env.name, "settings": settings}, ["name"])
        return self.get(env.name)

    def list(self) -> list[Environment]:
        found = self._tx.rows("environments", "SELECT * FROM environments ORDER BY name")
        return [rows.to_environment(r["name"], r["settings"]) for r in found]


class DbDeployments:
    def __init__(self, tx: DbTx) -> None:
        self._tx = tx

    def live(self, model: str, env: str) -> Deployment | None:
        row = self._tx.row("deployments", "SELECT * FROM deployments WHERE model = ? AND env = ? "
                           "AND ended_at IS NULL ORDER BY id DESC LIMIT 1", (model, env))
        return None if row is None else codec.deployment_from_json(row)

    def history(self, model: str, env: str) -> list[Deployment]:
        found = self._tx.rows("deployments", "SELECT * FROM deployments WHERE model = ? "
                              "AND env = ? ORDER BY id DESC", (model, env))
        return [codec.deployment_from_json(r) for r in found]

    def start(self, *, model: str, env: str, version: int, at: datetime, actor: str,
              reason: str, operation_id: str | None) -> Deployment:
        DbVersions(self._tx).get(model, version)  # NotFound with the fix, before the FK says so
        new_id = self._tx.insert("deployments", {
            "model": model, "env": env, "version": version, "started_at": rc.utc(at),
            "deployed_by": actor, "reason": reason, "operation_id": operation_id,
            "end_reason": ""}, returning="id")
        self._desired_changed(env)
        return self.get(int(new_id))

    def end(self, deployment_id: int, *, at: datetime, end: DeploymentEnd, reason: str) -> None:
        dep = self.get(deployment_id)
        if not dep.is_live:
            raise rc.deployment_ended(deployment_id)
        self._tx.execute('UPDATE deployments SET ended_at = ?, "end" = ?, end_reason = ? '
                         "WHERE id = ?", (self._tx.time(at), end.value, reason, deployment_id))
        self._desired_changed(dep.env)

    def set_verified(self, deployment_id: int, record: VerifiedRecord) -> Deployment:
        self.get(deployment_id)
        self._tx.execute("UPDATE deployments SET verified = ? WHERE id = ?",
                         (rc.dump_json(codec.verified_to_json(record)), deployment_id))
        return self.get(deployment_id)

    def get(self, deployment_id: int) -> Deployment:
        row = self._tx.row("deployments", "SELECT * FROM deployments WHERE id = ?",
                           (deployment_id,))
        if row is None:
            raise rc.unknown_deployment(deployment_id)
        return codec.deployment_from_json(row)

    def generation(self, env: str) -> int:
        found = self._tx.value("SELECT value FROM generations WHERE env = ?", (env,))
        return 0 if found is None else int(found)

    def touch(self, env: str) -> None:
        self._desired_changed(env)

    def _desired_changed(self, env: str) -> None:
        """Bump the env's generation and wake the replicas: on PostgreSQL a NOTIFY delivered at
        commit with the pointer; on SQLite the unit of work announces it after its commit."""
        self._tx.execute("INSERT INTO generations (env, value) VALUES (?, 1) ON CONFLICT (env) "
                         "DO UPDATE SET value = generations.value + 1", (env,))
        if self._tx.is_postgres:
            self._tx.execute("SELECT pg_notify(?, ?)", (rules.NOTIFY_CHANNEL, env))
        else:
            self._tx.changed.add(env)


class DbEvents:
    def __init__(self, tx: DbTx) -> None:
        self._tx = tx

    def append(self, draft: EventDraft, *, at: datetime) -> Event:
        # The head row is locked until commit (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE
        # already holds the write lock), so two writers never seal onto the same predecessor.
        seq, tip = self._head(self._tx.dialect.lock_row)
        event = seal((seq, tip), rc.utc(at), codec.stored_draft(draft))
        self._tx.insert("events", rows.event_row(event))
        self._tx.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = ?",
                         (event.seq, event.hash, HEAD_ID))
        return event

    def list(self, *, model: str | None = None, env: str | None = None,
             after_seq: int = 0, limit: int | None = None) -> list[Event]:
        sql, params = "SELECT * FROM events WHERE seq > ?", list[Any]([after_seq])
        for column, value in (("model", model), ("env", env)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        params.append(self._tx.dialect.no_limit if limit is None else limit)
        return [codec.event_from_json(r)
                for r in self._tx.rows("events", sql + " ORDER BY seq LIMIT ?", params)]

    def latest(self, *, actions: Sequence[str], model: str, env: str) -> Event | None:
        marks = ", ".join("?" for _ in actions)
        row = self._tx.row("events", f"SELECT * FROM events WHERE model = ? AND env = ? "
                           f"AND action IN ({marks}) ORDER BY seq DESC LIMIT 1",
                           (model, env, *actions))
        return None if row is None else codec.event_from_json(row)

    def scan(self, *, batch: int = 1000) -> Iterator[Event]:
        after = 0  # seq starts at 1: pages by seq keep a long chain's check in bounded memory
        while True:
            page = [codec.event_from_json(r) for r in self._tx.rows(
                "events", "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, batch))]
            yield from page
            if len(page) < batch:
                return
            after = page[-1].seq

    def head(self) -> tuple[int, str]:
        return self._head("")

    def _head(self, lock: str) -> tuple[int, str]:
        found = self._tx.execute("SELECT seq, hash FROM audit_head WHERE id = ?" + lock,
                                 (HEAD_ID,)).fetchone()
        return int(found[0]), str(found[1])
