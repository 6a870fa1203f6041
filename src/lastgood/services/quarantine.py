"""The quarantine's lifecycle: which versions are quarantined, why, and lifting one (audited).

A rollback whose cause is the version's own (`--cause model`) quarantines the version it
replaced: it is never a rollback target again. A person who finds the cause was elsewhere lifts
the quarantine with a reason; the version is active again (a forward event, never a rewrite)
and becomes a rollback target where it was verified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from lastgood.domain.audit import Event, EventDraft
from lastgood.domain.errors import InvalidInput, LastGoodError, PreconditionFailed
from lastgood.domain.versions import Version, VersionStatus, parse_ref
from lastgood.ports import Clock, UnitOfWork, UnitOfWorkFactory

__all__ = ["Quarantine", "QuarantineService", "lift_reason"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Quarantine:
    """One quarantined version and the event that quarantined it (None: not in the trail)."""

    version: Version
    since: datetime | None = None
    operation: str = ""
    cause: str = ""
    reason: str = ""


class QuarantineService:
    """List quarantined versions; lift a quarantine with a reason."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow, self._clock = uow, clock

    def list(self, *, model: str | None = None) -> list[Quarantine]:
        """Every quarantined version (of `model`, or of every model), oldest model first."""
        with self._uow() as uow:
            names = [model] if model is not None else [m.name for m in uow.models.list()]
            out: list[Quarantine] = []
            for name in names:
                held = [v for v in uow.versions.list(name)
                        if v.status is VersionStatus.QUARANTINED]
                if held:
                    events = uow.events.list(model=name)
                    out.extend(_record(v, events) for v in sorted(held, key=lambda v: v.number))
            return out

    def lift(self, model: str, ref: str | int, *, reason: str | None, actor: str) -> Version:
        """Make a quarantined version active again; refused (and audited) for any other."""
        return self._audited(actor, model, lambda: self._lift(model, ref, reason, actor))

    def _lift(self, model: str, ref: str | int, reason: str | None, actor: str) -> Version:
        why = lift_reason(reason)
        with self._uow() as uow:
            version = uow.versions.get(model, parse_ref(str(ref)))
            _check_quarantined(version)
            updated = uow.versions.set_status(model, version.number, VersionStatus.ACTIVE)
            uow.events.append(EventDraft(
                action="quarantine.lifted", actor=actor, model=model,
                subject=f"v{version.number}", reason=why,
                before={"status": str(version.status)},
                after={"status": str(updated.status), "version": version.number}),
                at=self._clock.now())
            uow.commit()
            return updated

    def _audited(self, actor: str, model: str, body: Callable[[], T]) -> T:
        try:
            return body()
        except LastGoodError as exc:
            self._refused(actor, model, exc)
            raise

    def _refused(self, actor: str, model: str, exc: LastGoodError) -> None:
        try:
            with self._uow() as uow:
                _append_refusal(uow, actor, model, exc, at=self._clock.now())
                uow.commit()
        except LastGoodError:
            pass  # the registry itself is down: the caller still gets the original error


def lift_reason(reason: str | None) -> str:
    """The reason of a lift, stripped; InvalidInput when there is none."""
    if not reason or not reason.strip():
        raise InvalidInput("lifting a quarantine needs a reason",
                           fix="pass --reason 'why the version was not at fault' "
                               "(it goes into the audit trail)")
    return reason.strip()


def _check_quarantined(version: Version) -> None:
    if version.status is VersionStatus.RETIRED:
        raise PreconditionFailed(
            f"{version.ref} is retired, not quarantined: a retired version "
            "never serves again",
            fix="register the model again if it must serve (a new version)")
    if version.status is not VersionStatus.QUARANTINED:
        raise PreconditionFailed(
            f"{version.ref} is not quarantined (it is {version.status})",
            fix="nothing to lift; see the quarantined versions: lastgood quarantine list")


def _append_refusal(uow: UnitOfWork, actor: str, model: str, exc: LastGoodError, *,
                    at: datetime) -> None:
    uow.events.append(EventDraft(
        action="quarantine.lift.refused", actor=actor, model=model, reason=exc.message,
        outcome="refused", evidence={"error": type(exc).__name__, "fix": exc.fix}), at=at)


def _record(version: Version, events: list[Event]) -> Quarantine:
    found = [e for e in events if e.action == "version.quarantined" and e.draft.after
             and e.draft.after.get("version") == version.number]
    if not found:
        return Quarantine(version)
    last = found[-1]
    return Quarantine(version, since=last.at, operation=str(last.draft.subject or ""),
                      cause=str(last.draft.evidence.get("cause", "model")),
                      reason=last.draft.reason)
