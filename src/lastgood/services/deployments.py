"""Deploy, roll back, verify, and read what each environment serves: the heart of lastgood."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from lastgood.domain import codec
from lastgood.domain.audit import EventDraft
from lastgood.domain.baselines import baseline_names, check_stated, stated_record
from lastgood.domain.deployments import (
    STALE_AFTER_S,
    Deployment,
    Environment,
    Liveness,
    MlflowMode,
    ReplicaReport,
    RuntimeDrift,
    SwitchMode,
    VerifiedRecord,
    liveness,
)
from lastgood.domain.errors import (
    InvalidInput,
    LastGoodError,
    NotFound,
    PreconditionFailed,
)
from lastgood.domain.operations import (
    Candidate,
    Operation,
    OperationKind,
    Phase,
    RollbackCause,
)
from lastgood.domain.plans import PlanBasis, basis_to_json
from lastgood.domain.readiness_evidence import ReadinessVerdict
from lastgood.domain.replay import ReplayJudgement, ReplayLimits
from lastgood.domain.versions import Version, VersionStatus, check_name, parse_ref
from lastgood.ports import Clock, UnitOfWorkFactory
from lastgood.services.operations import OperationEngine, new_operation_id
from lastgood.services.outcomes import deploy_result, rollback_result
from lastgood.services.replay import replay_judgement
from lastgood.services.rollback_readiness import rollback_readiness

PhaseHook = Callable[[Operation], None]
ChangeHook = Callable[[str, str], None]
"""Told (model, env) after a switch or a verification; never raises (e.g. the MLflow mirror)."""


def no_hook(model: str, env: str) -> None:
    """The change hook of a registry that mirrors nothing."""


TargetProbe = Callable[[Version, str], tuple[str, str] | None]
"""(check, why) of the first preflight check that would refuse a target in an env now."""


def nothing_known(version: Version, env: str) -> tuple[str, str] | None:
    """The probe of a service wired without checks (nothing known to fail)."""
    return None


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    """What a rollback would do: the chosen target and every candidate with its verdict."""

    model: str
    env: str
    live: int | None
    target: Candidate | None
    candidates: tuple[Candidate, ...]
    basis: PlanBasis | None = None  # what the plan stands on; None from a remote control plane

    @property
    def id(self) -> str:
        """The plan's name in the audit trail, from what it stands on."""
        return self.basis.id if self.basis is not None else ""


@dataclass(frozen=True, slots=True)
class Status:
    """Desired against actual for one (model, env)."""

    model: str
    env: str
    live: Deployment | None
    live_version: Version | None
    standby: tuple[int, ...]
    replicas: tuple[ReplicaReport, ...]
    unfinished: tuple[Operation, ...]
    last_operation: Operation | None
    readiness: ReadinessVerdict | None = None  # of the first rollback target; None: no target
    replay: ReplayJudgement | None = None  # the same target on today's traffic (default limits)
    at: datetime | None = None  # when it was read: each replica's liveness is judged at this time
    stale_s: float = STALE_AFTER_S

    def liveness(self, report: ReplicaReport) -> Liveness:
        """Whether `report`'s replica is live, stale or gone when this status was read."""
        return liveness(report, now=self.at or report.seen_at, stale_s=self.stale_s)


def require_reason(reason: str | None, action: str) -> str:
    if not reason or not reason.strip():
        raise InvalidInput(f"{action} needs a reason",
                           fix="pass --reason 'what happened' (it goes into the audit trail)")
    return reason.strip()


