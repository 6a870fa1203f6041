"""The operation engine: one deploy or rollback as a persisted state machine.

`step()` runs the handler of the operation's current step (`operation_steps`): it does one piece
of work, then commits through the one write path (`operation_ledger`) — the next phase with its
audit event, in one transaction under the deployment's lease (safety rules 3 and 6). Every
handler is idempotent, so `resume()` after a crash simply steps again. The live pointer is only
ever the old version or the target.

Time (the `Clock`: now, the replica wait's deadline, its pauses) and process liveness
(`EngineSettings.processes`) come in through ports, so tests step the engine on fakes and change
the world between steps. The engine has no crash drill of its own: `EngineSettings.after_phase`
is told each committed phase, and the drill (`LASTGOOD_HALT_AFTER`) is a hook the composition
root passes there.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from lastgood.domain.operations import Operation, OperationKind, Phase
from lastgood.domain.plans import PlanBasis
from lastgood.ports import (
    ArtifactStore,
    Clock,
    CommandRunner,
    EvidenceSource,
    Host,
    ReadinessSource,
    UnitOfWork,
    UnitOfWorkFactory,
    Verifier,
)
from lastgood.services.operation_ledger import EngineSettings, OperationLedger, lease_key
from lastgood.services.operation_steps import Handler, PhaseSteps
from lastgood.services.outcomes import no_target_error
from lastgood.services.targeting import ChecksFor, Evaluation, TargetChooser

__all__ = ["ChecksFor", "EngineSettings", "OperationEngine", "lease_key", "new_operation_id",
           "no_target_error"]


def new_operation_id() -> str:
    return f"op-{uuid.uuid4().hex[:12]}"


class OperationEngine:
    """Steps operations phase by phase; see the module docstring for the guarantees."""

    def __init__(self, *, uow: UnitOfWorkFactory, store: ArtifactStore, clock: Clock, host: Host,
                 checks_for: ChecksFor, readiness: ReadinessSource, commands: CommandRunner,
                 verifier: Verifier,
                 evidence: EvidenceSource, settings: EngineSettings | None = None):
        settings = settings or EngineSettings()
        self._uow, self._settings = uow, settings
        self._ledger = OperationLedger(uow=uow, clock=clock, settings=settings)
        self.holder = self._ledger.holder
        self._chooser = TargetChooser(uow=uow, host=host, checks_for=checks_for,
                                      readiness=readiness)
        self._handlers: Mapping[Phase, Handler] = PhaseSteps(
            uow=uow, ledger=self._ledger, chooser=self._chooser, store=store, host=host,
            commands=commands, verifier=verifier, evidence=evidence, settings=settings,
            clock=clock).handlers()

    def start(self, op: Operation, *, resumed: tuple[str, ...] = ()) -> Operation:
        """Persist a new PLANNED operation under the deployment's lease, with its event.

        `resumed` names the unfinished operations this command finished first (audited)."""
        after: dict[str, Any] = {"kind": str(op.kind), "from_version": op.from_version,
                                 "target_version": op.target_version, "forced": op.forced}
        if resumed:
            after["resumed"] = list(resumed)
        if op.kind is OperationKind.ROLLBACK:
            after["cause"] = str(op.cause)
        if op.dry_run:
            after["dry_run"] = True
        if op.trigger.get("confirmed"):
            confirmed = dict(op.trigger["confirmed"])
            after["confirmed"] = {k: confirmed[k] for k in ("by", "plan", "target", "digest")}
        planned = self._ledger.event(op, "operation.planned", after=after)

        def writes(uow: UnitOfWork) -> None:
            uow.events.append(planned, at=self._ledger.now())

        return self._ledger.record(op, also=writes)

    def step(self, op_id: str) -> Operation:
        """Run the current step's handler once; returns the operation as committed."""
        with self._uow() as uow:
            op = uow.operations.get(op_id)
        if op.phase.is_terminal:
            return op
        return self._handlers[op.phase](op)

    def run_to_completion(self, op_id: str, *,
                          on_phase: Callable[[Operation], None] | None = None) -> Operation:
        """Step until a terminal phase, telling `on_phase` each new phase; always gives the
        lease back."""
        with self._uow() as uow:
            op = uow.operations.get(op_id)
        after_phase = self._settings.after_phase
        try:
            if after_phase:
                after_phase(op)
            while not op.phase.is_terminal:
                op = self.step(op.id)
                if on_phase:
                    on_phase(op)
                if after_phase:
                    after_phase(op)
        finally:
            self._ledger.release(op.model, op.env)
        return op

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
            self._ledger.renew(op.model, op.env)
            if abort_unswitched and op.phase in (Phase.PLANNED, Phase.CHECKING):
                op = self._ledger.commit(op, Phase.FAILED, "operation.aborted", outcome="failed",
                                         error="interrupted before the switch; a new command "
                                               "superseded it (live unchanged)")
            done.append(self.run_to_completion(op.id))
        return done

    def evaluate(self, op: Operation) -> Evaluation:
        """Rank candidates and run preflight on each until one passes (also used for dry runs)."""
        return self._chooser.evaluate(op)

    def plan(self, op: Operation) -> tuple[Evaluation, PlanBasis]:
        """`evaluate`, with the facts the plan stands on (a person may confirm it)."""
        return self._chooser.judge(op)
