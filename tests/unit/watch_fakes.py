"""Fakes for stepping the watch: a scripted metric source, a recording notifier, summaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lastgood.domain.baselines import summary_to_dict
from lastgood.domain.decisions import Notice
from lastgood.domain.deployments import VerifiedRecord
from lastgood.domain.health import HealthPolicy, Mode, default_signal
from lastgood.domain.measurements import Histogram, LiveWindow, RateCounts, Summary
from lastgood.services.policies import PolicyBook
from lastgood.services.watch import WatchService, WatchSettings
from lastgood.testing import FixedClock
from tests.unit.fake_lastgood import FakeLastgood

MODEL, ENV = "fraud-detector", "production"


def traffic(requests: int, errors: int = 0, *, latency_s: float = 0.05) -> Summary:
    """`requests` requests of which `errors` failed, all taking `latency_s`."""
    return Summary(errors=RateCounts(errors, requests),
                   latency=Histogram.of([latency_s] * requests))


BASELINE = traffic(6000, 60)  # 1 % errors, 50 ms


def policy(*, mode: Mode = Mode.AUTO, bake_s: float = 600) -> HealthPolicy:
    return HealthPolicy(MODEL, ENV, (default_signal("error_rate", weight=1.0),
                                     default_signal("latency_p99")),
                        mode=mode, alpha=0.1, bake_window=timedelta(seconds=bake_s),
                        cooldown=timedelta(minutes=30))


@dataclass
class ScriptedSource:
    """Windows by version; `down` and `garbage` model a broken source."""

    clock: FixedClock
    data: dict[int, Summary] = field(default_factory=dict)
    down: str = ""
    raises: bool = False
    calls: list[tuple[int, datetime]] = field(default_factory=list)

    def window(self, model: str, env: str, version: int, *, since: datetime) -> LiveWindow:
        self.calls.append((version, since))
        if self.raises:
            raise RuntimeError("adapter bug")
        now = self.clock.now()
        if self.down:
            return LiveWindow(Summary(), since, now, {"*": self.down})
        return LiveWindow(self.data.get(version, traffic(0)), since, now)

    def signals(self) -> frozenset[str]:
        return frozenset({"error_rate", "latency"})

    def describe(self) -> str:
        return "scripted"


@dataclass
class RecordingNotifier:
    notices: list[Notice] = field(default_factory=list)

    def notify(self, notice: Notice) -> None:
        self.notices.append(notice)


@dataclass
class WatchedFake:
    """A FakeLastgood with a watch over a scripted source."""

    world: FakeLastgood = field(default_factory=FakeLastgood)
    mode: Mode = Mode.AUTO
    bake_s: float = 600
    source: ScriptedSource = field(init=False)
    notifier: RecordingNotifier = field(default_factory=RecordingNotifier)
    watch: WatchService = field(init=False)

    def __post_init__(self) -> None:
        self.source = ScriptedSource(self.world.clock)
        book = PolicyBook([policy(mode=self.mode, bake_s=self.bake_s)],
                          available={"error_rate", "latency"})
        self.watch = WatchService(uow=self.world.registry,
                                  deployments=self.world.services.deployments,
                                  source=self.source, notifier=self.notifier,
                                  clock=self.world.clock, policies=book,
                                  settings=WatchSettings(interval_s=0.0))

    @property
    def clock(self) -> FixedClock:
        return self.world.clock

    def verified_with_baseline(self, number: int, summary: Summary = BASELINE) -> None:
        """Deploy `number` and give it a verified record holding a measured distribution."""
        self.world.deploy(number, verify=False)
        now = self.clock.advance(600)
        with self.world.registry() as uow:
            live = uow.deployments.live(MODEL, ENV)
            assert live is not None
            uow.deployments.set_verified(live.id, VerifiedRecord(
                baseline={"error_rate": 0.01}, window_start=live.started_at, window_end=now,
                approver="tester", at=now, distribution=summary_to_dict(summary)))
            uow.commit()

    def live(self) -> tuple[int, bool]:
        with self.world.registry() as uow:
            dep = uow.deployments.live(MODEL, ENV)
            assert dep is not None
            return dep.version, dep.is_verified

    def events(self, action: str) -> list[dict[str, object]]:
        with self.world.registry() as uow:
            return [{"reason": e.draft.reason, "after": e.draft.after,
                     "evidence": e.draft.evidence, "outcome": e.draft.outcome}
                    for e in uow.events.list() if e.action == action]