class DeploymentService:
    """Use cases that move or judge what an environment serves."""

    def __init__(self, *, uow: UnitOfWorkFactory, engine: OperationEngine, clock: Clock,
                 after_change: ChangeHook = no_hook, checks_now: TargetProbe = nothing_known,
                 stale_s: float = STALE_AFTER_S):
        self._uow, self._engine, self._clock = uow, engine, clock
        self._after_change, self._checks_now, self._stale_s = after_change, checks_now, stale_s

    # -- environments ----------------------------------------------------------------------------

    def environments(self) -> list[Environment]:
        with self._uow() as uow:
            return uow.environments.list()

    def environment(self, name: str) -> Environment:
        with self._uow() as uow:
            return uow.environments.get(name)

    def configure(self, name: str, *, changes: Mapping[str, Any], actor: str,
                  create: bool = True) -> Environment:
        """Create or update an environment's settings, audited with before and after."""
        check_name("environment", name)
        with self._uow() as uow:
            try:
                before: Environment | None = uow.environments.get(name)
            except NotFound:
                if not create:
                    raise
                before = None
            after = replace(before or Environment(name=name), **coerce_settings(changes))
            uow.environments.put(after)
            uow.events.append(EventDraft(
                action="environment.configured" if before else "environment.created",
                actor=actor, env=name, subject=name,
                before=_env_dict(before) if before else None, after=_env_dict(after)),
                at=self._clock.now())
            uow.commit()
            return after

    # -- deploy and roll back -------------------------------------------------------------------

    def deploy(self, model: str, ref: str | int, *, env: str, reason: str | None, actor: str,
               force: bool = False, on_phase: PhaseHook | None = None,
               dry_run: bool = False) -> Operation:
        """Make `env` serve a version: every replica loads it as a shadow standby and replays
        today's traffic on it, preflight judges it, then switch and confirm. Creates the env
        on first use. With `dry_run` the operation stops after its checks (phase CHECKED):
        the replay and every check are shown and audited, no traffic moves."""
        if dry_run and not (reason or "").strip():
            reason = "dry run"
        why = self._refusing(actor, model, env, "deploy", lambda: require_reason(reason, "deploy"))
        # The lookup runs in its own unit of work: a refusal is audited in another one, and
        # nesting them would deadlock on SQLite.
        version = self._audited(actor, model, env, "deploy", lambda: self._version(model, ref))
        try:
            self.environment(env)
        except NotFound:
            self.configure(env, changes={}, actor=actor)
        resumed = self._finish_first(model, env)
        op = self._new(OperationKind.DEPLOY, model, env, actor, why,
                       target=version.number, forced=force)
        if dry_run:
            op = replace(op, trigger={"dry_run": True})
        return deploy_result(self._run(op, on_phase, resumed), version.ref)

    def _version(self, model: str, ref: str | int) -> Version:
        with self._uow() as uow:
            return uow.versions.get(model, parse_ref(str(ref)))

    def plan_rollback(self, model: str, *, env: str, to: str | int | None = None,
                      force: bool = False, actor: str = "") -> RollbackPlan:
        """The dry run: choose the target and run every check, changing nothing."""
        op = self._rollback_op(model, env, actor, "dry run", to, force)
        (candidates, target, live), basis = self._engine.plan(op)
        return RollbackPlan(model, env, live, target, tuple(candidates), basis)

    def rollback(self, model: str, *, env: str, reason: str | None, actor: str,
                 to: str | int | None = None, force: bool = False,
                 trigger: Mapping[str, Any] | None = None,
                 on_phase: PhaseHook | None = None,
                 cause: RollbackCause | str = RollbackCause.MODEL,
                 plan: RollbackPlan | None = None) -> Operation:
        """Put the last verified version back: target, preflight, switch, archive, verify.

        `cause` says whose fault the rollback is: only `model` quarantines the replaced version.
        With `plan` (one `plan_rollback` made with the same `to` and `force`, confirmed by a
        person) the rollback runs that plan: its target and its checks' evidence, each check
        run once. If what the plan stood on changed, it stops with PlanChanged and nothing moves.
        """
        why = self._refusing(actor, model, env, "rollback",
                             lambda: require_reason(reason, "rollback"))
        why_cause = self._audited(actor, model, env, "rollback",
                                  lambda: RollbackCause.parse(str(cause)))
        op = self._audited(actor, model, env, "rollback",
                           lambda: self._rollback_op(model, env, actor, why, to, force))
        resumed = self._finish_first(model, env)
        op = replace(op, trigger={**(trigger or {}), "cause": str(why_cause)})
        if plan is not None:
            op = _confirmed(op, plan)
        return rollback_result(self._run(op, on_phase, resumed))

    def resume(self, *, model: str | None = None, env: str | None = None) -> list[Operation]:
        """Finish operations a crash interrupted."""
        return self._engine.resume(model=model, env=env)

    def _rollback_op(self, model: str, env: str, actor: str, reason: str,
                     to: str | int | None, force: bool) -> Operation:
        with self._uow() as uow:
            uow.environments.get(env)
            uow.models.get(model)
            live = uow.deployments.live(model, env)
            if live is None:
                raise PreconditionFailed(f"{model} is not deployed in {env}",
                                         fix=f"deploy it first: lastgood deploy {model} "
                                             f"VERSION --env {env} --reason ...")
            target = uow.versions.get(model, parse_ref(str(to))).number if to is not None else None
        if force and target is None:
            raise InvalidInput("--force needs --to VERSION",
                               fix="name the version to force, e.g. --to 3 --force")
        return self._new(OperationKind.ROLLBACK, model, env, actor, reason, target=target,
                         forced=force, live=live.version)

    def _new(self, kind: OperationKind, model: str, env: str, actor: str, reason: str, *,
             target: int | None, forced: bool, live: int | None = None) -> Operation:
        now = self._clock.now()
        if live is None:
            with self._uow() as uow:
                dep = uow.deployments.live(model, env)
                live = dep.version if dep else None
        return Operation(id=new_operation_id(), kind=kind, model=model, env=env,
                         phase=Phase.PLANNED, actor=actor, reason=reason, created_at=now,
                         updated_at=now, from_version=live, target_version=target,
                         forced=forced)

    def _finish_first(self, model: str, env: str) -> tuple[str, ...]:
        """Finish what a crash left unfinished in (model, env) before a new command runs."""
        return tuple(o.id for o in self._engine.resume(model=model, env=env,
                                                       abort_unswitched=True))

    def _run(self, op: Operation, on_phase: PhaseHook | None,
             resumed: tuple[str, ...]) -> Operation:
        """Run `op` to its end; the result (and its planned event) names the operations that
        were finished first."""
        self._audited(op.actor, op.model, op.env, str(op.kind),
                      lambda: self._engine.start(op, resumed=resumed))
        if on_phase:
            on_phase(op)
        done = self._engine.run_to_completion(op.id, on_phase=on_phase)
        if done.phase not in (Phase.FAILED, Phase.CHECKED):
            self._after_change(op.model, op.env)
        return replace(done, resumed=resumed)

    def _refusing(self, actor: str, model: str, env: str, action: str,
                  body: Callable[[], str]) -> str:
        return self._audited(actor, model, env, action, body)

    def _audited(self, actor: str, model: str, env: str, action: str,
                    body: Callable[[], T]) -> T:
        """Run `body`; if it refuses, write the refusal as an audit event, then re-raise."""
        try:
            return body()
        except LastGoodError as exc:
            self._record_refusal(actor, model, env, action, exc)
            raise

    def _record_refusal(self, actor: str, model: str, env: str, action: str,
                        exc: LastGoodError) -> None:
        try:
            with self._uow() as uow:
                uow.events.append(EventDraft(
                    action=f"{action}.refused", actor=actor, model=model, env=env,
                    reason=exc.message, outcome="refused",
                    evidence={"error": type(exc).__name__, "fix": exc.fix}),
                    at=self._clock.now())
                uow.commit()
        except LastGoodError:
            pass  # the registry itself is down: the caller still gets the original error

    # -- verification and reads -----------------------------------------------------------------

    def verify(self, model: str, *, env: str, baseline: Mapping[str, float], reason: str | None,
               actor: str, window_start: datetime | None = None) -> Deployment:
        """Mark the live deployment verified with its measured baseline."""
        why = require_reason(reason, "verify")
        if not baseline:
            raise InvalidInput("verify needs the measured baseline",
                               fix="pass --metric NAME=VALUE, e.g. --metric latency_p95_ms=41 "
                                   "--metric error_rate=0.002")
        baseline = baseline_names(baseline)  # one vocabulary: a typo is refused, not kept
        check_stated(baseline)  # a stated baseline judges the next deploy: it must be possible
        # Its own unit of work: the refusal is audited in another (nesting deadlocks SQLite).
        self._audited(actor, model, env, "verify", lambda: self._check_verifiable(model, env))
        now = self._clock.now()
        with self._uow() as uow:
            uow.environments.get(env)
            live = uow.deployments.live(model, env)
            if live is None:
                raise PreconditionFailed(f"{model} has no live deployment in {env}",
                                         fix="deploy a version first")
            record = VerifiedRecord(baseline=dict(baseline),
                                    window_start=window_start or live.started_at,
                                    window_end=now, approver=actor, at=now, reason=why,
                                    distribution=stated_record(baseline, by=actor, at=now))
            updated = uow.deployments.set_verified(live.id, record)
            uow.events.append(EventDraft(
                action="deployment.verified", actor=actor, model=model, env=env,
                subject=f"v{live.version}", reason=why,
                before={"verified": live.is_verified},
                after={"verified": True, "deployment_id": live.id, "version": live.version},
                evidence={"baseline": dict(baseline)}), at=now)
            uow.commit()
        self._after_change(model, env)
        return updated

    def _check_verifiable(self, model: str, env: str) -> None:
        with self._uow() as uow:
            live = uow.deployments.live(model, env)
            if live is not None:
                _check_not_quarantined(uow.versions.get(model, live.version))

    def status(self, model: str, *, env: str) -> Status:
        with self._uow() as uow:
            uow.models.get(model)
            uow.environments.get(env)
            live = uow.deployments.live(model, env)
            version = uow.versions.get(model, live.version) if live else None
            history = uow.deployments.history(model, env)
            standby = tuple(dict.fromkeys(
                d.version for d in history if d.is_verified and d.version != (
                    live.version if live else None)
                and uow.versions.get(model, d.version).status.value == "active"))
            ops = uow.operations.list(model=model, env=env, limit=1)
            replicas = tuple(uow.replicas.list(model=model, env=env))
            target = uow.versions.get(model, standby[0]) if standby else None
            unfinished = tuple(uow.operations.unfinished(model=model, env=env))
        now = self._clock.now()
        replay = replay_judgement(replicas, target, now=now, stale_s=self._stale_s,
                                  limits=ReplayLimits()) if target else None
        return Status(model, env, live, version, standby, replicas, unfinished,
                      ops[0] if ops else None, self._readiness(replicas, target, env, now),
                      replay=replay, at=now, stale_s=self._stale_s)

    def _readiness(self, replicas: tuple[ReplicaReport, ...], target: Version | None,
                   env: str, now: datetime) -> ReadinessVerdict | None:
        """The first target's readiness: the replicas' proof, and the preflight checks that
        would refuse it now without loading anything (integrity, runtime, resources, ...)."""
        if target is None:
            return None
        verdict = rollback_readiness(replicas, target, now=now, stale_s=self._stale_s)
        failing = self._checks_now(target, env)
        return verdict.failing(*failing) if failing else verdict

    def history(self, model: str, *, env: str) -> list[Deployment]:
        with self._uow() as uow:
            uow.models.get(model)
            uow.environments.get(env)
            return uow.deployments.history(model, env)

    def operation(self, op_id: str) -> Operation:
        with self._uow() as uow:
            return uow.operations.get(op_id)

    def operations(self, *, model: str | None = None, env: str | None = None,
                   limit: int = 50) -> list[Operation]:
        with self._uow() as uow:
            return uow.operations.list(model=model, env=env, limit=limit)


