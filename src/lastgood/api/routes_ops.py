"""Deploy, verify, roll back (with the dry run), resume; operations, status, history, timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from fastapi.responses import Response

from lastgood.api.common import ModelPath, check_ref, ok, router
from lastgood.api.deps import CallerDep, ServicesDep
from lastgood.api.schemas import (
    DeployIn,
    DeploymentOut,
    Name,
    OperationOut,
    PlanOut,
    ResumeIn,
    RollbackIn,
    StatusOut,
    TimelineOut,
    VerifyIn,
)
from lastgood.domain.access import Action
from lastgood.services.views import (
    deployment_view,
    operation_view,
    plan_view,
    status_view,
    timeline_view,
)

routes = router("operations")
EnvQuery = Annotated[Name, Query(description="environment, e.g. production")]


@routes.post("/models/{name}/deploy", response_model=OperationOut)
def deploy(name: ModelPath, body: DeployIn, caller: CallerDep, services: ServicesDep) -> Response:
    """Make `env` serve a version after the preflight checks pass (operator)."""
    caller.allow(Action.DEPLOY, model=name, env=body.env)
    op = services.deployments.deploy(name, check_ref(body.version), env=body.env,
                                     reason=body.reason, actor=caller.actor, force=body.force,
                                     dry_run=body.dry_run)
    return ok(operation_view(op))


@routes.post("/models/{name}/verify", response_model=DeploymentOut)
def verify(name: ModelPath, body: VerifyIn, caller: CallerDep, services: ServicesDep) -> Response:
    """Mark the live deployment verified with its measured baseline (operator)."""
    caller.allow(Action.VERIFY, model=name, env=body.env)
    dep = services.deployments.verify(name, env=body.env, baseline=body.baseline,
                                      reason=body.reason, actor=caller.actor)
    return ok(deployment_view(dep))


@routes.post("/models/{name}/rollback", response_model=OperationOut | PlanOut)
def rollback(name: ModelPath, body: RollbackIn, caller: CallerDep,
             services: ServicesDep) -> Response:
    """Put the last verified version back (operator); with dry_run, only the plan (viewer)."""
    to = check_ref(body.to) if body.to is not None else None
    deps = services.deployments
    if body.dry_run:
        caller.allow(Action.PLAN, model=name, env=body.env)
        return ok(plan_view(deps.plan_rollback(name, env=body.env, to=to, force=body.force,
                                               actor=caller.actor)))
    caller.allow(Action.ROLLBACK, model=name, env=body.env)
    op = deps.rollback(name, env=body.env, reason=body.reason, actor=caller.actor, to=to,
                       force=body.force, cause=body.cause)
    return ok(operation_view(op))


@routes.post("/operations/resume", response_model=list[OperationOut])
def resume(body: ResumeIn, caller: CallerDep, services: ServicesDep) -> Response:
    """Finish deploys and rollbacks a crash interrupted (operator)."""
    caller.allow(Action.RESUME, model=body.model, env=body.env)
    return ok([operation_view(o)
               for o in services.deployments.resume(model=body.model, env=body.env)])


@routes.get("/operations", response_model=list[OperationOut])
def list_operations(caller: CallerDep, services: ServicesDep,
                    model: Annotated[Name | None, Query()] = None,
                    env: Annotated[Name | None, Query()] = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Response:
    """Operations, newest first."""
    caller.allow(Action.READ, model=model, env=env)
    return ok([operation_view(o)
               for o in services.deployments.operations(model=model, env=env, limit=limit)])


@routes.get("/operations/{op_id}", response_model=OperationOut)
def show_operation(op_id: str, caller: CallerDep, services: ServicesDep) -> Response:
    """One operation with its candidates and checks."""
    caller.allow(Action.READ)
    return ok(operation_view(services.deployments.operation(op_id)))


@routes.get("/models/{name}/status", response_model=StatusOut)
def status(name: ModelPath, env: EnvQuery, caller: CallerDep, services: ServicesDep) -> Response:
    """Desired against actual: the live deployment and what each replica serves."""
    caller.allow(Action.READ, model=name, env=env)
    return ok(status_view(services.deployments.status(name, env=env)))


@routes.get("/models/{name}/history", response_model=list[DeploymentOut])
def history(name: ModelPath, env: EnvQuery, caller: CallerDep, services: ServicesDep) -> Response:
    """Which version was live when, who deployed it, why, and how it ended."""
    caller.allow(Action.READ, model=name, env=env)
    return ok([deployment_view(d) for d in services.deployments.history(name, env=env)])


@routes.get("/models/{name}/timeline", response_model=TimelineOut)
def timeline(name: ModelPath, env: EnvQuery, caller: CallerDep, services: ServicesDep) -> Response:
    """Deployments and operations of (model, env): the charts' deploy and rollback markers."""
    caller.allow(Action.READ, model=name, env=env)
    deps = services.deployments
    history_rows = deps.history(name, env=env)
    return ok(timeline_view(history_rows, deps.operations(model=name, env=env, limit=500)))
