"""The detection scenarios replayed through the real WatchService on a simulated clock.

`detection.py` calls `assess` + `decide` directly; here the same streams go through the whole
watch: the registry (in memory), the default policy lastgood applies when no policy file speaks,
baseline choice, verification after the bake window, anti-flapping, history, cooldown and the
rollback itself (through DeploymentService, on the unit tests' in-memory world). One tick per
simulated second, as `lastgood watch` looks by default.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' in-memory world

from tests.unit.world import World

from lastgood.domain.baselines import summary_minus, summary_to_dict
from lastgood.domain.decisions import Notice
from lastgood.domain.deployments import VerifiedRecord
from lastgood.domain.measurements import (
    LATENCY_BOUNDS,
    Histogram,
    LiveWindow,
    RateCounts,
    Summary,
)
from lastgood.services.policies import PolicyBook
from lastgood.services.watch import WatchService, WatchSettings

MODEL, ENV = "fraud-detector", "production"
AVAILABLE = frozenset({"error_rate", "latency", "accuracy", "drift"})


@dataclass
class Counters:
    """Per-second cumulative counters of one live stream (index = seconds since the deploy)."""

    requests: np.ndarray
    errors: np.ndarray
    latency: np.ndarray  # (seconds, bins)
    scores: np.ndarray
    labels: np.ndarray
    correct: np.ndarray
    score_bounds: tuple[float, ...]

    def summary(self, i: int) -> Summary:
        return Summary(errors=RateCounts(int(self.errors[i]), int(self.requests[i])),
                       latency=Histogram(LATENCY_BOUNDS, tuple(self.latency[i].tolist())),
                       accuracy=RateCounts(int(self.correct[i]), int(self.labels[i])),
                       predictions=Histogram(self.score_bounds, tuple(self.scores[i].tolist())))


class ReplaySource:
    """A MetricSource over the counters of the deployed version, on the world's clock."""

    def __init__(self, world: World, counters: Counters, deployed_at: datetime,
                 gap: tuple[int, int] | None) -> None:
        self._world, self._counters, self._t0, self._gap = world, counters, deployed_at, gap
        self._last = deployed_at

    def window(self, model: str, env: str, version: int, *, since: datetime) -> LiveWindow:
        now = self._world.clock.now()
        t = int((now - self._t0).total_seconds())
        if self._gap is not None and self._gap[0] <= t < self._gap[1]:
            return LiveWindow(Summary(), since, self._last, {"*": "metric source unreachable"})
        self._last = now
        i = min(t, self._counters.requests.size) - 1
        offset = int((since - self._t0).total_seconds()) - 1
        current = self._counters.summary(i) if i >= 0 else Summary(errors=RateCounts(0, 0))
        if offset >= 0:  # a verified deployment's window restarts: cut the earlier counts
            current = summary_minus(current, self._counters.summary(min(offset, i)))
        return LiveWindow(current, max(since, self._t0), now)

    def signals(self) -> frozenset[str]:
        return AVAILABLE

    def describe(self) -> str:
        return "replay"


class Quiet:
    def notify(self, notice: Notice) -> None:
        return None


def replay(counters: Counters, *, baseline: Summary | None,
           stated: dict[str, float] | None, seconds: int,
           gap: tuple[int, int] | None = None) -> int | None:
    """Seconds from the deploy to the watch's rollback, or None when it never rolled back."""
    world = World()
    for tag in ("v1", "v2"):
        world.add_version(tag=tag)
    world.services.deployments.deploy(MODEL, 1, env=ENV, reason="good", actor="bench")
    world.clock.advance(1800)
    if stated is not None:
        world.services.deployments.verify(MODEL, env=ENV, baseline=stated, reason="by hand",
                                          actor="alice")
    else:
        assert baseline is not None
        _measured(world, baseline)
    world.clock.advance(60)
    world.services.deployments.deploy(MODEL, 2, env=ENV, reason="next", actor="bench")
    deployed = world.clock.now()
    source = ReplaySource(world, counters, deployed, gap)
    watch = WatchService(uow=world.registry, deployments=world.services.deployments,
                         source=source, notifier=Quiet(), clock=world.clock,
                         policies=PolicyBook([], available=AVAILABLE),
                         settings=WatchSettings(interval_s=0.0))
    for t in range(1, seconds + 1):
        world.clock.advance(1)
        if any(o.action.startswith("rolled back") for o in watch.tick(ENV)):
            return t
    return None


def _measured(world: World, summary: Summary) -> None:
    now = world.clock.now()
    with world.registry() as uow:
        live = uow.deployments.live(MODEL, ENV)
        assert live is not None
        uow.deployments.set_verified(live.id, VerifiedRecord(
            baseline={}, window_start=live.started_at, window_end=now, approver="lastgood-watch",
            at=now, distribution=summary_to_dict(summary)))
        uow.commit()

