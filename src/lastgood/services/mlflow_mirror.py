"""Mirror lastgood's truth to MLflow: the env's alias points at the live version, with tags.

lastgood stays the source of truth: what is live and verified is read from its own registry, and
what was last written to MLflow is an audit event (`mlflow.mirrored`). So the mirror is level
triggered: after each switch it tries once, and `catch_up` (sync, server, watch) retries until
MLflow agrees. An MLflow that is down never fails a deploy or a rollback; `state` says how far
behind the mirror is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lastgood.domain.audit import Event, EventDraft
from lastgood.domain.deployments import Deployment, Environment, MlflowMode
from lastgood.domain.errors import InvalidInput, LastGoodError, NotFound
from lastgood.domain.operations import OperationKind
from lastgood.domain.outside import OutsideVersion
from lastgood.domain.versions import Version
from lastgood.ports import Clock, RegistryMirror, UnitOfWork, UnitOfWorkFactory
from lastgood.services.mlflow_sync import outside_version

MIRRORED = "mlflow.mirrored"
MIRROR_FAILED = "mlflow.mirror_failed"
MIRROR_ACTOR = "lastgood-mirror"


class NoOutsideRegistry:
    """No MLflow tracking server is configured: every call says how to configure one."""

    def _refuse(self) -> InvalidInput:
        return InvalidInput("no MLflow tracking server is configured",
                            fix="set MLFLOW_TRACKING_URI, e.g. http://127.0.0.1:5000")

    def resolve(self, uri: str) -> OutsideVersion:
        raise self._refuse()

    def versions(self, model: str) -> list[OutsideVersion]:
        raise self._refuse()

    def models(self) -> list[str]:
        raise self._refuse()

    def download(self, found: OutsideVersion, dest: Path) -> Path:
        raise self._refuse()

    def with_metrics(self, found: OutsideVersion) -> OutsideVersion:
        raise self._refuse()

    def alias(self, model: str, alias: str) -> str | None:
        raise self._refuse()

    def set_alias(self, model: str, alias: str, version: str) -> None:
        raise self._refuse()

    def set_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None:
        raise self._refuse()


@dataclass(frozen=True, slots=True)
class MirrorState:
    """Where the MLflow alias of (model, env) stands against what lastgood serves."""

    model: str
    env: str
    alias: str
    mode: MlflowMode
    outside_model: str | None  # the MLflow model name of the live version
    wanted: str | None  # the MLflow version the alias should name (None: not from MLflow)
    mirrored: str | None  # the MLflow version lastgood last pointed the alias at
    in_sync: bool
    behind_since: datetime | None = None
    last_error: str = ""

    def lag_s(self, now: datetime) -> float:
        return 0.0 if self.behind_since is None else (now - self.behind_since).total_seconds()


@dataclass(frozen=True, slots=True)
class _Picture:
    env: Environment
    live: Deployment | None
    version: Version | None
    from_version: Version | None  # what a rollback replaced
    rollback: Mapping[str, Any] | None
    last: Event | None  # the last mirrored event
    failure: Event | None  # the last failure after it


def _key(live: Deployment) -> str:
    return f"{live.id}:{'verified' if live.verified else 'unverified'}"


class MlflowMirror:
    """Point each env's MLflow alias at the live version and tag what lastgood knows."""

    def __init__(self, *, uow: UnitOfWorkFactory, mirror: RegistryMirror, clock: Clock):
        self._uow, self._mirror, self._clock = uow, mirror, clock

    def state(self, model: str, env: str) -> MirrorState:
        with self._uow() as uow:
            return self._state(self._picture(uow, model, env), model)

    def after_change(self, model: str, env: str) -> None:
        """Called after each switch and verification: one try, never raises."""
        try:
            with self._uow() as uow:
                if uow.environments.get(env).mlflow_mode is MlflowMode.OFF:
                    return  # the common case costs one read
            state = self.state(model, env)
            if not state.in_sync:
                self.push(model, env)
        except LastGoodError:
            pass  # recorded by push when MLflow was the problem; catch_up retries

    def catch_up(self) -> list[MirrorState]:
        """Push every (model, env) whose alias is behind; a failure is recorded, not raised."""
        out: list[MirrorState] = []
        for model, env in self._mirrored_pairs():
            state = self.state(model, env)
            if not state.in_sync and state.wanted is not None:
                try:
                    state = self.push(model, env)
                except LastGoodError:
                    state = self.state(model, env)
            out.append(state)
        return out

    def push(self, model: str, env: str, *, extra_tags: Mapping[str, str] | None = None,
             reason: str = "") -> MirrorState:
        """Write the alias and tags now; raises (and records) when MLflow is unreachable."""
        with self._uow() as uow:
            pic = self._picture(uow, model, env)
        if pic.live is None or pic.version is None or outside_version(pic.version) is None:
            return self._state(pic, model)
        name, wanted = _outside_name(pic.version), outside_version(pic.version) or ""
        try:
            tags = self._tags(pic, env)
            for (target, values) in tags:
                self._mirror.set_tags(name, target, values)
            if extra_tags:
                self._mirror.set_tags(name, wanted, extra_tags)
            self._mirror.set_alias(name, pic.env.alias, wanted)
        except LastGoodError as exc:
            self._record_failure(pic, model, env, exc)
            raise
        self._record(pic, model, env, name, wanted, reason, [k for _, t in tags for k in t])
        return self.state(model, env)

    # -- what lastgood knows ---------------------------------------------------------------------

    def _picture(self, uow: UnitOfWork, model: str, env: str) -> _Picture:
        environment = uow.environments.get(env)
        uow.models.get(model)
        live = uow.deployments.live(model, env)
        version = uow.versions.get(model, live.version) if live else None
        rollback, replaced = self._rollback(uow, live)
        newest = uow.events.latest(actions=(MIRRORED, MIRROR_FAILED), model=model, env=env)
        failure = newest if newest and newest.draft.action == MIRROR_FAILED else None
        last = uow.events.latest(actions=(MIRRORED,), model=model, env=env) if failure else newest
        return _Picture(environment, live, version, replaced, rollback, last, failure)

    @staticmethod
    def _rollback(uow: UnitOfWork, live: Deployment | None
                  ) -> tuple[Mapping[str, Any] | None, Version | None]:
        if live is None or live.operation_id is None:
            return None, None
        try:
            op = uow.operations.get(live.operation_id)
        except NotFound:
            return None, None
        if op.kind is not OperationKind.ROLLBACK or op.from_version is None:
            return None, None
        info = {"from": op.from_version, "reason": op.reason, "archive_id": op.archive_id,
                "operation": op.id, "at": op.updated_at.isoformat()}
        return info, uow.versions.get(op.model, op.from_version)

    def _state(self, pic: _Picture, model: str) -> MirrorState:
        env = pic.env
        wanted = outside_version(pic.version) if pic.version else None
        after = pic.last.draft.after if pic.last else None
        mirrored = str(after.get("mlflow_version")) if isinstance(after, Mapping) else None
        key = after.get("key") if isinstance(after, Mapping) else None
        in_sync = wanted is None or (pic.live is not None and key == _key(pic.live))
        behind = None
        if not in_sync and pic.live is not None:
            behind = max(pic.live.started_at, pic.live.verified.at if pic.live.verified
                         else pic.live.started_at)
        error = pic.failure.draft.reason if pic.failure and not in_sync else ""
        return MirrorState(model=model, env=env.name, alias=env.alias, mode=env.mlflow_mode,
                           outside_model=_outside_name(pic.version) if wanted else None,
                           wanted=wanted, mirrored=mirrored, in_sync=in_sync,
                           behind_since=behind, last_error=error)

    def _mirrored_pairs(self) -> list[tuple[str, str]]:
        with self._uow() as uow:
            envs = [e.name for e in uow.environments.list() if e.mlflow_mode is not MlflowMode.OFF]
            models = [m.name for m in uow.models.list()]
            return [(m, e) for e in envs for m in models if uow.deployments.live(m, e)]

    # -- what MLflow is told ---------------------------------------------------------------------

    def _tags(self, pic: _Picture, env: str) -> list[tuple[str, dict[str, str]]]:
        assert pic.live is not None
        assert pic.version is not None
        wanted = outside_version(pic.version) or ""
        live_tags: dict[str, str] = {f"lastgood.{env}.live": _json(
            {"since": pic.live.started_at.isoformat(), "by": pic.live.deployed_by,
             "lastgood_version": pic.version.number})}
        if pic.live.verified:
            v = pic.live.verified
            live_tags[f"lastgood.{env}.verified"] = _json(
                {"at": v.at.isoformat(), "approver": v.approver, "baseline": dict(v.baseline)})
        out = [(wanted, live_tags)]
        if pic.rollback is not None and pic.from_version is not None:
            live_tags["lastgood.rolled_back_from"] = _json(
                {"lastgood_version": pic.rollback["from"], "env": env,
                 "mlflow_version": outside_version(pic.from_version),
                 "at": pic.rollback["at"], "reason": pic.rollback["reason"]})
            old = outside_version(pic.from_version)
            if old is not None and _outside_name(pic.from_version) == _outside_name(pic.version):
                out.append((old, {"lastgood.quarantined": _json(
                    {"reason": pic.rollback["reason"], "archive_id": pic.rollback["archive_id"],
                     "env": env, "at": pic.rollback["at"]})}))
        return out

    def _record(self, pic: _Picture, model: str, env: str, name: str, wanted: str,
                reason: str, tags: list[str]) -> None:
        assert pic.live is not None
        assert pic.version is not None
        with self._uow() as uow:
            uow.events.append(EventDraft(
                action=MIRRORED, actor=MIRROR_ACTOR, model=model, env=env,
                subject=pic.env.alias, reason=reason or f"{pic.version.ref} is live in {env}",
                after={"alias": pic.env.alias, "mlflow_model": name, "mlflow_version": wanted,
                       "version": pic.version.number, "deployment_id": pic.live.id,
                       "key": _key(pic.live)},
                evidence={"tags": tags}), at=self._clock.now())
            uow.commit()

    def _record_failure(self, pic: _Picture, model: str, env: str, exc: LastGoodError) -> None:
        """One failure event per state the mirror could not write (retries add none)."""
        if pic.live is None or (pic.failure is not None and isinstance(pic.failure.draft.after,
                                Mapping) and pic.failure.draft.after.get("key") == _key(pic.live)):
            return
        try:
            with self._uow() as uow:
                uow.events.append(EventDraft(
                    action=MIRROR_FAILED, actor=MIRROR_ACTOR, model=model, env=env,
                    subject=pic.env.alias, reason=exc.message, outcome="failed",
                    after={"key": _key(pic.live)}, evidence={"fix": exc.fix}),
                    at=self._clock.now())
                uow.commit()
        except LastGoodError:
            pass


def _outside_name(v: Version | None) -> str:
    return v.provenance.get("mlflow.model", v.model) if v else ""


def _json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, default=str)
