"""The detection scenarios replayed through the real WatchService on a simulated clock.

`detection.py` calls `assess` + `decide` directly; here the same streams go through the whole
watch: the registry (in memory), the default policy lastgood applies when no policy file speaks,
baseline choice, verification after the bake window, anti-flapping, history, cooldown and the
rollback itself (through DeploymentService, on the unit tests' in-memory world). One tick per
simulated second, as `lastgood watch` looks by default.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' in-memory world

from tests.unit.fake_lastgood import FakeLastgood

from lastgood.domain.baselines import summary_minus, summary_to_dict
from lastgood.domain.decisions import Notice
from lastgood.domain.deployments import VerifiedRecord
from lastgood.domain.health import Verdict
from lastgood.domain.measurements import (
    LATENCY_BOUNDS,
    Histogram,
    LiveWindow,
    RateCounts,
    Summary,
)
from lastgood.services.policies import PolicyBook
from lastgood.services.watch import Observation, WatchService, WatchSettings

MODEL, ENV = "fraud-detector", "production"
AVAILABLE = frozenset({"error_rate", "latency", "accuracy", "drift"})


@dataclass
class Counters:
    """Per-second cumulative counters of one live stream (index = seconds since the deploy),
    and each request (its second, its offset within it, its outcome) for the looks between
    whole seconds."""

    requests: np.ndarray
    errors: np.ndarray
    latency: np.ndarray  # (seconds, bins)
    scores: np.ndarray
    labels: np.ndarray
    correct: np.ndarray
    score_bounds: tuple[float, ...]
    sec: np.ndarray  # per request, sorted
    offset: np.ndarray  # per request: its arrival within its second, in [0, 1)
    error: np.ndarray
    latency_bin: np.ndarray
    score_bin: np.ndarray

    def summary(self, i: int) -> Summary:
        return Summary(errors=RateCounts(int(self.errors[i]), int(self.requests[i])),
                       latency=Histogram(LATENCY_BOUNDS, tuple(self.latency[i].tolist())),
                       accuracy=RateCounts(int(self.correct[i]), int(self.labels[i])),
                       predictions=Histogram(self.score_bounds, tuple(self.scores[i].tolist())))

    def summary_at(self, t: float) -> Summary:
        """What the counters show `t` seconds after the deploy: every request that arrived
        before t, every label that arrived before t (labels arrive on whole seconds)."""
        whole = min(math.floor(t), self.requests.size)
        if whole == t or whole == self.requests.size:
            return self.summary(whole - 1) if whole >= 1 else Summary(errors=RateCounts(0, 0))
        part = slice(*np.searchsorted(self.sec, [whole, whole + 1]))
        late = self.offset[part] < t - whole

        def upto(cumulative: np.ndarray) -> np.ndarray:
            return cumulative[whole - 1] if whole >= 1 else np.zeros_like(cumulative[0])

        lat = upto(self.latency) + np.bincount(self.latency_bin[part][late],
                                               minlength=self.latency.shape[1])
        sco = upto(self.scores) + np.bincount(self.score_bin[part][late],
                                              minlength=self.scores.shape[1])
        return Summary(
            errors=RateCounts(int(upto(self.errors)) + int(self.error[part][late].sum()),
                              int(upto(self.requests)) + int(late.sum())),
            latency=Histogram(LATENCY_BOUNDS, tuple(lat.tolist())),
            accuracy=RateCounts(int(self.correct[whole]), int(self.labels[whole])),
            predictions=Histogram(self.score_bounds, tuple(sco.tolist())))


class ReplaySource:
    """A MetricSource over the counters of the deployed version, on the world's clock."""

    def __init__(self, world: FakeLastgood, counters: Counters, deployed_at: datetime,
                 gap: tuple[int, int] | None) -> None:
        self._world, self._counters, self._t0, self._gap = world, counters, deployed_at, gap
        self._last = deployed_at

    def window(self, model: str, env: str, version: int, *, since: datetime) -> LiveWindow:
        now = self._world.clock.now()
        t = round((now - self._t0).total_seconds(), 6)
        if self._gap is not None and self._gap[0] <= t < self._gap[1]:
            return LiveWindow(Summary(), since, self._last, {"*": "metric source unreachable"})
        self._last = now
        current = self._counters.summary_at(t)
        start = round((since - self._t0).total_seconds(), 6)
        if start > 0:  # a verified deployment's window restarts: cut the earlier counts
            current = summary_minus(current, self._counters.summary_at(min(start, t)))
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
           gap: tuple[int, int] | None = None) -> tuple[float | None, str, int]:
    """(seconds from the deploy to the watch's rollback or None when it never rolled back,
    the signals that were DEGRADED or FAILED when it did, the looks it took). The watch runs
    with its default settings and looks when it would: after `WatchService.pace` seconds."""
    world = FakeLastgood()
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
                         settings=WatchSettings())
    t, looks = 0.0, 0
    seen: list[Observation] = []
    while True:
        step = watch.pace(seen)
        t = round(t + step, 6)
        if t > seconds:
            return None, "", looks
        world.clock.advance(step)
        seen, looks = watch.tick(ENV), looks + 1
        for obs in seen:
            if obs.action.startswith("rolled back"):
                return t, ", ".join(e.signal for e in obs.assessment.signals
                                    if e.verdict in (Verdict.DEGRADED, Verdict.FAILED)), looks


def _measured(world: FakeLastgood, summary: Summary) -> None:
    now = world.clock.now()
    with world.registry() as uow:
        live = uow.deployments.live(MODEL, ENV)
        assert live is not None
        uow.deployments.set_verified(live.id, VerifiedRecord(
            baseline={}, window_start=live.started_at, window_end=now, approver="lastgood-watch",
            at=now, distribution=summary_to_dict(summary)))
        uow.commit()

