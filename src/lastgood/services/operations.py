"""The operation engine: one deploy or rollback as a persisted state machine.

`step()` runs the handler of the operation's current phase: it does one piece of work, then commits
the next phase together with its audit event in one transaction (safety rules 3 and 6). Every
handler is idempotent, so `resume()` after a crash simply steps again. The live pointer is only ever
the old version or the target.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from lastgood.domain import codec
from lastgood.domain.archives import ArchiveRecord
from lastgood.domain.audit import EventDraft
from lastgood.domain.deployments import DeploymentEnd, Environment, SwitchMode, VerifiedRecord
from lastgood.domain.errors import NoEligibleTarget, OperationInProgress
from lastgood.domain.operations import (
    Candidate,
    Operation,
    OperationKind,
    Phase,
)
from lastgood.domain.signals import Verdict
from lastgood.domain.targets import rank_candidates
from lastgood.domain.versions import Version, VersionStatus
from lastgood.ports import (
    ArtifactStore,
    Clock,
    CommandRunner,
    EvidenceSource,
    Host,
    UnitOfWork,
    UnitOfWorkFactory,
    Verifier,
)
from lastgood.services.archive import archive_id_for, build_bundle
from lastgood.services.preflight import Check, CheckContext, run_checks, target_variables

ChecksFor = Callable[[Environment], Sequence[Check]]


def lease_key(model: str, env: str) -> str:
    return f"deployment:{model}/{env}"


def new_operation_id() -> str:
    return f"op-{uuid.uuid4().hex[:12]}"


def make_holder() -> str:
    """Who holds a lease: host, pid and a nonce, so a dead local holder can be recognised."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def holder_is_dead(holder: str) -> bool:
    """True only when the holder ran on this host and its process no longer exists."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Timing knobs of the engine."""

    lease_ttl_s: float = 30.0
    replica_stale_s: float = 15.0
    poll_s: float = 0.2
    halt_after: Phase | None = None  # fault injection for crash drills: stop after this phase


