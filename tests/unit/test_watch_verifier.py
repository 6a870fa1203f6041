"""The live verifier the engine calls after a switch, on a scripted source and a FixedClock."""

from __future__ import annotations

from datetime import datetime

from lastgood.domain.measurements import RateCounts, Summary
from lastgood.services.live_verifier import LiveVerifier, VerifierSettings
from lastgood.services.policies import PolicyBook
from tests.unit.watch_fakes import ENV, MODEL, WatchedFake, policy, traffic


class Ticker:
    """A Clock over the world's FixedClock that counts its sleeps (waiting costs no real time)
    and lets the world change at each."""

    def __init__(self, w: WatchedFake, on_sleep: object = None) -> None:
        self.w, self.sleeps = w, 0
        self.on_sleep = on_sleep

    def now(self) -> datetime:
        return self.w.clock.now()

    def monotonic(self) -> float:
        return self.w.clock.now().timestamp()

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.w.clock.advance(seconds)
        if callable(self.on_sleep):
            self.on_sleep(self.sleeps)


def verifier(w: WatchedFake, ticker: Ticker, wait_s: float = 30) -> LiveVerifier:
    return LiveVerifier(uow=w.world.registry, source=w.source, clock=ticker,
                        policies=PolicyBook([policy()], available={"error_rate", "latency"}),
                        settings=VerifierSettings(wait_s=wait_s, poll_s=1.0))


def rolled_back_world() -> WatchedFake:
    w = WatchedFake()
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    w.world.services.deployments.rollback(MODEL, env=ENV, reason="bad", actor="alice")
    return w


def test_the_restored_version_is_healthy_once_enough_samples_arrived() -> None:
    w = rolled_back_world()

    def traffic_arrives(sleeps: int) -> None:
        w.source.data[1] = traffic(40 * sleeps, 0)

    ticker = Ticker(w, traffic_arrives)
    check = verifier(w, ticker).verify_live(MODEL, ENV, 1, {"error_rate": 0.01})
    assert check.verdict == "HEALTHY"
    assert ticker.sleeps == 3  # 120 requests >= 100 after three polls
    assert "v1's own baseline (deployment 1)" in check.summary
    assert check.evidence["assessment"]["signals"][0]["samples"] == 120


def test_a_regression_ends_the_wait_at_once() -> None:
    w = rolled_back_world()
    w.source.data[1] = traffic(100, 40)
    ticker = Ticker(w)
    check = verifier(w, ticker).verify_live(MODEL, ENV, 1, {})
    assert check.verdict in ("DEGRADED", "FAILED")
    assert ticker.sleeps == 0


def test_too_little_data_is_inconclusive_after_the_wait() -> None:
    w = rolled_back_world()
    w.source.data[1] = Summary(errors=RateCounts(0, 10))
    ticker = Ticker(w)
    check = verifier(w, ticker, wait_s=5).verify_live(MODEL, ENV, 1, {})
    assert check.verdict == "INCONCLUSIVE"
    assert check.summary.startswith("not enough live data after 5 s")


def test_a_source_that_is_down_is_inconclusive() -> None:
    w = rolled_back_world()
    w.source.down = "connection refused"
    check = verifier(w, Ticker(w), wait_s=2).verify_live(MODEL, ENV, 1, {})
    assert check.verdict == "INCONCLUSIVE"
    assert "connection refused" in check.summary


def test_a_new_version_has_no_baseline_of_its_own_and_is_skipped() -> None:
    w = WatchedFake()
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    check = verifier(w, Ticker(w)).verify_live(MODEL, ENV, 2, {})
    assert check.verdict == "SKIPPED"
    assert "the watch judges it" in check.summary


def test_a_version_verified_by_hand_is_judged_against_the_values_stated() -> None:
    w = WatchedFake()
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.world.deploy(1, verify=True)  # bob stated error_rate=0.01, p95_ms=30
    w.world.deploy(2, verify=False)
    w.world.services.deployments.rollback(MODEL, env=ENV, reason="bad", actor="alice")
    w.source.data[1] = traffic(300, 2, latency_s=0.02)
    good = verifier(w, Ticker(w)).verify_live(MODEL, ENV, 1, {"error_rate": 0.01})
    assert good.verdict == "HEALTHY", good.summary
    assert "stated by bob" in str(good.evidence["assessment"])
    w.source.data[1] = traffic(300, 60, latency_s=0.02)
    bad = verifier(w, Ticker(w)).verify_live(MODEL, ENV, 1, {"error_rate": 0.01})
    assert bad.verdict in ("DEGRADED", "FAILED")
    assert "vs baseline 1.00% stated by bob" in bad.summary
