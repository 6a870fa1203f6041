"""What the preflight would say of a rollback target now, known cheaply: first the integrity
of its stored artifacts.

`status` (and the watch, which reads it every tick) asks whether the way back would pass the
preflight's integrity check now. Re-hashing every artifact on every look would cost a full read
of each model; so each stored blob's result is kept with the store's `stamp` of it (size and
modification time, or the object's ETag) and read again only when the stamp changes (a damaged,
replaced or deleted file) or the result is older than `recheck_s` (damage that kept its size
and time, e.g. bit rot, is still found on that schedule). The preflight itself always re-hashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lastgood.domain.errors import LastGoodError
from lastgood.domain.versions import Version
from lastgood.ports import ArtifactStore, Clock, Host, UnitOfWorkFactory
from lastgood.services.preflight import Check, CheckContext, run_checks

__all__ = ["RECHECK_S", "StandingChecks", "StoredIntegrity"]

RECHECK_S = 3600.0  # an unchanged blob is re-hashed once an hour


@dataclass(frozen=True, slots=True)
class _Seen:
    stamp: str
    problem: str  # "" when the bytes hashed to their digest
    at: datetime


class StoredIntegrity:
    """Whether a version's stored artifacts still hash to their manifest, cached by stamp."""

    def __init__(self, *, store: ArtifactStore, clock: Clock, recheck_s: float = RECHECK_S):
        self._store, self._clock, self._recheck_s = store, clock, recheck_s
        self._seen: dict[str, _Seen] = {}

    def problem(self, version: Version) -> str:
        """What the integrity check would say fails for `version` now ("" when it passes)."""
        files = version.manifest.files
        bad = [(f.path, p) for f in files if (p := self._blob_problem(f.sha256, f.size))]
        if not bad:
            return ""
        return (f"{len(bad)} of {len(files)} artifact(s) fail their digest: "
                + "; ".join(f"{path}: {why}" for path, why in bad))

    def _blob_problem(self, sha256: str, size: int) -> str:
        now = self._clock.now()
        try:
            stamp = self._store.stamp(sha256)
        except LastGoodError as exc:
            self._seen.pop(sha256, None)
            return exc.message
        seen = self._seen.get(sha256)
        if seen and seen.stamp == stamp and (now - seen.at).total_seconds() < self._recheck_s:
            return seen.problem
        problem = self._hash(sha256, size)
        self._seen[sha256] = _Seen(stamp, problem, now)
        return problem

    def _hash(self, sha256: str, size: int) -> str:
        try:
            data = self._store.read(sha256)  # the store verifies the digest while reading
        except LastGoodError as exc:
            return exc.message
        return f"size {len(data)} != {size}" if len(data) != size else ""


class StandingChecks:
    """What the preflight would refuse a target for now, as cheaply as a status look allows.

    Integrity comes from `StoredIntegrity` (re-hashed only on change or on schedule); runtime,
    resources, data contract and signature are pure comparisons against the host's cached facts
    and run as the preflight runs them. The smoke check is the replicas' readiness evidence, and
    a team's custom commands run only inside a real preflight (they may be slow or act).
    """

    def __init__(self, *, uow: UnitOfWorkFactory, host: Host, integrity: StoredIntegrity,
                 checks: Sequence[Check]) -> None:
        self._uow, self._host, self._integrity, self._checks = uow, host, integrity, checks

    def failing(self, target: Version, env: str) -> tuple[str, str] | None:
        """(check, why) of the first check that would refuse `target` in `env` now, or None."""
        problem = self._integrity.problem(target)
        if problem:
            return "integrity", problem
        with self._uow() as uow:
            environment = uow.environments.get(env)
            live = uow.deployments.live(target.model, env)
            live_version = uow.versions.get(target.model, live.version) if live else None
        ctx = CheckContext(target=target, env=environment, live=live_version,
                           host=self._host.facts())
        failed = next((r for r in run_checks(self._checks, ctx) if r.blocks), None)
        return (failed.name, failed.summary) if failed else None
