"""Exactly one acting watch per environment, however many run (`serve --watch` on every replica,
or a `lastgood watch` beside them): the one holding the environment's watch lease looks and acts,
the others stand by and take over when it stops renewing.

The lease is the operations' lease mechanism (`LeaseRepository`, an atomic upsert with an expiry),
under its own key. The acting watch renews it on every look; one that crashed is taken over once
the lease expires (`ttl_s`), or at once when its holder was a process on this host that no longer
exists.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lastgood.domain.errors import LastGoodError, OperationInProgress
from lastgood.ports import Clock, Processes, UnitOfWorkFactory
from lastgood.services.processes import UNTOLD

log = logging.getLogger("lastgood.watch")

DEFAULT_LEASE_TTL_S = 10.0


def watch_lease_key(env: str) -> str:
    return f"watch:{env}"


@dataclass(frozen=True, slots=True)
class Standing:
    """Whether this watch acts now, and who does when it does not."""

    acting: bool
    holder: str
    why: str = ""


class WatchLease:
    """Takes, renews and gives back the watch lease of one environment."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, env: str,
                 holder: str | None = None, ttl_s: float = DEFAULT_LEASE_TTL_S,
                 processes: Processes = UNTOLD) -> None:
        self._uow, self._clock, self.env, self._ttl = uow, clock, env, ttl_s
        self._processes = processes
        self.holder = holder or processes.holder()
        self._last: Standing | None = None

    def hold(self) -> Standing:
        """Take or renew the lease; a Standing that says who acts when another watch holds it."""
        standing = self._try()
        if standing.acting is False and self._processes.is_dead(standing.holder):
            self._release(standing.holder)  # a crashed watch on this host: take over now
            standing = self._try()
        if self._last is None or self._last.acting != standing.acting:
            log.info("watch of %s %s", self.env, "acting: this watch holds the lease"
                     if standing.acting else f"standing by: {standing.why}")
        self._last = standing
        return standing

    def release(self) -> None:
        """Give the lease up (on a clean stop), so a standby takes over at its next look."""
        self._release(self.holder)

    def _try(self) -> Standing:
        try:
            with self._uow() as uow:
                uow.leases.acquire(watch_lease_key(self.env), holder=self.holder,
                                   now=self._clock.now(), ttl_s=self._ttl)
                uow.commit()
        except OperationInProgress as exc:
            return Standing(False, str(exc.details.get("holder", "")), exc.message)
        except LastGoodError as exc:  # the registry is unreachable: nobody can act on it
            return Standing(False, "", f"the lease cannot be read: {exc.one_line()}")
        return Standing(True, self.holder)

    def _release(self, holder: str) -> None:
        try:
            with self._uow() as uow:
                uow.leases.release(watch_lease_key(self.env), holder=holder)
                uow.commit()
        except LastGoodError as exc:
            log.warning("could not give the watch lease of %s back: %s", self.env,
                        exc.one_line())


class AlwaysActing:
    """The lease of a watch that is alone by construction (tests, `--once`): it always acts."""

    holder = "alone"

    def hold(self) -> Standing:
        return Standing(True, self.holder)

    def release(self) -> None:
        return None
