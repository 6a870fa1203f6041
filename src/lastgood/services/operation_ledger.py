"""The engine's one write path: every commit of an operation goes through `OperationLedger`.

A commit takes (or renews) the deployment's lease, saves the operation, runs the step's extra
writes and appends the events, in one transaction (safety rules 3 and 6). `commit()` moves to a
new phase with its phase event; `record()` saves an operation whose step writes its own event
(the pointer move, whose `deployment.switched` event is the CONFIRMING commit's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lastgood.domain import codec
from lastgood.domain.audit import EventDraft
from lastgood.domain.deployments import STALE_AFTER_S
from lastgood.domain.errors import OperationInProgress
from lastgood.domain.operations import Operation, Phase
from lastgood.ports import Clock, Processes, UnitOfWork, UnitOfWorkFactory
from lastgood.services.processes import UNTOLD

PhaseHook = Callable[[Operation], None]
Writes = Callable[[UnitOfWork], None]
"""Extra writes a step makes inside its commit (e.g. the archive row and the quarantine)."""


def lease_key(model: str, env: str) -> str:
    return f"deployment:{model}/{env}"


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Timing knobs of the engine, and the small ports it reads time and processes through."""

    lease_ttl_s: float = 30.0
    replica_stale_s: float = STALE_AFTER_S
    poll_s: float = 0.2
    first_poll_s: float = 0.01  # replicas switch in milliseconds: look soon, then back off
    after_phase: PhaseHook | None = None
    """Told each committed phase while the lease is held; a crash drill stops the process here."""
    processes: Processes = UNTOLD  # who holds a lease, whether its process is gone (the root's)


class OperationLedger:
    """Commits operations with their events under the deployment's lease."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, settings: EngineSettings):
        self._uow, self._clock, self._settings = uow, clock, settings
        self.holder = settings.processes.holder()

    def commit(self, op: Operation, phase: Phase, action: str, *, outcome: str = "ok",
               evidence: Mapping[str, Any] | None = None, after: Mapping[str, Any] | None = None,
               also: Writes | None = None, **changes: Any) -> Operation:
        """Save the operation in `phase` with its phase event (plus `after` facts)."""
        nxt = op.advance(phase, at=self.now(), **changes)
        body = dict(evidence or {})
        if "candidates" in changes:
            body["candidates"] = [codec.candidate_to_json(c) for c in nxt.candidates]
        if nxt.error:
            body["error"] = nxt.error
        phase_event = self.event(nxt, action, outcome=outcome, before={"phase": str(op.phase)},
                                 after={"phase": str(phase), **(after or {})}, evidence=body)

        def writes(uow: UnitOfWork) -> None:
            if also is not None:
                also(uow)
            if nxt.shadow != op.shadow:  # a deploy's shadow standby comes or goes
                uow.deployments.touch(op.env)
            uow.events.append(phase_event, at=self.now())

        return self.record(nxt, also=writes)

    def record(self, op: Operation, *, also: Writes) -> Operation:
        """Save `op` and run `also` (which appends its events) in one transaction."""
        with self._uow() as uow:
            self.take_lease(uow, op.model, op.env)
            uow.operations.save(op)
            also(uow)
            uow.commit()
        return op

    def event(self, op: Operation, action: str, *, outcome: str = "ok",
              before: Mapping[str, Any] | None = None, after: Mapping[str, Any] | None = None,
              evidence: Mapping[str, Any] | None = None) -> EventDraft:
        return EventDraft(action=action, actor=op.actor, model=op.model, env=op.env,
                          subject=op.id, reason=op.reason, before=before, after=after,
                          evidence={"operation": op.id, "kind": str(op.kind), **(evidence or {})},
                          outcome=outcome)

    def take_lease(self, uow: UnitOfWork, model: str, env: str) -> None:
        """Take or renew the deployment's lease; a lease of a dead local process is broken."""
        key, ttl = lease_key(model, env), self._settings.lease_ttl_s
        try:
            uow.leases.acquire(key, holder=self.holder, now=self.now(), ttl_s=ttl)
        except OperationInProgress as exc:
            holder = str(exc.details.get("holder", ""))
            if not holder or not self._settings.processes.is_dead(holder):
                raise
            uow.leases.release(key, holder=holder)
            uow.leases.acquire(key, holder=self.holder, now=self.now(), ttl_s=ttl)

    def renew(self, model: str, env: str) -> None:
        """Take or renew the lease in a transaction of its own."""
        with self._uow() as uow:
            self.take_lease(uow, model, env)
            uow.commit()

    def release(self, model: str, env: str) -> None:
        with self._uow() as uow:
            uow.leases.release(lease_key(model, env), holder=self.holder)
            uow.commit()

    def now(self) -> datetime:
        return self._clock.now()
