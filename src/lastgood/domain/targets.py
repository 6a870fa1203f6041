"""Rollback target selection: the most recent verified version, never just "the previous one"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lastgood.domain.deployments import Deployment
from lastgood.domain.operations import Candidate
from lastgood.domain.versions import Version, VersionStatus


def rank_candidates(
    history: Sequence[Deployment],
    versions: Mapping[int, Version],
    *,
    live_version: int | None,
) -> list[Candidate]:
    """Every version that served the env, most recently served first, with static refusals.

    A version qualifies through its latest *verified* deployment; a version that served but was
    never verified is listed with that refusal so the operator sees why it was passed over.
    """
    newest_first = sorted(history, key=lambda d: (d.started_at, d.id), reverse=True)
    seen: dict[int, Candidate] = {}
    for dep in newest_first:
        if dep.version in seen:
            continue
        verified = next((d for d in newest_first if d.version == dep.version and d.is_verified),
                        None)
        chosen = verified or dep
        seen[dep.version] = Candidate(
            version=dep.version,
            deployment_id=chosen.id,
            tag=versions[dep.version].tag if dep.version in versions else None,
            refusals=tuple(static_refusals(chosen, versions.get(dep.version), live_version)),
        )
    return list(seen.values())


def static_refusals(
    dep: Deployment, version: Version | None, live_version: int | None
) -> list[str]:
    """Reasons known from the registry alone, before any preflight check runs."""
    reasons: list[str] = []
    if version is None:
        return [f"version {dep.version} is missing from the registry"]
    if dep.version == live_version:
        reasons.append("is the live version")
    if version.status is VersionStatus.QUARANTINED:
        reasons.append("is quarantined (it failed in production)")
    elif version.status is VersionStatus.RETIRED:
        reasons.append("is retired")
    if not dep.is_verified:
        reasons.append(f"was never verified in {dep.env}")
    return reasons


def forced_candidate(version: Version, live_version: int | None) -> Candidate:
    """A `--to ... --force` target: only hard facts refuse it (it is live, it is retired)."""
    reasons = ["is the live version"] if version.number == live_version else []
    return Candidate(version=version.number, deployment_id=None, tag=version.tag,
                     refusals=tuple(reasons))


def requested_candidate(
    version: Version, history: Sequence[Deployment], live_version: int | None
) -> Candidate:
    """A `--to` target without force: it must pass the same rules as an automatic choice."""
    deps = [d for d in history if d.version == version.number]
    verified = [d for d in deps if d.is_verified]
    if verified:
        dep = max(verified, key=lambda d: (d.started_at, d.id))
        return Candidate(version=version.number, deployment_id=dep.id, tag=version.tag,
                         refusals=tuple(static_refusals(dep, version, live_version)))
    reasons = ["was never verified in this environment"]
    if version.status is not VersionStatus.ACTIVE:
        reasons.insert(0, f"is {version.status}")
    if version.number == live_version:
        reasons.insert(0, "is the live version")
    return Candidate(version=version.number, deployment_id=None, tag=version.tag,
                     refusals=tuple(reasons))
