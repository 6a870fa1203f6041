"""Which version an operation moves to: rank the candidates, run preflight until one passes.

The engine's CHECKING step and the dry run (`plan_rollback`) both call `TargetChooser.evaluate`,
so what a dry run prints is what the rollback would do. `judge` also returns what the plan stood
on (`PlanBasis`), and `changes` reads it again, so a confirmed plan runs as shown or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from lastgood.domain import codec
from lastgood.domain.deployments import Environment, SwitchMode
from lastgood.domain.operations import Candidate, Operation, OperationKind
from lastgood.domain.plans import PlanBasis, ranked_lines, settings_digest
from lastgood.domain.targets import forced_candidate, rank_candidates, requested_candidate
from lastgood.domain.versions import Version, VersionStatus
from lastgood.ports import Host, ReadinessSource, UnitOfWork, UnitOfWorkFactory
from lastgood.services.preflight import Check, CheckContext, force_past, run_checks

ChecksFor = Callable[[Environment], Sequence[Check]]
Evaluation = tuple[list[Candidate], Candidate | None, int | None]
"""Every candidate judged so far, the accepted one (None: all refused), and the live version."""


class TargetChooser:
    """Ranks candidates and judges each with today's preflight checks."""

    def __init__(self, *, uow: UnitOfWorkFactory, host: Host, checks_for: ChecksFor,
                 readiness: ReadinessSource):
        self._uow, self._host, self._checks_for = uow, host, checks_for
        self._readiness = readiness

    def evaluate(self, op: Operation) -> Evaluation:
        """Rank candidates and run preflight on each until one passes (also used for dry runs)."""
        return self.judge(op)[0]

    def judge(self, op: Operation) -> tuple[Evaluation, PlanBasis]:
        """`evaluate`, and the facts it stood on, read in the same transaction as the ranking."""
        with self._uow() as uow:
            env = uow.environments.get(op.env)
            live_dep = uow.deployments.live(op.model, op.env)
            live = live_dep.version if live_dep else None
            live_version = uow.versions.get(op.model, live) if live else None
            ranked = self._ranked(uow, op, live)
            versions = {c.version: uow.versions.get(op.model, c.version) for c in ranked}
        basis = PlanBasis(live_deployment=live_dep.id if live_dep else None,
                          environment=_env_digest(env), ranked=ranked_lines(ranked))
        deploy = op.kind is OperationKind.DEPLOY
        out, target = self._check_in_turn(env, ranked, versions, live_version,
                                          forward=deploy, forced=op.forced and deploy)
        digest = versions[target.version].digest if target else ""
        return (out, target, live), basis.aimed(target, digest)

    def changes(self, op: Operation, planned: PlanBasis) -> tuple[str, ...]:
        """What changed since `planned` was judged: empty while the plan still holds."""
        assert planned.target is not None
        with self._uow() as uow:
            env = uow.environments.get(op.env)
            live_dep = uow.deployments.live(op.model, op.env)
            ranked = self._ranked(uow, op, live_dep.version if live_dep else None)
            target = uow.versions.get(op.model, planned.target)
        # Readiness is judged again only when the plan's evidence was readiness: a smoke test
        # run at plan time stays the evidence, whatever the replicas report since.
        ready = (planned.ready and env.switch_mode is SwitchMode.SERVING
                 and self._readiness.judge(target, env.name).ready)
        now = PlanBasis(live_deployment=live_dep.id if live_dep else None,
                        environment=_env_digest(env), ranked=ranked_lines(ranked),
                        target=target.number, digest=target.digest, ready=ready)
        return planned.changes(now)

    def _check_in_turn(self, env: Environment, ranked: list[Candidate],
                       versions: dict[int, Version],
                       live_version: Version | None, *, forward: bool = False,
                       forced: bool = False) -> tuple[list[Candidate], Candidate | None]:
        ctx_host = self._host.facts()
        checks = self._checks_for(env)
        out: list[Candidate] = []
        for cand in ranked:
            if cand.refusals:
                out.append(cand)
                continue
            ctx = CheckContext(target=versions[cand.version], env=env, live=live_version,
                               host=ctx_host, forward=forward)
            results = run_checks(checks, ctx)
            if forced:
                results = tuple(force_past(r) for r in results)
            failed = tuple(f"{r.name}: {r.summary}" for r in results if r.blocks)
            judged = replace(cand, checks=results, refusals=failed)
            out.append(judged)
            if judged.accepted:
                return out, judged
        return out, None

    def _ranked(self, uow: UnitOfWork, op: Operation, live: int | None) -> list[Candidate]:
        if op.kind is OperationKind.DEPLOY or op.target_version is not None:
            assert op.target_version is not None
            version = uow.versions.get(op.model, op.target_version)
            if op.forced or op.kind is OperationKind.DEPLOY:
                cand = forced_candidate(version, live)
                if op.kind is OperationKind.DEPLOY and not op.forced:
                    cand = replace(cand, refusals=cand.refusals + _deploy_refusals(version))
                return [cand]
            return [requested_candidate(version, uow.deployments.history(op.model, op.env),
                                        live)]
        history = uow.deployments.history(op.model, op.env)
        versions = {d.version: uow.versions.get(op.model, d.version) for d in history}
        return rank_candidates(history, versions, live_version=live)


def _env_digest(env: Environment) -> str:
    return settings_digest(codec.environment_to_json(env))


def _deploy_refusals(version: Version) -> tuple[str, ...]:
    if version.status is not VersionStatus.ACTIVE:
        return (f"is {version.status}",)
    return ()
