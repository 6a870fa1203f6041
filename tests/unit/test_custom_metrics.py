"""custom.<metric> signals end to end below HTTP: moments cut from cumulative readings, the gateway
source reading them, a policy naming one loading, and the watch judging it."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from lastgood.adapters.files.policy_file import parse_policies
from lastgood.adapters.metrics import GATEWAY_SIGNALS, PROMETHEUS_SIGNALS, GatewaySource
from lastgood.adapters.metrics.gateway import version_summary
from lastgood.domain.baselines import regressed, summary_minus
from lastgood.domain.decisions import DecisionKind
from lastgood.domain.errors import InvalidInput
from lastgood.domain.health import Direction, HealthPolicy, Verdict
from lastgood.domain.measurements import Moments, Summary
from lastgood.services.policies import PolicyBook
from lastgood.services.watch import WatchService, WatchSettings
from lastgood.testing import EPOCH, FixedClock
from tests.unit.test_watch_sources import Canned, entry
from tests.unit.watch_fakes import ENV, MODEL, WatchedFake, traffic

POLICY = f"""\
model: {MODEL}
env: {ENV}
bake_window: 10m
signals:
  error_rate: {{}}
  custom.revenue: {{direction: lower_is_worse, relative: 0.1}}
"""


def close(a: Moments, b: Moments) -> bool:
    return a.count == b.count and a.mean == pytest.approx(b.mean, rel=1e-9, abs=1e-9) \
        and a.m2 == pytest.approx(b.m2, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_moments_minus_undoes_plus(seed: int) -> None:
    rng = random.Random(seed)
    a = Moments.of(rng.gauss(100, 30) for _ in range(rng.randrange(1, 200)))
    b = Moments.of(rng.gauss(-5, 2) for _ in range(rng.randrange(1, 200)))
    assert close(a.plus(b).minus(a), b)
    assert not a.plus(b).minus(a).defect()


def test_moments_minus_guards_empty_negative_and_rounding() -> None:
    a = Moments.of([1.0, 2.0, 3.0])
    assert a.minus(a) == Moments(0, 0.0, 0.0)
    assert "negative count" in Moments(1, 1.0, 0.0).minus(a).defect()
    first = Moments(49, -764.1625926578779, 0.0)  # found by search: m2 came out -3.7e-24
    nearly = first.plus(Moments(31, -764.1625926578787, 0.0)).minus(first)
    assert nearly.count == 31
    assert nearly.m2 == 0.0
    assert "negative" in Moments(10, 1.0, 1.0).minus(Moments(5, 1.0, 50.0)).defect()


def test_summary_minus_cuts_each_custom_metric_and_keeps_new_ones() -> None:
    early = Moments.of([10.0, 12.0])
    later = Moments.of([5.0, 7.0, 9.0])
    now = Summary(custom={"revenue": early.plus(later), "clicks": Moments.of([1.0])})
    cut = summary_minus(now, Summary(custom={"revenue": early}))
    assert close(cut.custom["revenue"], later)
    assert cut.custom["clicks"] == Moments.of([1.0])
    assert "custom.revenue count went down" in regressed(Summary(custom={"revenue": early}), now)


def test_the_stats_document_custom_member_becomes_moments() -> None:
    summary, _ = version_summary({**entry(1, 10),
                                  "custom": {"revenue": {"count": 3, "mean": 2.5, "m2": 4.0}}})
    assert summary.custom == {"revenue": Moments(3, 2.5, 4.0)}
    assert version_summary(entry(1, 10))[0].custom == {}


@pytest.mark.parametrize("custom", [
    [1, 2],
    {"revenue": 3},
    {"revenue": {"count": "3", "mean": 2.5, "m2": 4.0}},
    {"revenue": {"count": 3, "mean": True, "m2": 4.0}},
    {"revenue": {"count": 3, "mean": 2.5}},
    {"revenue": {"count": 3, "mean": float("nan"), "m2": 4.0}},
])
def test_garbage_custom_moments_are_refused(custom: Any) -> None:
    with pytest.raises(InvalidInput, match="custom"):
        version_summary({**entry(1, 10), "custom": custom})


def test_garbage_custom_moments_make_the_window_a_problem_not_a_crash() -> None:
    canned = Canned()
    canned.doc = {"env": "production", "versions": [{**entry(1, 10), "custom": {"r": 1}}]}
    window = GatewaySource([canned], clock=FixedClock()).window("m", "production", 1,
                                                                since=EPOCH)
    assert "custom" in window.problems["*"]


def test_the_gateway_source_cuts_custom_moments_from_cumulative_readings() -> None:
    clock, canned = FixedClock(), Canned()
    source = GatewaySource([canned], clock=clock)
    before, after = Moments.of([10.0, 11.0, 12.0]), Moments.of([4.0, 6.0])

    def doc(m: Moments) -> dict[str, Any]:
        custom = {"revenue": {"count": m.count, "mean": m.mean, "m2": m.m2}}
        return {"env": "production", "versions": [{**entry(1, 100, since=None),
                                                    "custom": custom}]}

    canned.doc = doc(before)
    clock.advance(5)
    source.window("m", "production", 1, since=EPOCH)
    since = clock.advance(5)
    clock.advance(5)
    canned.doc = doc(before.plus(after))
    window = source.window("m", "production", 1, since=since)
    assert close(window.summary.custom["revenue"], after)


def load(available: frozenset[str]) -> HealthPolicy:
    (policy,) = parse_policies(POLICY, fmt="yaml", source="health.yaml",
                               available_signals=available)
    return policy


def test_a_custom_policy_loads_against_the_gateway_source_only() -> None:
    policy = load(GATEWAY_SIGNALS)
    revenue = {s.name: s for s in policy.signals}["custom.revenue"]
    assert revenue.direction is Direction.LOWER_IS_WORSE
    assert revenue.relative == 0.1
    with pytest.raises(InvalidInput, match=r"'custom\.revenue' has no source"):
        load(PROMETHEUS_SIGNALS)


def revenue(mean: float, n: int = 300) -> Summary:
    """Healthy traffic with `n` revenue values spread 2 around `mean`."""
    values = [mean - 2.0, mean, mean + 2.0] * (n // 3)
    return Summary(errors=traffic(n, 3).errors, custom={"revenue": Moments.of(values)})


def custom_watch() -> WatchedFake:
    w = WatchedFake()
    w.watch = WatchService(uow=w.world.registry, deployments=w.world.services.deployments,
                           source=w.source, notifier=w.notifier, clock=w.clock,
                           policies=PolicyBook([load(GATEWAY_SIGNALS)], available=GATEWAY_SIGNALS),
                           settings=WatchSettings(interval_s=0.0))
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    baseline = revenue(10.0, 6000)
    w.verified_with_baseline(1, baseline)
    w.world.deploy(2, verify=False)
    w.clock.advance(timedelta(seconds=30).total_seconds())
    return w


def test_a_lower_live_revenue_is_judged_a_regression_and_rolled_back() -> None:
    w = custom_watch()
    w.source.data[2] = revenue(7.0)  # 30 % lower, tolerated 10 %
    seen = w.watch.tick(ENV)
    signals = {e.signal: e for e in seen[0].assessment.signals}
    assert signals["custom.revenue"].verdict in (Verdict.DEGRADED, Verdict.FAILED)
    assert signals["error_rate"].verdict is Verdict.HEALTHY
    assert seen[0].decision.kind is DecisionKind.ROLLBACK
    assert w.live()[0] == 1


def test_an_unchanged_revenue_stays_healthy() -> None:
    w = custom_watch()
    w.source.data[2] = revenue(10.0)
    seen = w.watch.tick(ENV)
    signals = {e.signal: e for e in seen[0].assessment.signals}
    assert signals["custom.revenue"].verdict is Verdict.HEALTHY
    assert w.live()[0] == 2
