"""The faces' JSON (CLI --json, SDK, REST API): records exactly as `domain.codec` writes them,
plus the shapes of the services' own answers (status, rollback plan, timeline)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lastgood.domain import codec
from lastgood.domain.deployments import Deployment, ReplicaReport
from lastgood.domain.operations import Operation, OperationKind
from lastgood.domain.replay import REPLAY_ARCHIVE
from lastgood.domain.versions import Version
from lastgood.services.deployments import RollbackPlan, Status
from lastgood.services.mlflow_links import mlflow_page
from lastgood.services.quarantine import Quarantine

iso = codec.iso
model_view = codec.model_to_json
event_view = codec.event_to_json
deployment_view = codec.deployment_to_json
candidate_view = codec.candidate_to_json
environment_view = codec.environment_to_json
def replica_view(report: ReplicaReport) -> dict[str, Any]:
    """A replica's report as shown, without the raw failing requests a deploy's shadow
    reports for the archive of a refused deploy (raw request data is never shown)."""
    view = codec.replica_to_json(report)
    if isinstance(view.get("evidence"), dict):
        view["evidence"] = {k: v for k, v in view["evidence"].items() if k != REPLAY_ARCHIVE}
    return view

archive_view = codec.archive_to_json
chain_view = codec.chain_to_json
token_view = codec.token_to_json
key_view = codec.key_to_json


def operation_view(o: Operation) -> dict[str, Any]:
    """The stored operation, plus what the command finished first (`resumed`, never stored)."""
    return {**codec.operation_to_json(o), "resumed": list(o.resumed),
            "cause": str(o.cause) if o.kind is OperationKind.ROLLBACK else None}


def quarantine_view(q: Quarantine) -> dict[str, Any]:
    """A quarantined version (its summary) and why: `quarantine list --json` and the API."""
    return {**codec.version_to_json(q.version, full=False), "quarantined_at": iso(q.since),
            "operation": q.operation, "cause": q.cause, "quarantine_reason": q.reason}


def version_view(v: Version, *, full: bool = True) -> dict[str, Any]:
    """A version as the codec writes it, with its MLflow UI page when it came from one."""
    return codec.version_to_json(v, full=full) | {"mlflow_url": mlflow_page(v)}


def status_view(st: Status) -> dict[str, Any]:
    """Desired against actual for one (model, env): `lastgood status --json` and the API."""
    return {"model": st.model, "env": st.env,
            "desired": deployment_view(st.live) if st.live else None,
            "version": version_view(st.live_version, full=False) if st.live_version else None,
            "standby": list(st.standby),
            "replicas": [replica_view(r) | {"liveness": str(st.liveness(r))}
                         for r in st.replicas],
            "checked_at": iso(st.at), "stale_after_s": st.stale_s,
            "unfinished": [operation_view(o) for o in st.unfinished],
            "last_operation": operation_view(st.last_operation) if st.last_operation else None,
            "readiness": st.readiness.as_json() if st.readiness else None,
            "replay": st.replay.as_json() if st.replay else None}


def plan_view(plan: RollbackPlan) -> dict[str, Any]:
    """A rollback dry run: `lastgood rollback --dry-run --json` and the API."""
    return {"model": plan.model, "env": plan.env, "live": plan.live,
            "target": plan.target.version if plan.target else None, "dry_run": True,
            "candidates": [candidate_view(c) for c in plan.candidates]}


def timeline_view(deployments: Sequence[Deployment],
                  operations: Sequence[Operation]) -> dict[str, Any]:
    """Deploy and rollback markers for the dashboard's charts."""
    return {"deployments": [deployment_view(d) for d in deployments],
            "operations": [operation_view(o) for o in operations]}
