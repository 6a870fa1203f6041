"""The Python SDK: the same operations as the CLI, returning domain records.

    from lastgood.sdk import Lastgood
    lg = Lastgood()                       # ./.lastgood (or LASTGOOD_HOME / LASTGOOD_DB_URL ...)
    v = lg.register("fraud", "model.skops", tag="v1.4.2", metrics={"auc": 0.91})
    lg.deploy("fraud", "v1.4.2", env="production", reason="weekly release")
    lg.verify("fraud", env="production", baseline={"latency_p95_ms": 41}, reason="bake passed")
    lg.rollback("fraud", env="production", reason="p95 doubled")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lastgood.bootstrap import open_services
from lastgood.config import Settings, load_settings
from lastgood.domain.audit import ChainReport, Event
from lastgood.domain.deployments import Deployment, Environment
from lastgood.domain.operations import Operation
from lastgood.domain.versions import GoldenExample, Model, Schema, Version
from lastgood.services.container import Services
from lastgood.services.deployments import RollbackPlan, Status
from lastgood.services.quarantine import Quarantine
from lastgood.services.registry import RegisterRequest

__all__ = ["Lastgood"]


class Lastgood:
    """A handle on one registry; every call is audited with `actor`."""

    def __init__(self, *, home: str | Path | None = None, db_url: str | None = None,
                 store_url: str | None = None, actor: str | None = None,
                 services: Services | None = None):
        settings = load_settings()
        if home is not None:
            root = Path(home).absolute()
            settings = replace(settings, home=root, db_url=f"sqlite:///{root / 'registry.db'}",
                               store_url=str(root / "artifacts"))
        settings = replace(settings, db_url=db_url or settings.db_url,
                           store_url=store_url or settings.store_url,
                           actor=actor or settings.actor)
        self.settings: Settings = settings
        self.services = services or open_services(settings)

    @property
    def actor(self) -> str:
        return self.settings.actor

    def close(self) -> None:
        """Close the registry's pooled connections."""
        dispose = getattr(self.services.ports.uow, "dispose", None)
        if callable(dispose):
            dispose()

    def __enter__(self) -> Lastgood:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def register(self, model: str, path: str | Path, *, flavor: str | None = None,
                 tag: str | None = None, metrics: Mapping[str, float] | None = None,
                 requires: Mapping[str, str] | None = None, schema: Schema | None = None,
                 golden: Sequence[GoldenExample] = (), provenance: Mapping[str, str] | None = None,
                 labels: Sequence[str] = (), allow_pickle: bool = False) -> Version:
        """Register a model file or MLflow folder as the next version of `model`."""
        req = RegisterRequest(model=model, path=Path(path), flavor=flavor, tag=tag,
                              metrics=dict(metrics or {}), requires=dict(requires or {}),
                              schema=schema, golden=tuple(golden),
                              provenance=dict(provenance or {}), labels=tuple(labels),
                              allow_pickle=allow_pickle)
        return self.services.registry.register(req, actor=self.actor)

    def models(self) -> list[Model]:
        return self.services.registry.models()

    def versions(self, model: str) -> list[Version]:
        return self.services.registry.versions(model)

    def show(self, model: str, ref: str | int) -> Version:
        return self.services.registry.show(model, ref)

    def retire(self, model: str, ref: str | int, *, reason: str) -> Version:
        return self.services.registry.retire(model, ref, reason=reason, actor=self.actor)

    def events(self, *, model: str | None = None, env: str | None = None) -> list[Event]:
        return self.services.registry.events(model=model, env=env)

    def configure_env(self, name: str, **settings: Any) -> Environment:
        return self.services.deployments.configure(name, changes=settings, actor=self.actor)

    def deploy(self, model: str, ref: str | int, *, env: str, reason: str,
               force: bool = False) -> Operation:
        return self.services.deployments.deploy(model, ref, env=env, reason=reason,
                                                actor=self.actor, force=force)

    def verify(self, model: str, *, env: str, baseline: Mapping[str, float],
               reason: str) -> Deployment:
        return self.services.deployments.verify(model, env=env, baseline=baseline,
                                                reason=reason, actor=self.actor)

    def plan_rollback(self, model: str, *, env: str, to: str | int | None = None,
                      force: bool = False) -> RollbackPlan:
        return self.services.deployments.plan_rollback(model, env=env, to=to, force=force)

    def rollback(self, model: str, *, env: str, reason: str, to: str | int | None = None,
                 force: bool = False, cause: str = "model") -> Operation:
        """Roll back; `cause` (model, infra, unknown): only model quarantines the replaced."""
        return self.services.deployments.rollback(model, env=env, reason=reason,
                                                  actor=self.actor, to=to, force=force,
                                                  cause=cause)

    def quarantined(self, *, model: str | None = None) -> list[Quarantine]:
        """Every quarantined version, with the rollback that quarantined it and its cause."""
        return self.services.quarantine.list(model=model)

    def lift_quarantine(self, model: str, ref: str | int, *, reason: str) -> Version:
        """Make a quarantined version active again (audited; a reason is required)."""
        return self.services.quarantine.lift(model, ref, reason=reason, actor=self.actor)

    def resume(self) -> list[Operation]:
        return self.services.deployments.resume()

    def status(self, model: str, *, env: str) -> Status:
        return self.services.deployments.status(model, env=env)

    def history(self, model: str, *, env: str) -> list[Deployment]:
        return self.services.deployments.history(model, env=env)

    def audit_verify(self) -> ChainReport:
        return self.services.audit.verify()
