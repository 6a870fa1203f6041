"""The remote CLI prints what the local one prints because `view(parse(view(x))) == view(x)`
for every record the API returns; checked here on records made by a real rollback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lastgood.domain.access import Role
from lastgood.domain.deployments import ReplicaReport
from lastgood.domain.versions import Column, Schema
from lastgood.services import views
from lastgood.services import views_parse as parse
from lastgood.testing import make_environment
from tests.unit.fake_lastgood import FakeLastgood

MODEL, ENV = "fraud-detector", "production"


def wire_json(view: Any) -> Any:
    """What the view looks like after a trip through HTTP."""
    return json.loads(json.dumps(view, default=str))


@pytest.fixture(scope="module")
def world() -> FakeLastgood:
    w = FakeLastgood()
    for i in range(3):
        w.add_version(tag=f"v{i + 1}.0", labels=("nightly",),
                      schema=Schema(inputs=(Column("x", "float64", (3,)),),
                                    outputs=(Column("y", "int64"),)))
    w.deploy(1)
    w.deploy(2)
    w.deploy(3, verify=False)
    w.services.deployments.rollback(MODEL, env=ENV, reason="p95 doubled", actor="bob")
    with w.registry() as uow:  # a replica reporting, and settings with every field in use
        uow.replicas.report(ReplicaReport("host:8080", MODEL, ENV, 2, w.clock.now(),
                                          w.clock.now(), "serving", ""))
        uow.environments.put(make_environment(ENV, feature_schema=(Column("x", "float64"),),
                                              trusted_keys=("ci",)))
        uow.commit()
    return w


def roundtrip(view_of: Any, parse_of: Any, record: Any, **kw: Any) -> None:
    once = wire_json(view_of(record, **kw))
    assert wire_json(view_of(parse_of(once), **kw)) == once


def test_versions_full_and_summary(world: FakeLastgood) -> None:
    for v in world.services.registry.versions(MODEL):
        roundtrip(views.version_view, parse.parse_version, world.services.registry.show(
            MODEL, v.number))
        roundtrip(views.version_view, parse.parse_version, v, full=False)


def test_models_events_and_chain(world: FakeLastgood) -> None:
    for m in world.services.registry.models():
        roundtrip(views.model_view, parse.parse_model, m)
    events = world.services.registry.events()
    assert len(events) > 10
    for e in events:
        roundtrip(views.event_view, parse.parse_event, e)
    roundtrip(views.chain_view, parse.parse_chain, world.services.audit.verify())


def test_deployments_operations_and_plans(world: FakeLastgood) -> None:
    deps = world.services.deployments
    for d in deps.history(MODEL, env=ENV):
        roundtrip(views.deployment_view, parse.parse_deployment, d)
    ops = deps.operations(model=MODEL, env=ENV)
    assert any(o.candidates for o in ops)
    for o in ops:
        roundtrip(views.operation_view, parse.parse_operation, o)
    roundtrip(views.plan_view, parse.parse_plan, deps.plan_rollback(MODEL, env=ENV))


def test_status_environments_and_archives(world: FakeLastgood) -> None:
    status = world.services.deployments.status(MODEL, env=ENV)
    assert status.replicas
    roundtrip(views.status_view, parse.parse_status, status)
    for e in world.services.deployments.environments():
        roundtrip(views.environment_view, parse.parse_environment, e)
    archives = world.services.archives.list()
    assert archives
    for a in archives:
        roundtrip(views.archive_view, parse.parse_archive, a)


def test_tokens_and_keys_without_secrets(world: FakeLastgood) -> None:
    issued = world.services.access.create_token("alice", role=Role.VIEWER, actor="root",
                                                expires_in_s=60)
    once = wire_json(views.token_view(issued.record))
    assert issued.secret not in json.dumps(once)
    assert issued.record.token_hash not in json.dumps(once)
    assert wire_json(views.token_view(parse.parse_token(once))) == once
