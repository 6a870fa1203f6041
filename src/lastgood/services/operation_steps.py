"""The steps of an operation, one handler each; every one ends in one commit with its event.

The pointer move is its own phase boundary: *switch* (SWITCHING) runs the deploy command
(command mode), then moves the pointer and commits CONFIRMING with the `deployment.switched`
event in one transaction; a failing command commits FAILED (`switch.failed`) and the pointer
never moves. *confirm* (CONFIRMING) waits until every fresh replica reports the target, then
commits ARCHIVING (rollback) or VERIFYING (deploy) with `switch.confirmed`, or ESCALATED.

The switch is idempotent: an operation stored in SWITCHING whose pointer already moved (a row
written before CONFIRMING existed, when the move happened inside SWITCHING) commits CONFIRMING
without moving anything or running the command again.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from lastgood.domain.archives import ArchiveRecord
from lastgood.domain.deployments import (
    DeploymentEnd,
    Environment,
    ReplicaReport,
    SwitchMode,
    VerifiedRecord,
    live_replicas,
    liveness,
)
from lastgood.domain.operations import Candidate, Operation, OperationKind, Phase
from lastgood.domain.plans import PLAN_CHANGED, basis_from_json
from lastgood.domain.replay import REPLAY_ARCHIVE
from lastgood.domain.signals import Verdict
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
from lastgood.services.archive import archive_id_for, build_bundle, build_refusal_bundle
from lastgood.services.operation_ledger import EngineSettings, OperationLedger
from lastgood.services.preflight import materialize, target_variables
from lastgood.services.replay import ShadowProgress, shadow_progress
from lastgood.services.targeting import TargetChooser

Handler = Callable[[Operation], Operation]


class PhaseSteps:
    """The work of each phase; `handlers()` is the engine's dispatch table."""

    def __init__(self, *, uow: UnitOfWorkFactory, ledger: OperationLedger,
                 chooser: TargetChooser, store: ArtifactStore, host: Host,
                 commands: CommandRunner, verifier: Verifier,
                 evidence: EvidenceSource, settings: EngineSettings, clock: Clock):
        self._ledger, self._chooser, self._store, self._host = ledger, chooser, store, host
        self._commands, self._verifier, self._evidence = commands, verifier, evidence
        self._settings, self._clock = settings, clock
        self._uow = uow

    def handlers(self) -> Mapping[Phase, Handler]:
        return {Phase.PLANNED: self.plan, Phase.CHECKING: self.check,
                Phase.SWITCHING: self.switch, Phase.CONFIRMING: self.confirm,
                Phase.ARCHIVING: self.archive,
                Phase.VERIFYING: self.verify}

    def plan(self, op: Operation) -> Operation:
        return self._ledger.commit(op, Phase.CHECKING, "operation.checking")

    def check(self, op: Operation) -> Operation:
        """Judge the target with today's checks; a deploy first waits for the replicas to
        replay today's traffic on its target (the shadow), so the replay check judges it."""
        if op.trigger.get("confirmed"):
            return self._check_confirmed(op)
        with self._uow() as uow:
            env = uow.environments.get(op.env)
        shadow = self._await_shadow(op, env)
        candidates, target, live = self._chooser.evaluate(op)
        if shadow is not None and shadow.refused:
            candidates = [_unloadable(c, shadow) for c in candidates]
            target = None if target is None else _unloadable(target, shadow)
            target = target if target is not None and target.accepted else None
        evidence: dict[str, Any] = {"shadow": shadow.as_json()} if shadow is not None else {}
        if op.dry_run:
            return self._ledger.commit(op, Phase.CHECKED, "operation.checked",
                                       outcome="ok" if target else "refused",
                                       candidates=tuple(candidates), from_version=live,
                                       evidence={**evidence, "dry_run": True},
                                       error="" if target else "preflight refused the version")
        if target is None:
            error = ("no eligible target: every candidate was refused"
                     if op.kind is OperationKind.ROLLBACK else "preflight refused the version")
            record = self._archive_refusal(op, candidates) if shadow is not None else None
            if record is not None:
                evidence["archive"] = record.id
            return self._ledger.commit(op, Phase.FAILED, "operation.refused", outcome="refused",
                                       candidates=tuple(candidates), error=error,
                                       evidence=evidence, archive_id=record.id if record
                                       else None,
                                       also=partial(_add_archive, record) if record else None)
        return self._ledger.commit(op, Phase.SWITCHING, "operation.checked",
                                   candidates=tuple(candidates), target_version=target.version,
                                   from_version=live,
                                   evidence={"target": target.version, **evidence})

    def _archive_refusal(self, op: Operation,
                         candidates: Sequence[Candidate]) -> ArchiveRecord | None:
        """A deploy refused on today's traffic keeps the requests it failed on in a forensic
        bundle (when its replicas reported them: `serve --replay-archive off` never does)."""
        refused_by_replay = any(r.name == "replay" and r.blocks for c in candidates
                                for r in c.checks)
        if not refused_by_replay or op.target_version is None:
            return None
        with self._uow() as uow:
            reports = uow.replicas.list(model=op.model, env=op.env)
            refused = uow.versions.get(op.model, op.target_version)
        live = live_replicas(reports, now=self._ledger.now(),
                             stale_s=self._settings.replica_stale_s)
        failing = [{"replica": r.replica_id, **f} for r in live
                   for f in (r.evidence or {}).get(REPLAY_ARCHIVE, ())
                   if isinstance(f, Mapping) and f.get("version") == op.target_version]
        if not failing:
            return None
        at = self._ledger.now()
        bundle = build_refusal_bundle(op, refused, candidates=candidates, failing=failing,
                                      at=at, host=self._host.facts())
        blob = self._store.put(io.BytesIO(bundle.data))
        return ArchiveRecord(id=archive_id_for(op), model=op.model, env=op.env,
                             version=refused.number, operation_id=op.id, sha256=blob.sha256,
                             size=blob.size, created_at=at, manifest=bundle.manifest)

    def _await_shadow(self, op: Operation, env: Environment) -> ShadowProgress | None:
        """Wait, at most the env's switch timeout, until every live replica has loaded the
        deploy's target as a shadow standby and replayed today's traffic on it (or refused to
        load it). None: nothing to wait for (not a deploy, or not lastgood's own replicas)."""
        if op.shadow is None or env.switch_mode is not SwitchMode.SERVING:
            return None
        deadline = self._clock.monotonic() + env.switch_timeout_s
        pause = self._settings.first_poll_s
        while True:
            with self._uow() as uow:
                self._ledger.take_lease(uow, op.model, op.env)
                uow.commit()
                reports = uow.replicas.list(model=op.model, env=op.env)
            live = live_replicas(reports, now=self._ledger.now(),
                                 stale_s=self._settings.replica_stale_s)
            progress = shadow_progress(live, op.shadow, since=op.created_at)
            if not progress.waiting or self._clock.monotonic() >= deadline:
                return progress
            self._clock.sleep(min(pause, self._settings.poll_s))
            pause *= 2

    def _check_confirmed(self, op: Operation) -> Operation:
        """A plan a person confirmed: its checks ran when it was shown; run it only while what
        it stood on still holds (safety rule 13), else stop with every change named."""
        confirmed = op.trigger["confirmed"]
        planned = basis_from_json(confirmed["basis"])
        changed = self._chooser.changes(op, planned)
        if changed:
            return self._ledger.commit(op, Phase.FAILED, "operation.plan_changed",
                                       outcome="refused",
                                       error=f"{PLAN_CHANGED}: {'; '.join(changed)}",
                                       evidence={"plan": confirmed["plan"],
                                                 "changes": list(changed)})
        # The plan's candidates, each with the checks it showed (replay's among them), go into
        # the audit event as an unconfirmed rollback's do.
        return self._ledger.commit(op, Phase.SWITCHING, "operation.checked",
                                   candidates=op.candidates, target_version=planned.target,
                                   evidence={"target": planned.target, "plan": confirmed["plan"],
                                             "checks": "run once, when the plan was shown"})

    def switch(self, op: Operation) -> Operation:
        """Run the deploy command (command mode), then move the live pointer to the target."""
        assert op.target_version is not None
        with self._uow() as uow:
            env = uow.environments.get(op.env)
            target = uow.versions.get(op.model, op.target_version)
            live = uow.deployments.live(op.model, op.env)
        if live is not None and live.operation_id == op.id:
            return self._ledger.commit(op, Phase.CONFIRMING, "operation.confirming",
                                       evidence={"note": "the pointer had moved before the "
                                                         "operation stopped"})
        if env.switch_mode is SwitchMode.COMMAND:
            failure = self._run_deploy_command(env, target)
            if failure is not None:
                return self._ledger.commit(op, Phase.FAILED, "switch.failed", outcome="failed",
                                           error=failure,
                                           evidence={"command": env.deploy_command})
        moved = op.advance(Phase.CONFIRMING, at=self._ledger.now())
        return self._ledger.record(moved, also=partial(self._move_pointer, moved))

    def confirm(self, op: Operation) -> Operation:
        """Wait for the replicas to report the target (serving mode), then leave CONFIRMING."""
        with self._uow() as uow:
            env = uow.environments.get(op.env)
        confirmation = self._await_replicas(op, env)
        if confirmation.get("timed_out"):
            return self._ledger.commit(op, Phase.ESCALATED, "operation.escalated",
                                       outcome="failed",
                                       error="replicas did not report the target in time",
                                       evidence=confirmation)
        nxt = Phase.ARCHIVING if op.kind is OperationKind.ROLLBACK else Phase.VERIFYING
        lost = list(confirmation.get("lost", ()))
        if not lost:
            return self._ledger.commit(op, nxt, "switch.confirmed", evidence=confirmation)
        # A replica that went silent while the switch was confirmed is named in the result
        # and the trail: the switch holds on the others, but someone must look at that one.
        return self._ledger.commit(op, nxt, "switch.confirmed", evidence=confirmation,
                                   also=partial(self._lost, op, lost),
                                   trigger={**op.trigger, "lost_replicas": lost})

    def archive(self, op: Operation) -> Operation:
        """Write the forensic bundle of the failed state; record it and quarantine in one commit."""
        at = self._ledger.now()
        with self._uow() as uow:
            bundle = build_bundle(uow, op, at=at, host=self._host.facts(),
                                  evidence=self._evidence)
        blob = self._store.put(io.BytesIO(bundle.data))
        record = ArchiveRecord(id=archive_id_for(op), model=op.model, env=op.env,
                               version=op.from_version or 0, operation_id=op.id,
                               sha256=blob.sha256, size=blob.size, created_at=at,
                               manifest=bundle.manifest)

        def writes(uow: UnitOfWork) -> None:
            uow.archives.add(record)
            self._quarantine(uow, op)

        return self._ledger.commit(op, Phase.VERIFYING, "archive.created", after={
            "archive_id": record.id, "sha256": record.sha256, "size": record.size},
            also=writes, archive_id=record.id)

    def verify(self, op: Operation) -> Operation:
        """Judge the restored version live against its own baseline."""
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
            return self._ledger.commit(op, Phase.ESCALATED, "operation.escalated",
                                       outcome="failed",
                                       error=f"verification {check.verdict}: {check.summary}",
                                       evidence=evidence)
        also = None
        if check.verdict is Verdict.HEALTHY and record is not None:
            also = partial(self._reverify, op, record, check.summary)
        return self._ledger.commit(op, Phase.SUCCEEDED, "operation.succeeded",
                                   evidence=evidence, also=also)

    # -- pieces --------------------------------------------------------------------------------

    def _reverify(self, op: Operation, earlier: VerifiedRecord, summary: str,
                  uow: UnitOfWork) -> None:
        """A restored version that passed live verification is verified again, carrying the
        baseline it was judged against (so it stays a target with its own evidence)."""
        live = uow.deployments.live(op.model, op.env)
        if live is None or live.version != op.target_version or live.is_verified:
            return
        now = self._ledger.now()
        uow.deployments.set_verified(live.id, VerifiedRecord(
            baseline=dict(earlier.baseline), window_start=live.started_at, window_end=now,
            approver="lastgood", at=now, reason=f"restored and verified live: {summary}",
            distribution=dict(earlier.distribution)))
        uow.events.append(self._ledger.event(op, "deployment.verified", after={
            "verified": True, "deployment_id": live.id, "version": live.version}), at=now)

    def _move_pointer(self, op: Operation, uow: UnitOfWork) -> None:
        """End the live deployment and start the target's, with the event."""
        assert op.target_version is not None
        end = (DeploymentEnd.ROLLED_BACK if op.kind is OperationKind.ROLLBACK
               else DeploymentEnd.SUPERSEDED)
        live = uow.deployments.live(op.model, op.env)
        now = self._ledger.now()
        if live is not None:
            uow.deployments.end(live.id, at=now, end=end, reason=op.reason)
        dep = uow.deployments.start(model=op.model, env=op.env, version=op.target_version,
                                    at=now, actor=op.actor, reason=op.reason,
                                    operation_id=op.id)
        uow.events.append(self._ledger.event(op, "deployment.switched",
                                             before={"version": live.version if live else None},
                                             after={"version": op.target_version,
                                                    "deployment_id": dep.id,
                                                    "phase": str(op.phase)}), at=now)

    def _run_deploy_command(self, env: Environment, target: Version) -> str | None:
        # The whole model directory, as registered: a local copy for the command to load or
        # upload, removed after, and the same directory published beside the store's blobs
        # (an s3:// prefix for an S3 store) that a KServe storageUri or a SageMaker model
        # loads as it is.
        with tempfile.TemporaryDirectory(prefix="lastgood-model-") as scratch:
            model_dir = materialize(self._store, target, Path(scratch) / target.model)
            published = self._store.publish(model_dir, f"{target.model}/{target.number}")
            variables = {**target_variables(target, env.name, self._store.url),
                         "LASTGOOD_MODEL_DIR": str(model_dir),
                         "LASTGOOD_MODEL_URI": published}
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
        deadline = self._clock.monotonic() + env.switch_timeout_s
        pause = self._settings.first_poll_s
        seen: set[str] = set()  # replicas live at some look during this wait
        while True:
            with self._uow() as uow:
                self._ledger.take_lease(uow, op.model, op.env)
                uow.commit()
                reports = uow.replicas.list(model=op.model, env=op.env)
            now = self._ledger.now()
            live = live_replicas(reports, now=now, stale_s=self._settings.replica_stale_s)
            seen |= {r.replica_id for r in live}
            lost = _lost_since(reports, seen, live, now=now,
                               stale_s=self._settings.replica_stale_s)
            behind = [r.replica_id for r in live if r.version != op.target_version]
            if not behind:
                return {"mode": "serving", "replicas": sorted(r.replica_id for r in live),
                        "note": "" if live else "no live replica; each follows at start",
                        **({"lost": lost} if lost else {})}
            if self._clock.monotonic() >= deadline:
                return {"mode": "serving", "timed_out": True, "behind": behind,
                        **({"lost": lost} if lost else {})}
            self._clock.sleep(min(pause, self._settings.poll_s))
            pause *= 2

    def _lost(self, op: Operation, lost: list[dict[str, Any]], uow: UnitOfWork) -> None:
        for replica in lost:
            uow.events.append(self._ledger.event(
                op, "replica.lost", outcome="failed", evidence=replica),
                at=self._ledger.now())

    def _quarantine(self, uow: UnitOfWork, op: Operation) -> None:
        if op.from_version is None:
            return
        failed = uow.versions.get(op.model, op.from_version)
        if not op.cause.quarantines:
            # Not the version's fault (or not known to be): it stays a rollback target, and the
            # trail says why it was not quarantined.
            uow.events.append(self._ledger.event(
                op, "version.kept", after={"status": str(failed.status),
                                           "version": failed.number},
                evidence={"cause": str(op.cause),
                          "note": f"rollback cause {op.cause}: v{failed.number} is not "
                                  "quarantined"}), at=self._ledger.now())
            return
        if failed.status is VersionStatus.ACTIVE:
            uow.versions.set_status(op.model, failed.number, VersionStatus.QUARANTINED)
            uow.events.append(self._ledger.event(op, "version.quarantined",
                                                 before={"status": str(failed.status)},
                                                 after={"status": "quarantined",
                                                        "version": failed.number},
                                                 evidence={"cause": str(op.cause)}),
                              at=self._ledger.now())


def _add_archive(record: ArchiveRecord, uow: UnitOfWork) -> None:
    uow.archives.add(record)


def _unloadable(cand: Candidate, shadow: ShadowProgress) -> Candidate:
    """`cand` refused where a replica could not load it as a shadow: switching to it there
    would leave that replica behind."""
    why = tuple(f"v{cand.version} could not be loaded on {replica}: {reason}"
                for replica, reason in shadow.refused)
    return replace(cand, refusals=cand.refusals + why)


def _lost_since(reports: Sequence[ReplicaReport], seen: set[str],
                live: Sequence[ReplicaReport], *, now: datetime,
                stale_s: float) -> list[dict[str, Any]]:
    """The replicas live earlier in the wait that are no longer: who, how, silent since when."""
    alive = {r.replica_id for r in live}
    return [{"replica": r.replica_id, "liveness": str(liveness(r, now=now, stale_s=stale_s)),
             "last_seen": r.seen_at.isoformat(), "version": r.version}
            for r in reports if r.replica_id in seen and r.replica_id not in alive]
