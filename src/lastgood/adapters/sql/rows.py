"""Row <-> domain conversion, in one place: each `*_row` gives column values, each `to_*` a record.

JSON columns hold plain dicts and lists; nested datetimes are ISO strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping

from lastgood.adapters.registry_rules import json_safe
from lastgood.domain.audit import Event, EventDraft
from lastgood.domain.deployments import (
    CustomCheck,
    Deployment,
    DeploymentEnd,
    Environment,
    MlflowMode,
    RuntimeDrift,
    SwitchMode,
    VerifiedRecord,
)
from lastgood.domain.operations import (
    Candidate,
    CheckResult,
    CheckStatus,
    Operation,
    OperationKind,
    Phase,
)
from lastgood.domain.versions import (
    ArtifactFile,
    Column,
    Manifest,
    NewVersion,
    Resources,
    Runtime,
    Schema,
    Version,
    VersionStatus,
    golden_example,
)
from lastgood.ports import ArchiveRecord, ReplicaReport

Row = RowMapping | Mapping[str, Any]


# -- versions ---------------------------------------------------------------------------------

def version_row(new: NewVersion, *, number: int, at: datetime, actor: str) -> dict[str, Any]:
    return {
        "model": new.model, "number": number, "tag": new.tag, "digest": new.manifest.digest,
        "flavor": new.flavor, "created_at": at, "created_by": actor,
        "status": VersionStatus.ACTIVE.value, "unsafe_format": new.unsafe_format,
        "signature": new.signature, "signed_by": new.signed_by,
        "manifest": [asdict(f) for f in new.manifest.files],
        "runtime": asdict(new.runtime),
        "schema": {"inputs": columns_json(new.schema.inputs),
                   "outputs": columns_json(new.schema.outputs)},
        "golden": [{**asdict(g), "source": str(g.source)} for g in new.golden],
        "metrics": dict(new.metrics), "provenance": dict(new.provenance),
        "labels": list(new.labels),
    }


def to_version(row: Row) -> Version:
    runtime = row["runtime"]
    return Version(
        model=row["model"], number=row["number"],
        manifest=Manifest(files=tuple(ArtifactFile(**f) for f in row["manifest"])),
        digest=row["digest"], flavor=row["flavor"], created_at=row["created_at"],
        created_by=row["created_by"],
        runtime=Runtime(python=runtime["python"], packages=runtime["packages"],
                        resources=Resources(**runtime["resources"])),
        schema=Schema(inputs=to_columns(row["schema"]["inputs"]),
                      outputs=to_columns(row["schema"]["outputs"])),
        golden=tuple(golden_example(**g) for g in row["golden"]),
        metrics=row["metrics"], provenance=row["provenance"], labels=tuple(row["labels"]),
        tag=row["tag"], unsafe_format=row["unsafe_format"], status=VersionStatus(row["status"]),
        signature=row["signature"], signed_by=row["signed_by"],
    )


def columns_json(columns: tuple[Column, ...] | None) -> list[dict[str, Any]] | None:
    return None if columns is None else [asdict(c) for c in columns]


def to_columns(rows: list[dict[str, Any]]) -> tuple[Column, ...]:
    return tuple(Column(name=c["name"], dtype=c["dtype"], shape=tuple(c["shape"]),
                        optional=bool(c.get("optional", False))) for c in rows)


# -- events -----------------------------------------------------------------------------------

def event_row(event: Event) -> dict[str, Any]:
    d = event.draft
    return {
        "seq": event.seq, "at": event.at, "action": d.action, "actor": d.actor,
        "model": d.model, "env": d.env, "subject": d.subject, "reason": d.reason,
        "before": d.before, "after": d.after, "evidence": d.evidence, "outcome": d.outcome,
        "prev_hash": event.prev_hash, "hash": event.hash,
    }


def stored_draft(draft: EventDraft) -> EventDraft:
    """The draft as it will read back from its JSON columns (so the hash is sealed over that)."""
    return EventDraft(
        action=draft.action, actor=draft.actor, model=draft.model, env=draft.env,
        subject=draft.subject, reason=draft.reason, before=json_safe(draft.before),
        after=json_safe(draft.after), evidence=json_safe(draft.evidence) or {},
        outcome=draft.outcome,
    )


def to_event(row: Row) -> Event:
    draft = EventDraft(
        action=row["action"], actor=row["actor"], model=row["model"], env=row["env"],
        subject=row["subject"], reason=row["reason"], before=row["before"],
        after=row["after"], evidence=row["evidence"], outcome=row["outcome"],
    )
    return Event(seq=row["seq"], at=row["at"], draft=draft, prev_hash=row["prev_hash"],
                 hash=row["hash"])


# -- environments and deployments -------------------------------------------------------------

def environment_settings(env: Environment) -> dict[str, Any]:
    return {
        "feature_schema": columns_json(env.feature_schema),
        "expected_outputs": columns_json(env.expected_outputs),
        "runtime_drift": env.runtime_drift.value, "switch_mode": env.switch_mode.value,
        "deploy_command": env.deploy_command, "checks": [asdict(c) for c in env.checks],
        "require_signature": env.require_signature, "trusted_keys": list(env.trusted_keys),
        "switch_timeout_s": env.switch_timeout_s,
        "mlflow_alias": env.mlflow_alias, "mlflow_mode": env.mlflow_mode.value,
    }


def to_environment(name: str, s: Mapping[str, Any]) -> Environment:
    schema, outputs = s.get("feature_schema"), s.get("expected_outputs")
    default = Environment(name=name)
    return Environment(
        name=name,
        feature_schema=None if schema is None else to_columns(schema),
        expected_outputs=None if outputs is None else to_columns(outputs),
        runtime_drift=RuntimeDrift(s.get("runtime_drift", default.runtime_drift)),
        switch_mode=SwitchMode(s.get("switch_mode", default.switch_mode)),
        deploy_command=s.get("deploy_command", ""),
        checks=tuple(CustomCheck(**c) for c in s.get("checks", ())),
        require_signature=s.get("require_signature", False),
        trusted_keys=tuple(s.get("trusted_keys", ())),
        switch_timeout_s=s.get("switch_timeout_s", default.switch_timeout_s),
        mlflow_alias=s.get("mlflow_alias", ""),
        mlflow_mode=MlflowMode(s.get("mlflow_mode", default.mlflow_mode)),
    )


def verified_json(record: VerifiedRecord) -> dict[str, Any]:
    return {
        "baseline": dict(record.baseline), "window_start": record.window_start.isoformat(),
        "window_end": record.window_end.isoformat(), "approver": record.approver,
        "at": record.at.isoformat(), "reason": record.reason,
        "distribution": json_safe(record.distribution) or {},
    }


def to_verified(v: Mapping[str, Any]) -> VerifiedRecord:
    return VerifiedRecord(
        baseline=v["baseline"], window_start=datetime.fromisoformat(v["window_start"]),
        window_end=datetime.fromisoformat(v["window_end"]), approver=v["approver"],
        at=datetime.fromisoformat(v["at"]), reason=v["reason"], distribution=v["distribution"],
    )


def to_deployment(row: Row) -> Deployment:
    return Deployment(
        id=row["id"], model=row["model"], env=row["env"], version=row["version"],
        started_at=row["started_at"], deployed_by=row["deployed_by"], reason=row["reason"],
        operation_id=row["operation_id"], ended_at=row["ended_at"],
        end=None if row["end"] is None else DeploymentEnd(row["end"]),
        end_reason=row["end_reason"],
        verified=None if row["verified"] is None else to_verified(row["verified"]),
    )


# -- operations -------------------------------------------------------------------------------

def operation_row(op: Operation) -> dict[str, Any]:
    return {
        "id": op.id, "kind": op.kind.value, "model": op.model, "env": op.env,
        "phase": op.phase.value, "actor": op.actor, "reason": op.reason,
        "created_at": op.created_at, "updated_at": op.updated_at,
        "from_version": op.from_version, "target_version": op.target_version,
        "forced": op.forced, "candidates": [candidate_json(c) for c in op.candidates],
        "error": op.error, "archive_id": op.archive_id, "trigger": json_safe(op.trigger) or {},
    }


def candidate_json(c: Candidate) -> dict[str, Any]:
    return {
        "version": c.version, "deployment_id": c.deployment_id, "tag": c.tag,
        "refusals": list(c.refusals),
        "checks": [{"name": r.name, "status": r.status.value, "summary": r.summary,
                    "evidence": json_safe(r.evidence) or {}, "duration_ms": r.duration_ms}
                   for r in c.checks],
    }


def to_candidate(c: Mapping[str, Any]) -> Candidate:
    checks = tuple(CheckResult(name=r["name"], status=CheckStatus(r["status"]),
                               summary=r["summary"], evidence=r["evidence"],
                               duration_ms=r["duration_ms"]) for r in c["checks"])
    return Candidate(version=c["version"], deployment_id=c["deployment_id"], tag=c["tag"],
                     refusals=tuple(c["refusals"]), checks=checks)


def to_operation(row: Row) -> Operation:
    return Operation(
        id=row["id"], kind=OperationKind(row["kind"]), model=row["model"], env=row["env"],
        phase=Phase(row["phase"]), actor=row["actor"], reason=row["reason"],
        created_at=row["created_at"], updated_at=row["updated_at"],
        from_version=row["from_version"], target_version=row["target_version"],
        forced=row["forced"], candidates=tuple(to_candidate(c) for c in row["candidates"]),
        error=row["error"], archive_id=row["archive_id"], trigger=row["trigger"],
    )


# -- archives and replicas --------------------------------------------------------------------

def archive_row(record: ArchiveRecord) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in ArchiveRecord.__dataclass_fields__}
    row["manifest"] = json_safe(record.manifest) or {}
    return row


def to_archive(row: Row) -> ArchiveRecord:
    return ArchiveRecord(**{name: row[name] for name in ArchiveRecord.__dataclass_fields__})


def replica_row(report: ReplicaReport) -> dict[str, Any]:
    return {name: getattr(report, name) for name in ReplicaReport.__dataclass_fields__}


def to_replica(row: Row) -> ReplicaReport:
    return ReplicaReport(**{name: row[name] for name in ReplicaReport.__dataclass_fields__})
