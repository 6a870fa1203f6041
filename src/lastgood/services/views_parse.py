"""The inverse of `views`: JSON views back into records (for the remote CLI).

For every record `x`, `view(parse(view(x))) == view(x)`, so a face that renders parsed records
prints exactly what it prints for local ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from lastgood.domain import codec
from lastgood.domain.deployments import STALE_AFTER_S
from lastgood.domain.operations import Operation
from lastgood.domain.readiness_evidence import verdict_from_json
from lastgood.domain.replay import judgement_from_json
from lastgood.services.deployments import RollbackPlan, Status
from lastgood.services.quarantine import Quarantine

View = Mapping[str, Any]

parse_model = codec.model_from_json
parse_version = codec.version_from_json
parse_event = codec.event_from_json
parse_deployment = codec.deployment_from_json
parse_candidate = codec.candidate_from_json
parse_environment = codec.environment_from_json
parse_replica = codec.replica_from_json
parse_archive = codec.archive_from_json
parse_chain = codec.chain_from_json
parse_token = codec.token_from_json
parse_key = codec.key_from_json


def parse_quarantine(d: View) -> Quarantine:
    return Quarantine(codec.version_from_json(d), since=codec.when_or_none(d["quarantined_at"]),
                      operation=d["operation"], cause=d["cause"], reason=d["quarantine_reason"])


def parse_operation(d: View) -> Operation:
    return replace(codec.operation_from_json(d), resumed=tuple(d.get("resumed", ())))


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
        readiness=verdict_from_json(d["readiness"]) if d.get("readiness") else None,
        replay=judgement_from_json(d["replay"]) if d.get("replay") else None,
        at=codec.when_or_none(d.get("checked_at")),
        stale_s=float(d.get("stale_after_s", STALE_AFTER_S)))


def parse_plan(d: View) -> RollbackPlan:
    candidates = tuple(parse_candidate(c) for c in d["candidates"])
    target = next((c for c in candidates if c.version == d["target"] and c.accepted), None)
    return RollbackPlan(model=d["model"], env=d["env"], live=d["live"], target=target,
                        candidates=candidates)
