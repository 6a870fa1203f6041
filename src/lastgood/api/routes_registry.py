"""Models, versions (list, show, upload, retire, quarantine) and environments."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import File, Form, Query, UploadFile
from fastapi.responses import Response

from lastgood.api.common import EnvPath, ModelPath, RefPath, check_ref, ok, router
from lastgood.api.deps import CallerDep, ServicesDep
from lastgood.api.schemas import (
    EnvironmentIn,
    EnvironmentOut,
    LiftIn,
    ModelOut,
    Name,
    QuarantineOut,
    RegisteredOut,
    RetireIn,
    VersionOut,
    VersionSummaryOut,
)
from lastgood.api.uploads import UPLOAD_FILES, parse_meta, register_request, spool
from lastgood.domain.access import Action
from lastgood.domain.deployments import CustomCheck
from lastgood.domain.versions import Column, check_column
from lastgood.services.views import (
    environment_view,
    model_view,
    quarantine_view,
    version_view,
)

routes = router("registry")


@routes.get("/models", response_model=list[ModelOut])
def list_models(caller: CallerDep, services: ServicesDep) -> Response:
    """Every model with its latest version number and version count."""
    caller.allow(Action.READ)
    return ok([model_view(m) for m in services.registry.models()])


@routes.get("/models/{name}/versions", response_model=list[VersionSummaryOut])
def list_versions(name: ModelPath, caller: CallerDep, services: ServicesDep,
                  limit: Annotated[int | None, Query(ge=1, le=10_000)] = None) -> Response:
    """Versions of a model, newest first (summaries)."""
    caller.allow(Action.READ, model=name)
    return ok([version_view(v, full=False)
               for v in services.registry.versions(name, limit=limit)])


@routes.get("/models/{name}/versions/{ref}", response_model=VersionOut)
def show_version(name: ModelPath, ref: RefPath, caller: CallerDep,
                 services: ServicesDep) -> Response:
    """One version by number or tag, with files, runtime, schema and golden examples."""
    caller.allow(Action.READ, model=name)
    return ok(version_view(services.registry.show(name, check_ref(ref))))


@routes.post("/models/{name}/versions", response_model=RegisteredOut, status_code=201)
def register(name: ModelPath, caller: CallerDep, services: ServicesDep,
             file: Annotated[list[UploadFile], File(min_length=1, description=UPLOAD_FILES)],
             meta: Annotated[str, Form(description="JSON: RegisterMeta")] = "{}") -> Response:
    """Register the uploaded artifact(s) as the next version of `name` (operator)."""
    caller.allow(Action.REGISTER, model=name)
    parsed = parse_meta(meta)
    with tempfile.TemporaryDirectory(prefix="lastgood-upload-") as tmp:
        path = spool(file, Path(tmp), directory=parsed.directory)
        done = services.registry.register_noted(register_request(name, path, parsed),
                                                actor=caller.actor)
    return ok({**version_view(done.version), "notes": list(done.notes)}, 201)


@routes.post("/models/{name}/versions/{ref}/retire", response_model=VersionOut)
def retire(name: ModelPath, ref: RefPath, body: RetireIn, caller: CallerDep,
           services: ServicesDep) -> Response:
    """Withdraw a version for good (operator)."""
    caller.allow(Action.RETIRE, model=name)
    return ok(version_view(services.registry.retire(name, check_ref(ref), reason=body.reason,
                                                    actor=caller.actor)))


@routes.get("/quarantine", response_model=list[QuarantineOut])
def list_quarantine(caller: CallerDep, services: ServicesDep,
                    model: Annotated[Name | None, Query()] = None) -> Response:
    """Every quarantined version, with the rollback that quarantined it and its cause."""
    caller.allow(Action.READ, model=model)
    return ok([quarantine_view(q) for q in services.quarantine.list(model=model)])


@routes.post("/models/{name}/versions/{ref}/quarantine/lift", response_model=VersionOut)
def lift_quarantine(name: str, ref: str, body: LiftIn, caller: CallerDep,
                    services: ServicesDep) -> Response:
    """Make a quarantined version active again, with a reason (operator, audited)."""
    caller.allow(Action.LIFT_QUARANTINE, model=name)
    return ok(version_view(services.quarantine.lift(name, check_ref(ref), reason=body.reason,
                                                    actor=caller.actor)))


@routes.get("/environments", response_model=list[EnvironmentOut])
def list_environments(caller: CallerDep, services: ServicesDep) -> Response:
    """Every environment's settings."""
    caller.allow(Action.READ)
    return ok([environment_view(e) for e in services.deployments.environments()])


@routes.get("/environments/{env}", response_model=EnvironmentOut)
def show_environment(env: EnvPath, caller: CallerDep, services: ServicesDep) -> Response:
    """One environment's settings."""
    caller.allow(Action.READ, env=env)
    return ok(environment_view(services.deployments.environment(env)))


@routes.put("/environments/{env}", response_model=EnvironmentOut)
def configure_environment(env: EnvPath, body: EnvironmentIn, caller: CallerDep,
                          services: ServicesDep) -> Response:
    """Create an environment or change the settings sent (admin)."""
    caller.allow(Action.CONFIGURE, env=env)
    changes = body.model_dump(exclude_unset=True)
    for key in ("feature_schema", "expected_outputs"):
        if changes.get(key) is not None:
            changes[key] = tuple(check_column(Column(c["name"], c["dtype"],
                                                     tuple(c.get("shape", ()))))
                                 for c in changes[key])
    if changes.get("checks") is not None:
        changes["checks"] = tuple(CustomCheck(**c) for c in changes["checks"])
    if changes.get("trusted_keys") is not None:
        changes["trusted_keys"] = tuple(changes["trusted_keys"])
    for key in ("checks", "trusted_keys", "require_signature", "runtime_drift", "switch_mode",
                "deploy_command", "switch_timeout_s", "mlflow_alias", "mlflow_mode"):
        if key in changes and changes[key] is None:
            del changes[key]  # null leaves these as they are; only schemas can be cleared
    return ok(environment_view(services.deployments.configure(env, changes=changes,
                                                              actor=caller.actor)))
