"""Where the watch's findings go: the audit log (records and decisions) and the notifier."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from lastgood.domain.audit import EventDraft
from lastgood.domain.baselines import headline
from lastgood.domain.decisions import Notice
from lastgood.domain.deployments import Deployment, VerifiedRecord
from lastgood.domain.health import Assessment, Verdict
from lastgood.domain.measurements import LiveWindow
from lastgood.domain.watching import assessment_view
from lastgood.ports import Clock, Notifier, UnitOfWorkFactory

log = logging.getLogger("lastgood.watch")


def window_view(window: LiveWindow) -> dict[str, Any]:
    """A live window as JSON-ready evidence: when, what the source reported, headline numbers."""
    return {"started_at": window.started_at.isoformat(),
            "observed_at": window.observed_at.isoformat(), "problems": dict(window.problems),
            "measured": headline(window.summary)}


class WatchOutput:
    """Writes the watch's events and verified records, and tells the notifier."""

    def __init__(self, *, uow: UnitOfWorkFactory, notifier: Notifier, clock: Clock, actor: str,
                 source: str) -> None:
        self._uow, self._notifier, self._clock = uow, notifier, clock
        self._actor, self._source = actor, source

    def set_verified(self, dep: Deployment, record: VerifiedRecord, action: str, reason: str,
                     window: LiveWindow, assessment: Assessment | None = None) -> bool:
        """Write the record only if `dep` is still the live deployment (checked in the
        transaction, so a switch in between never gets someone else's baseline)."""
        with self._uow() as uow:
            live = uow.deployments.live(dep.model, dep.env)
            if live is None or live.id != dep.id:
                return False
            uow.deployments.set_verified(dep.id, record)
            uow.events.append(EventDraft(
                action=action, actor=self._actor, model=dep.model, env=dep.env,
                subject=f"v{dep.version}", reason=reason,
                before={"verified": dep.is_verified},
                after={"verified": True, "deployment_id": dep.id, "version": dep.version},
                evidence={"baseline": dict(record.baseline), "window": window_view(window),
                          "source": self._source,
                          **({"assessment": assessment_view(assessment)} if assessment
                             else {})}), at=self._clock.now())
            uow.commit()
        log.info("%s v%s in %s: %s", dep.model, dep.version, dep.env, reason)
        return True

    def write(self, dep: Deployment, action: str, reason: str, evidence: Mapping[str, Any], *,
              after: Mapping[str, Any] | None = None, outcome: str = "ok") -> None:
        """One audit event about `dep`."""
        with self._uow() as uow:
            uow.events.append(EventDraft(action=action, actor=self._actor,
                                         model=dep.model, env=dep.env, subject=f"v{dep.version}",
                                         reason=reason, after=after, evidence=evidence,
                                         outcome=outcome), at=self._clock.now())
            uow.commit()

    def notify(self, dep: Deployment, decision: str, verdict: Verdict, summary: str,
               severity: str, evidence: Mapping[str, Any]) -> None:
        """One notice about `dep` (the notifier never raises)."""
        self._notifier.notify(Notice(model=dep.model, env=dep.env, version=dep.version,
                                     decision=decision, verdict=str(verdict), summary=summary,
                                     at=self._clock.now(), severity=severity,
                                     evidence=evidence))
