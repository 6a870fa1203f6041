"""Follow mode: a person moving an env's alias in MLflow (UI or client) is a deploy request.

lastgood notices the move (polling, or an MLflow webhook that names the model), imports the
version if needed, and deploys it with every preflight check. A refused request is audited, the
alias is set back to what is live, and the refusal is written on the requested version's tags.
MLflow records no author for an alias move, so the request is audited as made through MLflow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lastgood.domain.audit import EventDraft
from lastgood.domain.deployments import MlflowMode
from lastgood.domain.errors import LastGoodError, NotFound
from lastgood.domain.versions import Version
from lastgood.ports import Clock, RegistryMirror, UnitOfWorkFactory
from lastgood.services.deployments import DeploymentService
from lastgood.services.mlflow_mirror import MlflowMirror
from lastgood.services.mlflow_sync import MlflowSync, outside_version
from lastgood.services.registry import RegisterRequest

REFUSED = "mlflow.follow_refused"
REQUESTER = "mlflow"


@dataclass(frozen=True, slots=True)
class FollowOutcome:
    """What one alias move led to."""

    model: str
    env: str
    alias: str
    requested: str  # the MLflow version the alias was moved to
    outcome: str  # deployed | refused
    detail: str = ""

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield from {"model": self.model, "env": self.env, "alias": self.alias,
                    "requested": self.requested, "outcome": self.outcome,
                    "detail": self.detail}.items()


class MlflowFollow:
    """Turn alias moves made in MLflow into audited deploy requests."""

    def __init__(self, *, uow: UnitOfWorkFactory, port: RegistryMirror, mirror: MlflowMirror,
                 sync: MlflowSync, deployments: DeploymentService, clock: Clock):
        self._uow, self._port, self._mirror, self._sync = uow, port, mirror, sync
        self._deployments, self._clock = deployments, clock

    def poll(self, *, actor: str) -> list[FollowOutcome]:
        """Check every followed (model, env) once; MLflow being down skips this round."""
        out: list[FollowOutcome] = []
        for model, env, outside in self._followed():
            try:
                found = self.check(model, env, outside, via="polling")
            except LastGoodError:
                continue  # unreachable now: the next round asks again
            if found is not None:
                out.append(found)
        return out

    def followed_for(self, outside_model: str, alias: str) -> list[tuple[str, str]]:
        """(lastgood model, env) pairs that follow this MLflow model's alias (for webhooks)."""
        return [(m, e) for m, e, o in self._followed()
                if o == outside_model and self._alias(e) == alias]

    def check(self, model: str, env: str, outside: str, *, via: str) -> FollowOutcome | None:
        """If a person moved the alias since lastgood last wrote it, act on the request."""
        state = self._mirror.state(model, env)
        current = self._port.alias(outside, state.alias)
        if current is None or current == state.mirrored or current == state.wanted:
            if current is not None and current == state.wanted and not state.in_sync:
                self._mirror.push(model, env)
            return None
        reason = (f"requested through MLflow: alias {state.alias} of {outside} moved to "
                  f"v{current} (seen by {via})")
        try:
            version = self._version(model, outside, current)
            self._deployments.deploy(model, version.number, env=env, reason=reason,
                                     actor=REQUESTER)
        except LastGoodError as exc:
            self._refused(model, env, outside, state.alias, current, exc)
            return FollowOutcome(model, env, state.alias, current, "refused", exc.one_line())
        return FollowOutcome(model, env, state.alias, current, "deployed", reason)

    def _version(self, model: str, outside: str, wanted: str) -> Version:
        with self._uow() as uow:
            try:
                found = uow.versions.list(model)
            except NotFound:
                found = []
        for v in found:
            if outside_version(v) == wanted and v.provenance.get("mlflow.model") == outside:
                return v
        done = self._sync.import_uri(RegisterRequest(model=model, path=Path(".")),
                                     f"models:/{outside}/{wanted}", actor=REQUESTER)
        return done.version

    def _refused(self, model: str, env: str, outside: str, alias: str, requested: str,
                 exc: LastGoodError) -> None:
        with self._uow() as uow:
            uow.events.append(EventDraft(
                action=REFUSED, actor=REQUESTER, model=model, env=env, subject=alias,
                reason=exc.message, outcome="refused",
                after={"mlflow_model": outside, "requested": requested},
                evidence={"error": type(exc).__name__, "fix": exc.fix}), at=self._clock.now())
            uow.commit()
        tag = json.dumps({"env": env, "reason": exc.message, "at": self._clock.now().isoformat()})
        try:
            self._port.set_tags(outside, requested, {"lastgood.refused": tag})
            self._mirror.push(model, env, reason=f"alias set back: deploy of MLflow v{requested} "
                                                 f"refused ({exc.message})")
        except LastGoodError:
            pass  # recorded by the mirror; catch_up sets the alias back once MLflow answers

    def _alias(self, env: str) -> str:
        with self._uow() as uow:
            return uow.environments.get(env).alias

    def _followed(self) -> list[tuple[str, str, str]]:
        with self._uow() as uow:
            envs = [e.name for e in uow.environments.list()
                    if e.mlflow_mode is MlflowMode.FOLLOW]
            if not envs:
                return []
            out = []
            for m in uow.models.list():
                latest = uow.versions.list(m.name, limit=1)
                outside = latest[0].provenance.get("mlflow.model") if latest else None
                out += [(m.name, e, outside) for e in envs if outside]
            return out
