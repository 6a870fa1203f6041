"""Rows <-> records for the registry adapter: `*_row` gives column values, `to_*` a record.

A row is the record's JSON from `domain.codec` (its one serialisation) with times as datetimes
for the datetime columns. Rows of events, deployments, operations and archives read back with the
codec's own readers, which take either.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lastgood.domain import codec
from lastgood.domain.access import ApiToken, Role, SigningKey
from lastgood.domain.archives import ArchiveRecord
from lastgood.domain.audit import Event
from lastgood.domain.deployments import Environment, ReplicaReport
from lastgood.domain.operations import Operation
from lastgood.domain.versions import NewVersion, Version, VersionStatus

Row = Mapping[Any, Any]  # a decoded row of the DB-API adapter

def _timed(json: dict[str, Any], record: object, *names: str) -> dict[str, Any]:
    """The record's JSON with the named times as they are (for datetime columns)."""
    return json | {name: getattr(record, name) for name in names}


def version_row(new: NewVersion, *, number: int, at: datetime, actor: str) -> dict[str, Any]:
    contents = codec.contents_to_json(new)
    return {
        "model": new.model, "number": number, "tag": new.tag, "digest": new.manifest.digest,
        "flavor": new.flavor, "created_at": at, "created_by": actor,
        "status": VersionStatus.ACTIVE.value, "unsafe_format": new.unsafe_format,
        "signature": new.signature, "signed_by": new.signed_by,
        "manifest": contents["files"], "runtime": contents["runtime"],
        "schema": contents["schema"], "golden": contents["golden"],
        "metrics": dict(new.metrics), "provenance": contents["provenance"],
        "labels": contents["labels"],
    }


def to_version(row: Row) -> Version:
    """The table names three of the version's JSON keys its own way."""
    return codec.version_from_json({**row, "name": row["model"], "version": row["number"],
                                    "files": row["manifest"]})


def event_row(event: Event) -> dict[str, Any]:
    return _timed(codec.event_to_json(event), event, "at")


def environment_settings(env: Environment) -> dict[str, Any]:
    return {k: v for k, v in codec.environment_to_json(env).items() if k != "name"}


def to_environment(name: str, settings: Mapping[str, Any]) -> Environment:
    return codec.environment_from_json({**settings, "name": name})


def operation_row(op: Operation) -> dict[str, Any]:
    return _timed(codec.operation_to_json(op), op, "created_at", "updated_at")


def archive_row(record: ArchiveRecord) -> dict[str, Any]:
    return _timed(codec.archive_to_json(record), record, "created_at")


def replica_row(report: ReplicaReport) -> dict[str, Any]:
    return _timed(codec.replica_to_json(report), report, "model", "env", "since", "seen_at")


def to_replica(row: Row) -> ReplicaReport:
    return codec.replica_from_json(row, model=row["model"], env=row["env"])



def token_row(t: ApiToken) -> dict[str, Any]:
    return {"id": t.id, "owner": t.owner, "role": t.role.label, "token_hash": t.token_hash,
            "created_at": t.created_at, "created_by": t.created_by,
            "expires_at": t.expires_at, "revoked_at": t.revoked_at}


def to_token(row: Row) -> ApiToken:
    return ApiToken(id=row["id"], owner=row["owner"], role=Role.parse(row["role"]),
                    token_hash=row["token_hash"], created_at=row["created_at"],
                    created_by=row["created_by"], expires_at=row["expires_at"],
                    revoked_at=row["revoked_at"])


def key_row(key: SigningKey) -> dict[str, Any]:
    return {"name": key.name, "algorithm": key.algorithm, "public_key": key.public_key,
            "fingerprint": key.fingerprint, "created_at": key.created_at,
            "created_by": key.created_by}


def to_key(row: Row) -> SigningKey:
    return SigningKey(name=row["name"], public_key=row["public_key"],
                      fingerprint=row["fingerprint"], created_at=row["created_at"],
                      created_by=row["created_by"], algorithm=row["algorithm"])
