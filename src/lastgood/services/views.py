"""Plain-dict views of domain records: the one stable JSON shape of CLI --json, SDK and API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lastgood.domain.access import ApiToken, SigningKey
from lastgood.domain.audit import ChainReport, Event
from lastgood.domain.deployments import Deployment, Environment, VerifiedRecord
from lastgood.domain.operations import Candidate, CheckResult, Operation
from lastgood.domain.versions import Model, Version
from lastgood.ports import ArchiveRecord, ReplicaReport
from lastgood.services.documents import columns_to_json
from lastgood.services.mlflow_links import mlflow_page

if TYPE_CHECKING:  # deployments imports this module; the views only read these records
    from lastgood.services.deployments import RollbackPlan, Status


def iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def model_view(m: Model) -> dict[str, Any]:
    return {"name": m.name, "created_at": iso(m.created_at), "latest_version": m.latest_number,
            "versions": m.version_count}


def version_view(v: Version, *, full: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": v.model, "version": v.number, "tag": v.tag, "digest": v.digest,
        "flavor": v.flavor, "status": str(v.status), "unsafe_format": v.unsafe_format,
        "created_at": iso(v.created_at), "created_by": v.created_by,
        "metrics": dict(v.metrics), "size": v.manifest.total_size, "mlflow_url": mlflow_page(v),
    }
    if full:
        out |= {
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256}
                      for f in v.manifest.files],
            "runtime": {"python": v.runtime.python, "packages": dict(v.runtime.packages),
                        "resources": {"memory_mb": v.runtime.resources.memory_mb,
                                      "cpus": v.runtime.resources.cpus,
                                      "gpus": v.runtime.resources.gpus}},
            "schema": {"inputs": columns_to_json(v.schema.inputs),
                       "outputs": columns_to_json(v.schema.outputs)},
            "golden": [{"input": dict(g.inputs), "output": g.expected, "tolerance": g.tolerance,
                        "source": str(g.source)}
                       for g in v.golden],
            "provenance": dict(v.provenance), "labels": list(v.labels),
            "signature": v.signature, "signed_by": v.signed_by,
        }
    return out


def event_view(e: Event) -> dict[str, Any]:
    d = e.draft
    return {"seq": e.seq, "at": iso(e.at), "action": d.action, "actor": d.actor,
            "model": d.model, "env": d.env, "subject": d.subject, "reason": d.reason,
            "outcome": d.outcome, "before": d.before, "after": d.after,
            "evidence": dict(d.evidence), "prev_hash": e.prev_hash, "hash": e.hash}


def verified_view(r: VerifiedRecord | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {"baseline": dict(r.baseline), "window_start": iso(r.window_start),
            "window_end": iso(r.window_end), "approver": r.approver, "at": iso(r.at),
            "reason": r.reason}


def deployment_view(d: Deployment) -> dict[str, Any]:
    return {"id": d.id, "model": d.model, "env": d.env, "version": d.version,
            "started_at": iso(d.started_at), "deployed_by": d.deployed_by, "reason": d.reason,
            "operation_id": d.operation_id, "ended_at": iso(d.ended_at),
            "end": str(d.end) if d.end else None, "end_reason": d.end_reason,
            "verified": verified_view(d.verified)}


def check_view(c: CheckResult) -> dict[str, Any]:
    return {"name": c.name, "status": str(c.status), "summary": c.summary,
            "evidence": dict(c.evidence), "duration_ms": round(c.duration_ms, 2)}


def candidate_view(c: Candidate) -> dict[str, Any]:
    return {"version": c.version, "tag": c.tag, "deployment_id": c.deployment_id,
            "accepted": c.accepted, "refusals": list(c.refusals),
            "checks": [check_view(x) for x in c.checks]}


def operation_view(o: Operation) -> dict[str, Any]:
    return {"id": o.id, "kind": str(o.kind), "model": o.model, "env": o.env,
            "phase": str(o.phase), "actor": o.actor, "reason": o.reason,
            "from_version": o.from_version, "target_version": o.target_version,
            "forced": o.forced, "error": o.error, "archive_id": o.archive_id,
            "created_at": iso(o.created_at), "updated_at": iso(o.updated_at),
            "candidates": [candidate_view(c) for c in o.candidates], "trigger": dict(o.trigger)}


def environment_view(e: Environment) -> dict[str, Any]:
    return {
        "name": e.name,
        "feature_schema": columns_to_json(e.feature_schema) if e.feature_schema else None,
        "expected_outputs": columns_to_json(e.expected_outputs) if e.expected_outputs else None,
        "runtime_drift": str(e.runtime_drift), "switch_mode": str(e.switch_mode),
        "deploy_command": e.deploy_command,
        "checks": [{"name": c.name, "command": c.command, "entry_point": c.entry_point,
                    "timeout_s": c.timeout_s} for c in e.checks],
        "require_signature": e.require_signature, "trusted_keys": list(e.trusted_keys),
        "switch_timeout_s": e.switch_timeout_s,
        "mlflow_alias": e.alias, "mlflow_mode": str(e.mlflow_mode),
    }


def replica_view(r: ReplicaReport) -> dict[str, Any]:
    return {"replica_id": r.replica_id, "version": r.version, "since": iso(r.since),
            "seen_at": iso(r.seen_at), "state": r.state, "detail": r.detail,
            "url": r.url, "evidence": dict(r.evidence) if r.evidence is not None else None}


def archive_view(a: ArchiveRecord) -> dict[str, Any]:
    return {"id": a.id, "model": a.model, "env": a.env, "version": a.version,
            "operation_id": a.operation_id, "sha256": a.sha256, "size": a.size,
            "created_at": iso(a.created_at), "manifest": dict(a.manifest)}


def status_view(st: Status) -> dict[str, Any]:
    """Desired against actual for one (model, env): `lastgood status --json` and the API."""
    return {"model": st.model, "env": st.env,
            "desired": deployment_view(st.live) if st.live else None,
            "version": version_view(st.live_version, full=False) if st.live_version else None,
            "standby": list(st.standby), "replicas": [replica_view(r) for r in st.replicas],
            "unfinished": [operation_view(o) for o in st.unfinished],
            "last_operation": operation_view(st.last_operation) if st.last_operation else None,
            "readiness": st.readiness.as_json() if st.readiness else None}


def plan_view(plan: RollbackPlan) -> dict[str, Any]:
    """A rollback dry run: `lastgood rollback --dry-run --json` and the API."""
    return {"model": plan.model, "env": plan.env, "live": plan.live,
            "target": plan.target.version if plan.target else None, "dry_run": True,
            "candidates": [candidate_view(c) for c in plan.candidates]}


def chain_view(report: ChainReport) -> dict[str, Any]:
    return {"ok": report.ok, "checked": report.checked, "first_bad": report.first_bad,
            "problem": report.problem}


def timeline_view(deployments: Sequence[Deployment],
                  operations: Sequence[Operation]) -> dict[str, Any]:
    """Deploy and rollback markers for the dashboard's charts."""
    return {"deployments": [deployment_view(d) for d in deployments],
            "operations": [operation_view(o) for o in operations]}


def token_view(t: ApiToken) -> dict[str, Any]:
    """A token's record; never its secret or hash."""
    return {"id": t.id, "owner": t.owner, "role": t.role.label, "created_at": iso(t.created_at),
            "created_by": t.created_by, "expires_at": iso(t.expires_at),
            "revoked_at": iso(t.revoked_at)}


def key_view(k: SigningKey) -> dict[str, Any]:
    return {"name": k.name, "algorithm": k.algorithm, "public_key": k.public_key,
            "fingerprint": k.fingerprint, "created_at": iso(k.created_at),
            "created_by": k.created_by}
