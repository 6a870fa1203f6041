"""The inverse of `views`: JSON views back into domain records (for the remote CLI).

For every record `x`, `view(parse(view(x))) == view(x)`, so a face that renders parsed records
prints exactly what it prints for local ones. A version's summary view (no file list) parses into
a version whose manifest is one placeholder entry carrying the total size.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from lastgood.domain.access import ApiToken, Role, SigningKey
from lastgood.domain.audit import ChainReport, Event, EventDraft
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
from lastgood.domain.readiness import verdict_from_json
from lastgood.domain.versions import (
    ArtifactFile,
    Column,
    Manifest,
    Model,
    Resources,
    Runtime,
    Schema,
    Version,
    VersionStatus,
    golden_example,
)
from lastgood.ports import ArchiveRecord, ReplicaReport
from lastgood.services.deployments import RollbackPlan, Status

View = Mapping[str, Any]


def at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def at_(text: str) -> datetime:
    return datetime.fromisoformat(text)


def parse_model(d: View) -> Model:
    return Model(name=d["name"], created_at=at_(d["created_at"]),
                 latest_number=d["latest_version"], version_count=d["versions"])


def _columns(items: Any) -> tuple[Column, ...]:
    return tuple(Column(c["name"], c["dtype"], tuple(c.get("shape", ())),
                        bool(c.get("optional", False))) for c in items or ())


def _manifest(d: View) -> Manifest:
    if "files" in d:
        return Manifest(tuple(ArtifactFile(f["path"], f["size"], f["sha256"])
                              for f in d["files"]))
    return Manifest((ArtifactFile("", d["size"], ""),))  # summary: only the total size is known


def parse_version(d: View) -> Version:
    """A version from its full or summary view."""
    full: dict[str, Any] = {}
    if "files" in d:
        rt, res = d["runtime"], d["runtime"]["resources"]
        full = {
            "runtime": Runtime(python=rt["python"], packages=dict(rt["packages"]),
                               resources=Resources(res["memory_mb"], res["cpus"], res["gpus"])),
            "schema": Schema(_columns(d["schema"]["inputs"]), _columns(d["schema"]["outputs"])),
            "golden": tuple(golden_example(g["input"], g["output"], g["tolerance"],
                                           g.get("source"))
                            for g in d["golden"]),
            "provenance": dict(d["provenance"]), "labels": tuple(d["labels"]),
            "signature": d["signature"], "signed_by": d["signed_by"],
        }
    return Version(model=d["name"], number=d["version"], manifest=_manifest(d),
                   digest=d["digest"], flavor=d["flavor"], created_at=at_(d["created_at"]),
                   created_by=d["created_by"], metrics=dict(d["metrics"]), tag=d["tag"],
                   unsafe_format=d["unsafe_format"], status=VersionStatus(d["status"]), **full)


def parse_event(d: View) -> Event:
    draft = EventDraft(action=d["action"], actor=d["actor"], model=d["model"], env=d["env"],
                       subject=d["subject"], reason=d["reason"], before=d["before"],
                       after=d["after"], evidence=dict(d["evidence"]), outcome=d["outcome"])
    return Event(seq=d["seq"], at=at_(d["at"]), draft=draft, prev_hash=d["prev_hash"],
                 hash=d["hash"])


def parse_verified(d: View | None) -> VerifiedRecord | None:
    if d is None:
        return None
    return VerifiedRecord(baseline=dict(d["baseline"]), window_start=at_(d["window_start"]),
                          window_end=at_(d["window_end"]), approver=d["approver"],
                          at=at_(d["at"]), reason=d["reason"])


def parse_deployment(d: View) -> Deployment:
    return Deployment(id=d["id"], model=d["model"], env=d["env"], version=d["version"],
                      started_at=at_(d["started_at"]), deployed_by=d["deployed_by"],
                      reason=d["reason"], operation_id=d["operation_id"],
                      ended_at=at(d["ended_at"]),
                      end=DeploymentEnd(d["end"]) if d["end"] else None,
                      end_reason=d["end_reason"], verified=parse_verified(d["verified"]))


def parse_check(d: View) -> CheckResult:
    return CheckResult(d["name"], CheckStatus(d["status"]), d["summary"], dict(d["evidence"]),
                       d["duration_ms"])


def parse_candidate(d: View) -> Candidate:
    return Candidate(version=d["version"], deployment_id=d["deployment_id"], tag=d["tag"],
                     refusals=tuple(d["refusals"]),
                     checks=tuple(parse_check(c) for c in d["checks"]))


def parse_operation(d: View) -> Operation:
    return Operation(id=d["id"], kind=OperationKind(d["kind"]), model=d["model"], env=d["env"],
                     phase=Phase(d["phase"]), actor=d["actor"], reason=d["reason"],
                     created_at=at_(d["created_at"]), updated_at=at_(d["updated_at"]),
                     from_version=d["from_version"], target_version=d["target_version"],
                     forced=d["forced"],
                     candidates=tuple(parse_candidate(c) for c in d["candidates"]),
                     error=d["error"], archive_id=d["archive_id"], trigger=dict(d["trigger"]),
                     resumed=tuple(d.get("resumed", ())))


def parse_environment(d: View) -> Environment:
    schema, outputs = d["feature_schema"], d["expected_outputs"]
    return Environment(
        name=d["name"], feature_schema=_columns(schema) if schema else None,
        expected_outputs=_columns(outputs) if outputs else None,
        runtime_drift=RuntimeDrift(d["runtime_drift"]), switch_mode=SwitchMode(d["switch_mode"]),
        deploy_command=d["deploy_command"],
        checks=tuple(CustomCheck(c["name"], c["command"], c["entry_point"], c["timeout_s"])
                     for c in d["checks"]),
        require_signature=d["require_signature"], trusted_keys=tuple(d["trusted_keys"]),
        switch_timeout_s=d["switch_timeout_s"],
        mlflow_alias="" if d.get("mlflow_alias", d["name"]) == d["name"] else d["mlflow_alias"],
        mlflow_mode=MlflowMode(d.get("mlflow_mode", MlflowMode.OFF.value)))


def parse_replica(d: View, *, model: str, env: str) -> ReplicaReport:
    return ReplicaReport(replica_id=d["replica_id"], model=model, env=env, version=d["version"],
                         since=at_(d["since"]), seen_at=at_(d["seen_at"]), state=d["state"],
                         detail=d["detail"], url=d.get("url", ""), evidence=d.get("evidence"))


def parse_archive(d: View) -> ArchiveRecord:
    return ArchiveRecord(id=d["id"], model=d["model"], env=d["env"], version=d["version"],
                         operation_id=d["operation_id"], sha256=d["sha256"], size=d["size"],
                         created_at=at_(d["created_at"]), manifest=dict(d["manifest"]))


def parse_status(d: View) -> Status:
    model, env = d["model"], d["env"]
    return Status(
        model=model, env=env,
        live=parse_deployment(d["desired"]) if d["desired"] else None,
        live_version=parse_version(d["version"]) if d["version"] else None,
        standby=tuple(d["standby"]),
        replicas=tuple(parse_replica(r, model=model, env=env) for r in d["replicas"]),
        unfinished=tuple(parse_operation(o) for o in d["unfinished"]),
        last_operation=parse_operation(d["last_operation"]) if d["last_operation"] else None,
        readiness=verdict_from_json(d["readiness"]) if d.get("readiness") else None)


def parse_plan(d: View) -> RollbackPlan:
    candidates = tuple(parse_candidate(c) for c in d["candidates"])
    target = next((c for c in candidates if c.version == d["target"] and c.accepted), None)
    return RollbackPlan(model=d["model"], env=d["env"], live=d["live"], target=target,
                        candidates=candidates)


def parse_chain(d: View) -> ChainReport:
    return ChainReport(checked=d["checked"], first_bad=d["first_bad"], problem=d["problem"])


def parse_token(d: View) -> ApiToken:
    """A token record as the API shows it (the hash is never sent, so it is empty here)."""
    return ApiToken(id=d["id"], owner=d["owner"], role=Role.parse(d["role"]), token_hash="",
                    created_at=at_(d["created_at"]), created_by=d["created_by"],
                    expires_at=at(d["expires_at"]), revoked_at=at(d["revoked_at"]))


def parse_key(d: View) -> SigningKey:
    return SigningKey(name=d["name"], public_key=d["public_key"], fingerprint=d["fingerprint"],
                      created_at=at_(d["created_at"]), created_by=d["created_by"],
                      algorithm=d["algorithm"])