def _check_not_quarantined(version: Version) -> None:
    """A quarantined version is never a rollback target, so verifying it would promise one."""
    if version.status is VersionStatus.QUARANTINED:
        raise PreconditionFailed(
            f"{version.ref} is quarantined: verifying it would not make it a "
            "rollback target",
            fix=f"if it was not at fault, lift the quarantine first: lastgood quarantine lift "
                f"{version.model} {version.number} --reason TEXT, then verify again")


def _confirmed(op: Operation, plan: RollbackPlan) -> Operation:
    """`op` carrying a plan its actor confirmed: the target, its digest and the checks."""
    if plan.target is None or plan.basis is None or (plan.model, plan.env) != (op.model, op.env):
        raise InvalidInput("only a plan with a target, made here for this model and env, can "
                           "be confirmed", fix="plan again: lastgood rollback --dry-run")
    confirmed = {"by": op.actor, "plan": plan.id, "target": plan.basis.target,
                 "digest": plan.basis.digest, "basis": basis_to_json(plan.basis)}
    return replace(op, candidates=plan.candidates,
                   trigger={**op.trigger, "confirmed": confirmed})


def coerce_settings(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Environment settings with enum fields checked, so a typo is refused, not stored."""
    enums: dict[str, type[StrEnum]] = {"runtime_drift": RuntimeDrift, "switch_mode": SwitchMode,
                                       "mlflow_mode": MlflowMode}
    out = dict(changes)
    for key, kind in enums.items():
        if key in out:
            try:
                out[key] = kind(out[key])
            except ValueError as exc:
                raise InvalidInput(f"{key} {out[key]!r} is not one of "
                                   f"{', '.join(k.value for k in kind)}",
                                   fix=f"choose one of {', '.join(k.value for k in kind)}") from exc
    if out.get("switch_mode") is SwitchMode.COMMAND and not out.get("deploy_command", "x"):
        raise InvalidInput("switch mode 'command' needs a deploy command",
                           fix="pass --deploy-command 'your deploy script'")
    return out


def _env_dict(env: Environment) -> dict[str, Any]:
    return codec.environment_to_json(env)
