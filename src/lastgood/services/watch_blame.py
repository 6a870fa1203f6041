"""Errors the way back reproduces are the input's (safety rule 12): what the watch says when
that is what holds a rollback back.

The metric source already takes reproduced errors out of the error rate it reports
(`Summary.reproduced`). This module asks the counterfactual: with those errors put back, would
the watch have rolled back or paused? If so the rollback was held back by input, and the
verdict and its audit event say so, with the numbers: "12 of 12 failing requests fail on v1
too: caused by input".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from lastgood.domain.baselines import StatedBaseline
from lastgood.domain.decisions import Decision, DecisionKind, RecentAction, decide
from lastgood.domain.deployments import Deployment
from lastgood.domain.health import Assessment, HealthPolicy, assess
from lastgood.domain.measurements import LiveWindow, RateCounts, Summary
from lastgood.services.desired import standby_versions

__all__ = ["HeldBack", "held_back"]

ACTING = (DecisionKind.ROLLBACK, DecisionKind.PAUSE)


@dataclass(frozen=True, slots=True)
class HeldBack:
    """A rollback (or pause) the input's errors would have caused, and why it was not."""

    note: str  # "12 of 12 failing requests fail on v1 too: caused by input"
    would_have: Decision  # what the watch would have decided with those errors counted
    reproduced: RateCounts


def with_input_errors(window: LiveWindow) -> LiveWindow:
    """The window with the reproduced errors counted as errors again."""
    summary, back = window.summary, window.summary.reproduced
    if summary.errors is None or back is None:
        return window
    errors = RateCounts(summary.errors.events + back.events, summary.errors.trials + back.events)
    return replace(window, summary=replace(summary, errors=errors))


def way_back(history: Sequence[Deployment], live_version: int) -> str:
    """The version the replicas replay on (their first standby), as people name it."""
    found = standby_versions(history, live_version=live_version, limit=1)
    return f"v{found[0]}" if found else "the way back"


def held_back(policy: HealthPolicy, baseline: Summary, window: LiveWindow, decision: Decision,
              actions: Sequence[RecentAction], *, now: datetime, stated: StatedBaseline | None,
              history: Sequence[Deployment], live_version: int) -> HeldBack | None:
    """What the input's errors would have made the watch do, when that is more than it does."""
    back = window.summary.reproduced
    if back is None or back.events == 0 or decision.kind in ACTING:
        return None
    counted = assess(policy, baseline, with_input_errors(window), now=now, stated=stated)
    would = decide(counted, policy, actions, now)
    if would.kind not in ACTING:
        return None
    note = (f"{back.events} of {back.trials} failing requests fail on "
            f"{way_back(history, live_version)} too: caused by input")
    return HeldBack(note, would, back)


def say_held_back(assessment: Assessment, decision: Decision,
                  held: HeldBack) -> tuple[Assessment, Decision]:
    """The verdict and decision, naming the cause of the errors they leave out."""
    why = f"{held.would_have.kind} held back: {held.note}"
    return (replace(assessment, reason=f"{assessment.reason}; {why}"),
            replace(decision, reason=f"{decision.reason}; {why}"))
