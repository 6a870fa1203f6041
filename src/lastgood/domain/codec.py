"""Every record as JSON and back, once: the SQL rows' JSON, the views (CLI --json, SDK, REST API),
the remote client's parser, audit event bodies and archive bundles all use these.

`*_to_json` gives plain dicts and lists with times as ISO text; `*_from_json` reads that back, and
also a SQL row, whose times are datetimes already. For every record `x`,
`to_json(from_json(to_json(x))) == to_json(x)`. A version's summary (no file list) reads back as a
version whose manifest is one placeholder entry carrying the total size.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from lastgood.domain.access import ApiToken, Role, SigningKey
from lastgood.domain.archives import ArchiveRecord
from lastgood.domain.audit import ChainReport, Event, EventDraft
from lastgood.domain.deployments import (
    CustomCheck,
    Deployment,
    DeploymentEnd,
    Environment,
    MlflowMode,
    ReplicaReport,
    ReplicaState,
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
    GoldenExample,
    Manifest,
    Model,
    NewVersion,
    Param,
    Resources,
    Runtime,
    Schema,
    Version,
    VersionStatus,
    golden_example,
)

JSON = Mapping[Any, Any]  # parsed JSON, or a SQL row (whose keys may also be its columns)


def iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def when(value: str | datetime) -> datetime:
    """A time from its ISO text, or as it is (a SQL row's column)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def when_or_none(value: str | datetime | None) -> datetime | None:
    return when(value) if value else None


def json_safe(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """`value` as it reads back from JSON: tuples become lists, other types strings.

    The audit hash uses `default=str` too, so a value hashes the same before and after storage.
    """
    if value is None:
        return None
    loaded: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return loaded


# -- models and versions ----------------------------------------------------------------------

def model_to_json(m: Model) -> dict[str, Any]:
    return {"name": m.name, "created_at": iso(m.created_at), "latest_version": m.latest_number,
            "versions": m.version_count}


def model_from_json(d: JSON) -> Model:
    return Model(name=d["name"], created_at=when(d["created_at"]),
                 latest_number=d["latest_version"], version_count=d["versions"])


def columns_to_json(columns: Iterable[Column]) -> list[dict[str, Any]]:
    """Columns as the schema document shape (shape and optional only when they say something)."""
    return [{"name": c.name, "dtype": c.dtype, **({"shape": list(c.shape)} if c.shape else {}),
             **({"optional": True} if c.optional else {})} for c in columns]


def columns_from_json(items: Iterable[JSON] | None) -> tuple[Column, ...]:
    return tuple(Column(c["name"], c["dtype"], tuple(c.get("shape", ())),
                        bool(c.get("optional", False))) for c in items or ())


def params_to_json(params: Iterable[Param]) -> list[dict[str, Any]]:
    """Inference params as MLflow's ParamSchema writes them."""
    return [{"name": p.name, "type": p.dtype, "default": p.default,
             "shape": list(p.shape) if p.shape else None} for p in params]


def params_from_json(items: Iterable[JSON] | None) -> tuple[Param, ...]:
    return tuple(Param(p["name"], p["type"], p.get("default"), tuple(p.get("shape") or ()))
                 for p in items or ())


def golden_to_json(g: GoldenExample) -> dict[str, Any]:
    return {"input": dict(g.inputs), "output": g.expected, "tolerance": g.tolerance,
            "source": str(g.source)}


def golden_from_json(g: JSON) -> GoldenExample:
    # Rows written before this module spelt the first two keys after the record's fields.
    inputs = g["input"] if "input" in g else g["inputs"]
    expected = g["output"] if "input" in g else g["expected"]
    return golden_example(inputs, expected, g.get("tolerance", 1e-6), g.get("source"))


def contents_to_json(v: Version | NewVersion) -> dict[str, Any]:
    """What a version holds beyond its summary: files, runtime, schema, golden examples…"""
    res = v.runtime.resources
    return {
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in v.manifest.files],
        "runtime": {"python": v.runtime.python, "packages": dict(v.runtime.packages),
                    "resources": {"memory_mb": res.memory_mb, "cpus": res.cpus,
                                  "gpus": res.gpus}},
        "schema": {"inputs": columns_to_json(v.schema.inputs),
                   "outputs": columns_to_json(v.schema.outputs),
                   **({"params": params_to_json(v.schema.params)} if v.schema.params else {})},
        "golden": [golden_to_json(g) for g in v.golden],
        "provenance": dict(v.provenance), "labels": list(v.labels),
        "signature": v.signature, "signed_by": v.signed_by,
    }


def version_to_json(v: Version, *, full: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": v.model, "version": v.number, "tag": v.tag, "digest": v.digest,
        "flavor": v.flavor, "status": str(v.status), "unsafe_format": v.unsafe_format,
        "created_at": iso(v.created_at), "created_by": v.created_by,
        "metrics": dict(v.metrics), "size": v.manifest.total_size,
    }
    return out | contents_to_json(v) if full else out


def _manifest(d: JSON) -> Manifest:
    if "files" in d:
        return Manifest(tuple(ArtifactFile(f["path"], f["size"], f["sha256"])
                              for f in d["files"]))
    return Manifest((ArtifactFile("", d["size"], ""),))  # summary: only the total size is known


def _contents(d: JSON) -> dict[str, Any]:
    if "files" not in d:
        return {}
    rt, res = d["runtime"], d["runtime"]["resources"]
    return {
        "runtime": Runtime(python=rt["python"], packages=dict(rt["packages"]),
                           resources=Resources(res["memory_mb"], res["cpus"], res["gpus"])),
        "schema": Schema(columns_from_json(d["schema"]["inputs"]),
                         columns_from_json(d["schema"]["outputs"]),
                         params_from_json(d["schema"].get("params"))),
        "golden": tuple(golden_from_json(g) for g in d["golden"]),
        "provenance": dict(d["provenance"]), "labels": tuple(d["labels"]),
        "signature": d["signature"], "signed_by": d["signed_by"],
    }


def version_from_json(d: JSON) -> Version:
    """A version from its full or summary JSON."""
    return Version(model=d["name"], number=d["version"], manifest=_manifest(d),
                   digest=d["digest"], flavor=d["flavor"], created_at=when(d["created_at"]),
                   created_by=d["created_by"], metrics=dict(d["metrics"]), tag=d["tag"],
                   unsafe_format=d["unsafe_format"], status=VersionStatus(d["status"]),
                   **_contents(d))


# -- events -----------------------------------------------------------------------------------

def event_to_json(e: Event) -> dict[str, Any]:
    d = e.draft
    return {"seq": e.seq, "at": iso(e.at), "action": d.action, "actor": d.actor,
            "model": d.model, "env": d.env, "subject": d.subject, "reason": d.reason,
            "outcome": d.outcome, "before": d.before, "after": d.after,
            "evidence": dict(d.evidence), "prev_hash": e.prev_hash, "hash": e.hash}


def event_from_json(d: JSON) -> Event:
    draft = EventDraft(action=d["action"], actor=d["actor"], model=d["model"], env=d["env"],
                       subject=d["subject"], reason=d["reason"], before=d["before"],
                       after=d["after"], evidence=dict(d["evidence"]), outcome=d["outcome"])
    return Event(seq=d["seq"], at=when(d["at"]), draft=draft, prev_hash=d["prev_hash"],
                 hash=d["hash"])


def stored_draft(draft: EventDraft) -> EventDraft:
    """The draft as it reads back from storage (so the hash is sealed over that)."""
    return EventDraft(
        action=draft.action, actor=draft.actor, model=draft.model, env=draft.env,
        subject=draft.subject, reason=draft.reason, before=json_safe(draft.before),
        after=json_safe(draft.after), evidence=json_safe(draft.evidence) or {},
        outcome=draft.outcome,
    )


def chain_to_json(report: ChainReport) -> dict[str, Any]:
    return {"ok": report.ok, "checked": report.checked, "first_bad": report.first_bad,
            "problem": report.problem}


def chain_from_json(d: JSON) -> ChainReport:
    return ChainReport(checked=d["checked"], first_bad=d["first_bad"], problem=d["problem"])


# -- environments, deployments, replicas ------------------------------------------------------

def custom_check_to_json(c: CustomCheck) -> dict[str, Any]:
    return {"name": c.name, "command": c.command, "entry_point": c.entry_point,
            "timeout_s": c.timeout_s}


def environment_to_json(e: Environment) -> dict[str, Any]:
    schema, outputs = e.feature_schema, e.expected_outputs
    return {
        "name": e.name,
        "feature_schema": columns_to_json(schema) if schema is not None else None,
        "expected_outputs": columns_to_json(outputs) if outputs is not None else None,
        "runtime_drift": str(e.runtime_drift), "switch_mode": str(e.switch_mode),
        "deploy_command": e.deploy_command,
        "checks": [custom_check_to_json(c) for c in e.checks],
        "require_signature": e.require_signature, "trusted_keys": list(e.trusted_keys),
        "switch_timeout_s": e.switch_timeout_s,
        "mlflow_alias": e.alias, "mlflow_mode": str(e.mlflow_mode),
    }


def environment_from_json(d: JSON) -> Environment:
    """An environment; settings it does not name keep their defaults."""
    name, schema, outputs = d["name"], d.get("feature_schema"), d.get("expected_outputs")
    default, alias = Environment(name=name), d.get("mlflow_alias", "")
    return Environment(
        name=name, feature_schema=None if schema is None else columns_from_json(schema),
        expected_outputs=None if outputs is None else columns_from_json(outputs),
        runtime_drift=RuntimeDrift(d.get("runtime_drift", default.runtime_drift)),
        switch_mode=SwitchMode(d.get("switch_mode", default.switch_mode)),
        deploy_command=d.get("deploy_command", ""),
        checks=tuple(CustomCheck(c["name"], c["command"], c["entry_point"], c["timeout_s"])
                     for c in d.get("checks", ())),
        require_signature=d.get("require_signature", False),
        trusted_keys=tuple(d.get("trusted_keys", ())),
        switch_timeout_s=d.get("switch_timeout_s", default.switch_timeout_s),
        mlflow_alias="" if alias == name else alias,
        mlflow_mode=MlflowMode(d.get("mlflow_mode", default.mlflow_mode)))


def verified_to_json(r: VerifiedRecord) -> dict[str, Any]:
    return {"baseline": dict(r.baseline), "window_start": iso(r.window_start),
            "window_end": iso(r.window_end), "approver": r.approver, "at": iso(r.at),
            "reason": r.reason, "distribution": json_safe(r.distribution) or {}}


def verified_from_json(d: JSON) -> VerifiedRecord:
    return VerifiedRecord(baseline=dict(d["baseline"]), window_start=when(d["window_start"]),
                          window_end=when(d["window_end"]), approver=d["approver"],
                          at=when(d["at"]), reason=d["reason"],
                          distribution=dict(d.get("distribution") or {}))


def deployment_to_json(d: Deployment) -> dict[str, Any]:
    return {"id": d.id, "model": d.model, "env": d.env, "version": d.version,
            "started_at": iso(d.started_at), "deployed_by": d.deployed_by, "reason": d.reason,
            "operation_id": d.operation_id, "ended_at": iso(d.ended_at),
            "end": str(d.end) if d.end else None, "end_reason": d.end_reason,
            "verified": verified_to_json(d.verified) if d.verified else None}


def deployment_from_json(d: JSON) -> Deployment:
    return Deployment(id=d["id"], model=d["model"], env=d["env"], version=d["version"],
                      started_at=when(d["started_at"]), deployed_by=d["deployed_by"],
                      reason=d["reason"], operation_id=d["operation_id"],
                      ended_at=when_or_none(d["ended_at"]),
                      end=DeploymentEnd(d["end"]) if d["end"] else None,
                      end_reason=d["end_reason"],
                      verified=None if d["verified"] is None
                      else verified_from_json(d["verified"]))


def replica_to_json(r: ReplicaReport) -> dict[str, Any]:
    """A replica's report; its model and env are those of the status it is part of."""
    return {"replica_id": r.replica_id, "version": r.version, "since": iso(r.since),
            "seen_at": iso(r.seen_at), "state": str(r.state), "detail": r.detail,
            "url": r.url, "evidence": dict(r.evidence) if r.evidence is not None else None}


def replica_from_json(d: JSON, *, model: str, env: str) -> ReplicaReport:
    return ReplicaReport(replica_id=d["replica_id"], model=model, env=env, version=d["version"],
                         since=when(d["since"]), seen_at=when(d["seen_at"]),
                         state=ReplicaState(d["state"]),
                         detail=d["detail"], url=d.get("url", ""), evidence=d.get("evidence"))


# -- operations and archives ------------------------------------------------------------------

def check_to_json(c: CheckResult) -> dict[str, Any]:
    return {"name": c.name, "status": str(c.status), "summary": c.summary,
            "evidence": json_safe(c.evidence) or {}, "duration_ms": round(c.duration_ms, 2)}


def check_from_json(d: JSON) -> CheckResult:
    return CheckResult(d["name"], CheckStatus(d["status"]), d["summary"], dict(d["evidence"]),
                       d["duration_ms"])


def candidate_to_json(c: Candidate) -> dict[str, Any]:
    return {"version": c.version, "tag": c.tag, "deployment_id": c.deployment_id,
            "accepted": c.accepted, "refusals": list(c.refusals),
            "checks": [check_to_json(x) for x in c.checks]}


def candidate_from_json(d: JSON) -> Candidate:
    return Candidate(version=d["version"], deployment_id=d["deployment_id"], tag=d["tag"],
                     refusals=tuple(d["refusals"]),
                     checks=tuple(check_from_json(c) for c in d["checks"]))


def operation_to_json(o: Operation) -> dict[str, Any]:
    return {"id": o.id, "kind": str(o.kind), "model": o.model, "env": o.env,
            "phase": str(o.phase), "actor": o.actor, "reason": o.reason,
            "from_version": o.from_version, "target_version": o.target_version,
            "forced": o.forced, "error": o.error, "archive_id": o.archive_id,
            "created_at": iso(o.created_at), "updated_at": iso(o.updated_at),
            "candidates": [candidate_to_json(c) for c in o.candidates],
            "trigger": json_safe(o.trigger) or {}}


def operation_from_json(d: JSON) -> Operation:
    return Operation(id=d["id"], kind=OperationKind(d["kind"]), model=d["model"], env=d["env"],
                     phase=Phase(d["phase"]), actor=d["actor"], reason=d["reason"],
                     created_at=when(d["created_at"]), updated_at=when(d["updated_at"]),
                     from_version=d["from_version"], target_version=d["target_version"],
                     forced=d["forced"],
                     candidates=tuple(candidate_from_json(c) for c in d["candidates"]),
                     error=d["error"], archive_id=d["archive_id"], trigger=dict(d["trigger"]))


def archive_to_json(a: ArchiveRecord) -> dict[str, Any]:
    return {"id": a.id, "model": a.model, "env": a.env, "version": a.version,
            "operation_id": a.operation_id, "sha256": a.sha256, "size": a.size,
            "created_at": iso(a.created_at), "manifest": json_safe(a.manifest) or {}}


def archive_from_json(d: JSON) -> ArchiveRecord:
    return ArchiveRecord(id=d["id"], model=d["model"], env=d["env"], version=d["version"],
                         operation_id=d["operation_id"], sha256=d["sha256"], size=d["size"],
                         created_at=when(d["created_at"]), manifest=dict(d["manifest"]))


# -- access -----------------------------------------------------------------------------------

def token_to_json(t: ApiToken) -> dict[str, Any]:
    """A token's record; never its secret or hash."""
    return {"id": t.id, "owner": t.owner, "role": t.role.label, "created_at": iso(t.created_at),
            "created_by": t.created_by, "expires_at": iso(t.expires_at),
            "revoked_at": iso(t.revoked_at)}


def token_from_json(d: JSON) -> ApiToken:
    """A token record as it is shown (the hash never is, so it is empty here)."""
    return ApiToken(id=d["id"], owner=d["owner"], role=Role.parse(d["role"]), token_hash="",
                    created_at=when(d["created_at"]), created_by=d["created_by"],
                    expires_at=when_or_none(d["expires_at"]),
                    revoked_at=when_or_none(d["revoked_at"]))


def key_to_json(k: SigningKey) -> dict[str, Any]:
    return {"name": k.name, "algorithm": k.algorithm, "public_key": k.public_key,
            "fingerprint": k.fingerprint, "created_at": iso(k.created_at),
            "created_by": k.created_by}


def key_from_json(d: JSON) -> SigningKey:
    return SigningKey(name=d["name"], public_key=d["public_key"], fingerprint=d["fingerprint"],
                      created_at=when(d["created_at"]), created_by=d["created_by"],
                      algorithm=d["algorithm"])
