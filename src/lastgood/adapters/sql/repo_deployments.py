"""Environments, deployments and the per-env generation counter in SQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

from lastgood.adapters import registry_rows as rows
from lastgood.adapters import registry_rules as rc
from lastgood.adapters.sql.repo_versions import SqlVersions
from lastgood.adapters.sql.session import NOTIFY_CHANNEL, Tx
from lastgood.adapters.sql.tables import deployments, environments, generations
from lastgood.domain import codec
from lastgood.domain.deployments import Deployment, DeploymentEnd, Environment, VerifiedRecord


class SqlEnvironments:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def get(self, name: str) -> Environment:
        settings = self._tx.execute(select(environments.c.settings)
                                    .where(environments.c.name == name)).scalar()
        if settings is None:
            known = self._tx.execute(select(environments.c.name)).scalars()
            raise rc.unknown_env(name, known)
        return rows.to_environment(name, settings)

    def put(self, env: Environment) -> Environment:
        settings = rows.environment_settings(env)
        stmt = self._tx.insert(environments).values(name=env.name, settings=settings)
        self._tx.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                                    set_={"settings": stmt.excluded.settings}))
        return self.get(env.name)

    def list(self) -> list[Environment]:
        found = self._tx.execute(select(environments).order_by(environments.c.name))
        return [rows.to_environment(r.name, r.settings) for r in found]


class SqlDeployments:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def live(self, model: str, env: str) -> Deployment | None:
        query = (select(deployments)
                 .where(deployments.c.model == model, deployments.c.env == env,
                        deployments.c.ended_at.is_(None))
                 .order_by(deployments.c.id.desc()).limit(1))
        row = self._tx.execute(query).first()
        return None if row is None else codec.deployment_from_json(row._mapping)

    def history(self, model: str, env: str) -> list[Deployment]:
        query = (select(deployments)
                 .where(deployments.c.model == model, deployments.c.env == env)
                 .order_by(deployments.c.id.desc()))
        return [codec.deployment_from_json(r._mapping) for r in self._tx.execute(query)]

    def start(self, *, model: str, env: str, version: int, at: datetime, actor: str,
              reason: str, operation_id: str | None) -> Deployment:
        SqlVersions(self._tx).get(model, version)  # NotFound with the fix, before the FK says so
        new_id = self._tx.execute(deployments.insert().values(
            model=model, env=env, version=version, started_at=rc.utc(at), deployed_by=actor,
            reason=reason, operation_id=operation_id, end_reason="",
        ).returning(deployments.c.id)).scalar_one()
        self._desired_changed(env)
        return self.get(int(new_id))

    def end(self, deployment_id: int, *, at: datetime, end: DeploymentEnd, reason: str) -> None:
        dep = self.get(deployment_id)
        if not dep.is_live:
            raise rc.deployment_ended(deployment_id)
        self._tx.execute(update(deployments).where(deployments.c.id == deployment_id)
                         .values(ended_at=rc.utc(at), end=end.value, end_reason=reason))
        self._desired_changed(dep.env)

    def set_verified(self, deployment_id: int, record: VerifiedRecord) -> Deployment:
        self.get(deployment_id)
        self._tx.execute(update(deployments).where(deployments.c.id == deployment_id)
                         .values(verified=codec.verified_to_json(record)))
        return self.get(deployment_id)

    def get(self, deployment_id: int) -> Deployment:
        row = self._tx.execute(select(deployments)
                               .where(deployments.c.id == deployment_id)).first()
        if row is None:
            raise rc.unknown_deployment(deployment_id)
        return codec.deployment_from_json(row._mapping)

    def generation(self, env: str) -> int:
        found = self._tx.execute(select(generations.c.value)
                                 .where(generations.c.env == env)).scalar()
        return 0 if found is None else int(found)

    def _desired_changed(self, env: str) -> None:
        """Bump the env's generation; on PostgreSQL also wake the replicas (sent at commit)."""
        stmt = self._tx.insert(generations).values(env=env, value=1)
        self._tx.execute(stmt.on_conflict_do_update(
            index_elements=["env"], set_={"value": generations.c.value + 1}))
        if self._tx.is_postgres:
            self._tx.execute(select(func.pg_notify(NOTIFY_CHANNEL, env)))
