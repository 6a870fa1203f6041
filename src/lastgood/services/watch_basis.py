"""What the watch keeps about a deployment between looks, and the baseline it judges it against
now (the domain's rules in `lastgood.domain.watching`, applied to one tick's history)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from lastgood.domain.baselines import StatedBaseline
from lastgood.domain.decisions import DecisionKind
from lastgood.domain.deployments import Deployment
from lastgood.domain.health import HealthPolicy, Verdict
from lastgood.domain.measurements import LiveWindow, Summary
from lastgood.domain.watching import (
    judges_requests,
    recorded_baseline,
    reference_deployment,
    stated_baseline,
    sufficient,
    window_start,
)


@dataclass(slots=True)
class Track:
    """What the watch remembers about one deployment between ticks."""

    deployment_id: int
    last: tuple[DecisionKind, Verdict] | None = None
    inconclusive_since: datetime | None = None
    first_seen: datetime | None = None
    first_evidence: tuple[datetime, str] | None = None
    own_baseline: tuple[datetime, Summary] | None = None
    paused_at: datetime | None = None
    held_back: bool = False  # the input's errors hold a rollback back (written once)


@dataclass(frozen=True, slots=True)
class Basis:
    """The baseline a deployment is judged against now, and from where its window starts."""

    summary: Summary | None
    since: datetime
    source: str
    why_none: str = ""
    stated: StatedBaseline | None = None  # values a person stated at `verify`
    provisional: bool = False  # stated feedback values judge; the request signals wait for
    # the deployment's own first bake window (recorded, never verified on, while provisional)


def basis_for(dep: Deployment, track: Track, history: list[Deployment], policy: HealthPolicy,
              *, now: datetime, segment: timedelta) -> Basis:
    """The recorded or stated baseline that judges `dep`, else its own first window, else none
    (and why)."""
    ref = reference_deployment(history, dep)
    summary, stated = (recorded_baseline(ref), stated_baseline(ref)) if ref else (None, None)
    if ref is not None and (summary is not None or judges_requests(stated)):
        own = "own record" if ref.id == dep.id else "record"
        source = f"{own} of deployment {ref.id} (v{ref.version})"
        if stated is not None:
            source += f", baseline {stated.describe()}"
        return Basis(summary or Summary(), window_start(dep, now=now, segment=segment), source,
                     stated=stated)
    # Stated values about feedback alone (accuracy) still judge it, beside the own window.
    if track.own_baseline is not None:
        at, summary = track.own_baseline
        return Basis(summary, at, f"own first window (until {at.isoformat()})"
                     + (f", baseline {stated.describe()}" if stated else ""), stated=stated)
    if ref is not None and stated is not None:
        # From the first request: what the person stated (accuracy) judges now, while the
        # request signals wait for the deployment's own first bake window.
        return Basis(Summary(), dep.started_at,
                     f"baseline {stated.describe()}; recording v{dep.version}'s own first bake "
                     f"window ({policy.bake_window.total_seconds():.0f} s) for the rest",
                     stated=stated, provisional=True)
    return Basis(None, dep.started_at, "none yet",
                 "no verified deployment with a recorded baseline to compare with: "
                 f"recording v{dep.version}'s own first bake window "
                 f"({policy.bake_window.total_seconds():.0f} s)")


def baseline_ready(policy: HealthPolicy, window: LiveWindow, now: datetime) -> bool:
    """Whether `window` may become a baseline: clean, fresh, a full bake window, enough data."""
    return (not window.problems and now - window.started_at >= policy.bake_window
            and now - window.observed_at <= policy.max_staleness
            and sufficient(policy, window.summary))