class OperationEngine:
    """Steps operations phase by phase; see the module docstring for the guarantees."""

    def __init__(self, *, uow: UnitOfWorkFactory, store: ArtifactStore, clock: Clock, host: Host,
                 checks_for: ChecksFor, commands: CommandRunner, verifier: Verifier,
                 evidence: EvidenceSource, settings: EngineSettings = EngineSettings(),
                 sleep: Callable[[float], None] = time.sleep):
        self._uow, self._store, self._clock, self._host = uow, store, clock, host
        self._checks_for, self._commands = checks_for, commands
        self._verifier, self._evidence = verifier, evidence
        self._settings, self._sleep = settings, sleep
        self.holder = make_holder()
        self._handlers: Mapping[Phase, Callable[[Operation], Operation]] = {
            Phase.PLANNED: self._on_planned,
            Phase.CHECKING: self._on_checking,
            Phase.SWITCHING: self._on_switching,
            Phase.ARCHIVING: self._on_archiving,
            Phase.VERIFYING: self._on_verifying,
        }

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, op: Operation) -> Operation:
        """Persist a new PLANNED operation under the deployment's lease, with its event."""
        with self._uow() as uow:
            self._take_lease(uow, op.model, op.env)
            uow.operations.save(op)
            uow.events.append(self._event(op, "operation.planned", after={
                "kind": str(op.kind), "from_version": op.from_version,
                "target_version": op.target_version, "forced": op.forced}), at=self._now())
            uow.commit()
        return op

    def step(self, op_id: str) -> Operation:
        """Run the current phase's handler once; returns the operation as committed."""
        with self._uow() as uow:
            op = uow.operations.get(op_id)
        if op.phase.is_terminal:
            return op
        return self._handlers[op.phase](op)

    def run_to_completion(self, op_id: str, *,
                          on_phase: Callable[[Operation], None] | None = None) -> Operation:
        """Step until a terminal phase; always gives the lease back."""
        with self._uow() as uow:
            op = uow.operations.get(op_id)
        try:
            if op.phase is self._settings.halt_after:
                self._halt(op)
            while not op.phase.is_terminal:
                op = self.step(op.id)
                if on_phase:
                    on_phase(op)
                if op.phase is self._settings.halt_after:
                    self._halt(op)
        finally:
            self._release(op.model, op.env)
        return op

    def _halt(self, op: Operation) -> None:
        """Crash drill: wait (holding the lease) until the drill kills this process."""
        while True:
            self._sleep(3600)

    def resume(self, *, model: str | None = None, env: str | None = None,
               abort_unswitched: bool = False) -> list[Operation]:
        """Finish every unfinished operation (after a crash), oldest first.

        With `abort_unswitched`, an operation that had not moved the pointer yet is closed as
        FAILED (live unchanged) instead of re-running its checks: a new command supersedes it.
        """
        with self._uow() as uow:
            pending = uow.operations.unfinished(model=model, env=env)
        done = []
        for op in pending:
            with self._uow() as uow:
                self._take_lease(uow, op.model, op.env)
                uow.commit()
            if abort_unswitched and op.phase in (Phase.PLANNED, Phase.CHECKING):
                op = self._commit(op, Phase.FAILED, "operation.aborted", outcome="failed",
                                  error="interrupted before the switch; a new command "
                                        "superseded it (live unchanged)")
            done.append(self.run_to_completion(op.id))
        return done

    # -- phase handlers --------------------------------------------------------------------------

    def _on_planned(self, op: Operation) -> Operation:
        return self._commit(op, Phase.CHECKING, "operation.checking")

    def _on_checking(self, op: Operation) -> Operation:
        candidates, target, live = self.evaluate(op)
        if target is None:
            error = ("no eligible target: every candidate was refused"
                     if op.kind is OperationKind.ROLLBACK else "preflight refused the version")
            return self._commit(op, Phase.FAILED, "operation.refused", outcome="refused",
                                candidates=tuple(candidates), error=error)
        return self._commit(op, Phase.SWITCHING, "operation.checked",
                            candidates=tuple(candidates), target_version=target.version,
                            from_version=live, evidence={"target": target.version})

    def _on_switching(self, op: Operation) -> Operation:
        assert op.target_version is not None
        with self._uow() as uow:
            env = uow.environments.get(op.env)
            live = uow.deployments.live(op.model, op.env)
            target = uow.versions.get(op.model, op.target_version)
        if live is None or live.version != op.target_version:
            if env.switch_mode is SwitchMode.COMMAND:
                failure = self._run_deploy_command(env, target)
                if failure is not None:
                    return self._commit(op, Phase.FAILED, "switch.failed", outcome="failed",
                                        error=failure, evidence={"command": env.deploy_command})
            self._move_pointer(op)
        confirmation = self._await_replicas(op, env)
        if confirmation.get("timed_out"):
            return self._commit(op, Phase.ESCALATED, "operation.escalated", outcome="failed",
                                error="replicas did not report the target in time",
                                evidence=confirmation)
        nxt = Phase.ARCHIVING if op.kind is OperationKind.ROLLBACK else Phase.VERIFYING
        return self._commit(op, nxt, "switch.confirmed", evidence=confirmation)

    def _on_archiving(self, op: Operation) -> Operation:
        at = self._now()
        with self._uow() as uow:
            bundle = build_bundle(uow, op, at=at, host=self._host.facts(),
                                  evidence=self._evidence)
        import io

        blob = self._store.put(io.BytesIO(bundle.data))
        record = ArchiveRecord(id=archive_id_for(op), model=op.model, env=op.env,
                               version=op.from_version or 0, operation_id=op.id,
                               sha256=blob.sha256, size=blob.size, created_at=at,
                               manifest=bundle.manifest)
        with self._uow() as uow:
            self._take_lease(uow, op.model, op.env)
            uow.archives.add(record)
            self._quarantine(uow, op)
            uow.events.append(self._event(op, "archive.created", after={
                "archive_id": record.id, "sha256": record.sha256, "size": record.size}),
                at=self._now())
            nxt = op.advance(Phase.VERIFYING, at=self._now(), archive_id=record.id)
            uow.operations.save(nxt)
            uow.commit()
        return nxt

    def _on_verifying(self, op: Operation) -> Operation:
        assert op.target_version is not None
        with self._uow() as uow:
            history = uow.deployments.history(op.model, op.env)
        record = next((d.verified for d in history
                       if d.version == op.target_version and d.verified), None)
        baseline = dict(record.baseline) if record else {}
        check = self._verifier.verify_live(op.model, op.env, op.target_version, baseline)
        evidence = {"verdict": check.verdict, "summary": check.summary,
                    "evidence": dict(check.evidence), "baseline": baseline}
        if check.verdict in (Verdict.DEGRADED, Verdict.FAILED):
            return self._commit(op, Phase.ESCALATED, "operation.escalated", outcome="failed",
                                error=f"verification {check.verdict}: {check.summary}",
                                evidence=evidence)
        also = None
        if check.verdict is Verdict.HEALTHY and record is not None:
            also = partial(self._reverify, op, record, check.summary)
        return self._commit(op, Phase.SUCCEEDED, "operation.succeeded", evidence=evidence,
                            also=also)

    def _reverify(self, op: Operation, earlier: VerifiedRecord, summary: str,
                  uow: UnitOfWork) -> None:
        """A restored version that passed live verification is verified again, carrying the
        baseline it was judged against (so it stays a target with its own evidence)."""
        live = uow.deployments.live(op.model, op.env)
        if live is None or live.version != op.target_version or live.is_verified:
            return
        now = self._now()
        uow.deployments.set_verified(live.id, VerifiedRecord(
            baseline=dict(earlier.baseline), window_start=live.started_at, window_end=now,
            approver="lastgood", at=now, reason=f"restored and verified live: {summary}",
            distribution=dict(earlier.distribution)))
        uow.events.append(self._event(op, "deployment.verified", after={
            "verified": True, "deployment_id": live.id, "version": live.version}), at=now)

    # -- pieces --------------------------------------------------------------------------------

    def evaluate(self, op: Operation) -> tuple[list[Candidate], Candidate | None, int | None]:
        """Rank candidates and run preflight on each until one passes (also used for dry runs)."""
        with self._uow() as uow:
            env = uow.environments.get(op.env)
            live_dep = uow.deployments.live(op.model, op.env)
            live = live_dep.version if live_dep else None
            live_version = uow.versions.get(op.model, live) if live else None
            ranked = self._ranked(uow, op, live)
            versions = {c.version: uow.versions.get(op.model, c.version) for c in ranked}
        ctx_host = self._host.facts()
        checks = self._checks_for(env)
        out: list[Candidate] = []
        for cand in ranked:
            if cand.refusals:
                out.append(cand)
                continue
            ctx = CheckContext(target=versions[cand.version], env=env, live=live_version,
                               host=ctx_host)
            results = run_checks(checks, ctx)
            failed = tuple(f"{r.name}: {r.summary}" for r in results if r.blocks)
            judged = replace(cand, checks=results, refusals=failed)
            out.append(judged)
            if judged.accepted:
                return out, judged, live
        return out, None, live

    def _ranked(self, uow: UnitOfWork, op: Operation, live: int | None) -> list[Candidate]:
        from lastgood.domain.targets import forced_candidate, requested_candidate

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

    def _move_pointer(self, op: Operation) -> None:
        """End the live deployment and start the target's, with the event, in one commit."""
        assert op.target_version is not None
        end = (DeploymentEnd.ROLLED_BACK if op.kind is OperationKind.ROLLBACK
               else DeploymentEnd.SUPERSEDED)
        with self._uow() as uow:
            self._take_lease(uow, op.model, op.env)
            live = uow.deployments.live(op.model, op.env)
            now = self._now()
            if live is not None:
                uow.deployments.end(live.id, at=now, end=end, reason=op.reason)
            dep = uow.deployments.start(model=op.model, env=op.env, version=op.target_version,
                                        at=now, actor=op.actor, reason=op.reason,
                                        operation_id=op.id)
            uow.events.append(self._event(op, "deployment.switched",
                                          before={"version": live.version if live else None},
                                          after={"version": op.target_version,
                                                 "deployment_id": dep.id}), at=now)
            uow.commit()

    def _run_deploy_command(self, env: Environment, target: Version) -> str | None:
        variables = target_variables(target, env.name, self._store.url)
        result = self._commands.run(env.deploy_command, env=variables,
                                    timeout_s=env.switch_timeout_s)
        if result.exit_code == 0:
            return None
        tail = result.output.strip().splitlines()[-1:] or [""]
        why = "timed out" if result.timed_out else f"exited {result.exit_code}"
        return f"deploy command {why}: {tail[0]}".rstrip(": ")

    def _await_replicas(self, op: Operation, env: Environment) -> dict[str, Any]:
        """Wait until every live replica reports the target (serving mode only)."""
        if env.switch_mode is not SwitchMode.SERVING:
            return {"mode": str(env.switch_mode)}
        deadline = time.monotonic() + env.switch_timeout_s
        while True:
            with self._uow() as uow:
                self._take_lease(uow, op.model, op.env)
                uow.commit()
                reports = uow.replicas.list(model=op.model, env=op.env)
            stale = timedelta(seconds=self._settings.replica_stale_s)
            fresh = [r for r in reports if self._now() - r.seen_at <= stale]
            behind = [r.replica_id for r in fresh if r.version != op.target_version]
            if not behind:
                return {"mode": "serving", "replicas": sorted(r.replica_id for r in fresh),
                        "note": "" if fresh else "no live replica; each follows at start"}
            if time.monotonic() >= deadline:
                return {"mode": "serving", "timed_out": True, "behind": behind}
            self._sleep(self._settings.poll_s)

    def _quarantine(self, uow: UnitOfWork, op: Operation) -> None:
        if op.from_version is None:
            return
        failed = uow.versions.get(op.model, op.from_version)
        if failed.status is VersionStatus.ACTIVE:
            uow.versions.set_status(op.model, failed.number, VersionStatus.QUARANTINED)
            uow.events.append(self._event(op, "version.quarantined",
                                          before={"status": str(failed.status)},
                                          after={"status": "quarantined",
                                                 "version": failed.number}), at=self._now())

    def _commit(self, op: Operation, phase: Phase, action: str, *, outcome: str = "ok",
                evidence: Mapping[str, Any] | None = None,
                also: Callable[[UnitOfWork], None] | None = None, **changes: Any) -> Operation:
        """Save the operation in `phase` with its event, in one transaction under the lease."""
        nxt = op.advance(phase, at=self._now(), **changes)
        body = dict(evidence or {})
        if "candidates" in changes:
            body["candidates"] = [codec.candidate_to_json(c) for c in nxt.candidates]
        if nxt.error:
            body["error"] = nxt.error
        with self._uow() as uow:
            self._take_lease(uow, op.model, op.env)
            uow.operations.save(nxt)
            if also is not None:
                also(uow)
            uow.events.append(self._event(nxt, action, outcome=outcome,
                                          before={"phase": str(op.phase)},
                                          after={"phase": str(phase)}, evidence=body),
                              at=self._now())
            uow.commit()
        return nxt

    def _event(self, op: Operation, action: str, *, outcome: str = "ok",
               before: Mapping[str, Any] | None = None, after: Mapping[str, Any] | None = None,
               evidence: Mapping[str, Any] | None = None) -> EventDraft:
        return EventDraft(action=action, actor=op.actor, model=op.model, env=op.env,
                          subject=op.id, reason=op.reason, before=before, after=after,
                          evidence={"operation": op.id, "kind": str(op.kind), **(evidence or {})},
                          outcome=outcome)

    def _take_lease(self, uow: UnitOfWork, model: str, env: str) -> None:
        """Take or renew the deployment's lease; a lease of a dead local process is broken."""
        key, ttl = lease_key(model, env), self._settings.lease_ttl_s
        try:
            uow.leases.acquire(key, holder=self.holder, now=self._now(), ttl_s=ttl)
        except OperationInProgress as exc:
            holder = str(exc.details.get("holder", ""))
            if not holder or not holder_is_dead(holder):
                raise
            uow.leases.release(key, holder=holder)
            uow.leases.acquire(key, holder=self.holder, now=self._now(), ttl_s=ttl)

    def _release(self, model: str, env: str) -> None:
        with self._uow() as uow:
            uow.leases.release(lease_key(model, env), holder=self.holder)
            uow.commit()

    def _now(self) -> datetime:
        return self._clock.now()


def _deploy_refusals(version: Version) -> tuple[str, ...]:
    if version.status is not VersionStatus.ACTIVE:
        return (f"is {version.status}",)
    return ()


def no_target_error(op: Operation) -> NoEligibleTarget:
    """The refusal raised to the caller when every candidate was refused."""
    listed = "; ".join(f"v{c.version}: {', '.join(c.refusals)}" for c in op.candidates)
    return NoEligibleTarget(
        f"no eligible rollback target for {op.model} in {op.env}" + (f" ({listed})" if listed
                                                                     else " (no history)"),
        fix="verify a known-good deployment (`lastgood verify`), or force one with "
            "--to VERSION --force --reason TEXT",
        refusals=[codec.candidate_to_json(c) for c in op.candidates])
