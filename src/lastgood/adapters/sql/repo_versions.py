"""Models and versions in SQL: numbers come from a locked counter on the model's row."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Text, func, select, type_coerce, update

from lastgood.adapters import registry_rows as rows
from lastgood.adapters import registry_rules as rc
from lastgood.adapters.sql.session import Tx
from lastgood.adapters.sql.tables import models, versions
from lastgood.domain.errors import AlreadyExists
from lastgood.domain.versions import Model, NewVersion, Version, VersionStatus


def known_models(tx: Tx) -> list[str]:
    return list(tx.execute(select(models.c.name).order_by(models.c.name)).scalars())


def last_number(tx: Tx, model: str) -> int | None:
    """The model's last allocated number, or None for an unknown model."""
    found = tx.execute(select(models.c.last_number).where(models.c.name == model)).scalar()
    return None if found is None else int(found)


def require_model(tx: Tx, model: str) -> int:
    """The model's last number; raises NotFound naming the known models."""
    number = last_number(tx, model)
    if number is None:
        raise rc.unknown_model(model, known_models(tx))
    return number


class SqlModels:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def list(self) -> list[Model]:
        return select_models(self._tx, None)

    def get(self, name: str) -> Model:
        found = select_models(self._tx, name)
        if not found:
            raise rc.unknown_model(name, known_models(self._tx))
        return found[0]


def select_models(tx: Tx, name: str | None) -> list[Model]:
    """Models with their last number and version count, by name (one model when `name`)."""
    count = func.count(versions.c.id).label("version_count")
    query = (select(models.c.name, models.c.created_at, models.c.last_number, count)
             .select_from(models.outerjoin(versions, versions.c.model == models.c.name))
             .group_by(models.c.name, models.c.created_at, models.c.last_number)
             .order_by(models.c.name))
    if name is not None:
        query = query.where(models.c.name == name)
    return [Model(name=r.name, created_at=r.created_at, latest_number=r.last_number,
                  version_count=r.version_count) for r in tx.execute(query)]


class SqlVersions:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def add(self, new: NewVersion, *, at: datetime, actor: str) -> Version:
        if new.tag is not None:
            self._refuse_taken_tag(new.model, new.tag)
        number = self._allocate(new.model, rc.utc(at))
        row = rows.version_row(new, number=number, at=rc.utc(at), actor=actor)
        try:
            self._tx.execute(versions.insert().values(**row))
        except AlreadyExists as exc:  # a concurrent registration took the tag first
            raise rc.duplicate_tag(new.model, new.tag or "", None) from exc
        return self.get(new.model, number)  # as stored, JSON round trip included

    def _refuse_taken_tag(self, model: str, tag: str) -> None:
        taken = self._tx.execute(select(versions.c.number).where(
            versions.c.model == model, versions.c.tag == tag)).scalar()
        if taken is not None:
            raise rc.duplicate_tag(model, tag, int(taken))

    def _allocate(self, model: str, at: datetime) -> int:
        """The model's next number. The UPDATE locks the model's row (PostgreSQL) until commit,
        so concurrent registrations queue here and never share or skip a number."""
        bump = (update(models).where(models.c.name == model)
                .values(last_number=models.c.last_number + 1).returning(models.c.last_number))
        number = self._tx.execute(bump).scalar()
        if number is None:
            create = self._tx.insert(models).values(name=model, created_at=at, last_number=0)
            self._tx.execute(create.on_conflict_do_nothing(index_elements=["name"]))
            number = self._tx.execute(bump).scalar_one()
        return int(number)

    def get(self, model: str, ref: int | str) -> Version:
        match = versions.c.number == ref if isinstance(ref, int) else versions.c.tag == ref
        row = self._tx.execute(select(versions).where(versions.c.model == model, match)).first()
        if row is None:
            raise rc.unknown_version(model, ref, require_model(self._tx, model))
        return rows.to_version(row._mapping)

    def list(self, model: str, *, limit: int | None = None, offset: int = 0) -> list[Version]:
        require_model(self._tx, model)
        query = (select(versions).where(versions.c.model == model)
                 .order_by(versions.c.number.desc()).limit(limit).offset(offset))
        return [rows.to_version(r._mapping) for r in self._tx.execute(query)]

    def set_status(self, model: str, number: int, status: VersionStatus) -> Version:
        self.get(model, number)
        self._tx.execute(update(versions).where(versions.c.model == model,
                                                versions.c.number == number)
                         .values(status=status.value))
        return self.get(model, number)

    def with_digest(self, model: str, digest: str, *, key: str,
                    origin: str | None) -> Version | None:
        query = (select(versions).where(versions.c.model == model, versions.c.digest == digest)
                 .order_by(versions.c.number))
        if origin is not None:  # a text pre-filter (provenance is JSON text); checked exactly below
            prov = type_coerce(versions.c.provenance, Text)  # compare the stored text itself
            query = query.where(prov.contains(json.dumps(origin), autoescape=True))
        for row in self._tx.execute(query):
            found = rows.to_version(row._mapping)
            if origin is None or found.provenance.get(key) == origin:
                return found
        return None

    def referenced_blobs(self) -> set[str]:
        manifests = self._tx.execute(select(versions.c.manifest)).scalars()
        return {f["sha256"] for manifest in manifests for f in manifest}

