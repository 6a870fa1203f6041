"""Model errors replayed on the way back: the replay runner, the replica's counters, the metric
source that leaves the input's errors out, and the watch that says why it held back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from lastgood.adapters.metrics.gateway import parse_stats
from lastgood.domain.decisions import Decision, DecisionKind
from lastgood.domain.deployments import Deployment, VerifiedRecord
from lastgood.domain.health import HealthPolicy, Verdict, assess, default_signal
from lastgood.domain.measurements import LiveWindow, RateCounts, Summary
from lastgood.services.watch_blame import held_back, say_held_back
from lastgood.serving.blame import BlameOptions
from lastgood.serving.gateway import GatewayOptions, create_gateway
from lastgood.serving.replay import Outcome, ReplayBudget, replay_on_slot
from lastgood.serving.slots import Slot
from lastgood.serving.state import ServingState
from lastgood.testing import EPOCH
from tests.unit.test_serving_gateway import CLOCK, serving, warm
from tests.unit.test_serving_support import MODEL, POISON, RECORD, FakePredictor, SyncClient
from tests.unit.test_watch_sources import entry
from tests.unit.watch_fakes import ENV as W_ENV
from tests.unit.watch_fakes import WatchedFake, traffic

BAD = {**RECORD, "n": POISON}  # every fake version raises on it: the input's error


def test_replay_on_slot_runs_off_the_loop_and_says_what_became_of_each_request() -> None:
    slot = warm(1)
    unfit = [{"x": "not a number", "n": 1, "tag": "a"}]
    with ThreadPoolExecutor(1) as pool:
        done = asyncio.run(replay_on_slot(slot, [("a", [RECORD]), ("b", [BAD]), ("c", unfit)],
                                          executor=pool, budget=ReplayBudget()))
        closed = warm(2)
        closed.retire()
        skipped = asyncio.run(replay_on_slot(closed, [("d", [RECORD])], executor=pool,
                                             budget=ReplayBudget()))
    assert [(r.request_id, r.outcome) for r in done] == [
        ("a", Outcome.ANSWERED), ("b", Outcome.RAISED), ("c", Outcome.UNFIT)]
    assert done[0].predictions == [1]
    assert done[1].error == "ZeroDivisionError: model blew up"
    assert "records[0].x" in done[2].error
    assert slot.in_flight == 0
    assert [r.outcome for r in skipped] == [Outcome.SKIPPED]


def test_requests_the_slot_answers_are_replayed_together_in_one_call() -> None:
    slot = warm(1)
    predictor = slot.predictor
    assert isinstance(predictor, FakePredictor)
    with ThreadPoolExecutor(1) as pool:
        done = asyncio.run(replay_on_slot(slot, [("a", [RECORD]), ("b", [RECORD, RECORD])],
                                          executor=pool, budget=ReplayBudget()))
        assert predictor.calls == 1
        assert [(r.outcome, r.predictions) for r in done] == [
            (Outcome.ANSWERED, [1]), (Outcome.ANSWERED, [1, 1])]
        mixed = asyncio.run(replay_on_slot(slot, [("c", [RECORD]), ("d", [BAD])],
                                           executor=pool, budget=ReplayBudget()))
    assert [r.outcome for r in mixed] == [Outcome.ANSWERED, Outcome.RAISED]
    assert predictor.calls == 4  # together (raised), then one by one


def test_the_budget_allows_a_burst_then_rests_so_replay_takes_its_share() -> None:
    now = [0.0]
    budget = ReplayBudget(share=0.2, burst_s=0.05, clock=lambda: now[0])
    assert budget.rest_after(0.04) == 0.0  # within the burst
    assert budget.rest_after(0.03) == pytest.approx(0.1)  # 0.02 s over: 0.1 s at 20 %
    now[0] += 0.1
    assert budget.rest_after(0.01) == pytest.approx(0.05)
    assert ReplayBudget(share=1.0).rest_after(5.0) == 0.0


class OnlyLiveFails:
    """A version that raises on every request: a genuine regression."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        self.calls += 1
        raise ValueError("v2 is broken")


def live_with_standby(live: Slot | None = None) -> ServingState:
    standby = warm(1)
    state = serving(live or warm(2))
    state.table(MODEL).standby[1] = standby
    return state


@pytest.fixture
def state() -> ServingState:
    return live_with_standby()


@pytest.fixture
def client(state: ServingState) -> Iterator[SyncClient]:
    with SyncClient(create_gateway(state, clock=CLOCK)) as http:
        yield http


def v2(state: ServingState) -> dict[str, Any]:
    return next(v for v in state.live_stats(MODEL)["versions"] if v["version"] == 2)


def settled(client: SyncClient, state: ServingState) -> dict[str, Any]:
    for _ in range(500):
        if v2(state)["errors_pending"] == 0:
            break
        client.idle(0.01)
    return v2(state)


def predict(client: SyncClient, record: Mapping[str, Any]) -> int:
    return client.post(f"/v1/models/{MODEL}/predict", json={"records": [record]}).status_code


def test_errors_the_standby_reproduces_are_counted_as_the_inputs(client: SyncClient,
                                                                 state: ServingState) -> None:
    codes = [predict(client, BAD if i % 5 == 0 else RECORD) for i in range(20)]
    assert codes.count(500) == 4
    stats = settled(client, state)
    assert (stats["requests"], stats["errors"]) == (20, 4)  # still model errors on the wire
    assert (stats["errors_replayed"], stats["errors_input"]) == (4, 4)
    assert stats["replayed_on"] == [1]
    metrics = client.get("/metrics").text
    assert 'lastgood_errors_input_total{model="iris",version="2"} 4.0' in metrics
    found = parse_stats({"env": "production", "versions": [stats]}, env="production")
    summary, _ = found[2]
    assert summary.errors == RateCounts(0, 16)  # the version's errors: none
    assert summary.reproduced == RateCounts(4, 4)


def test_errors_the_standby_does_not_reproduce_stay_the_versions() -> None:
    broken = warm(2)
    broken.predictor = OnlyLiveFails()
    state = live_with_standby(broken)
    with SyncClient(create_gateway(state, clock=CLOCK)) as client:
        assert [predict(client, RECORD) for _ in range(3)] == [500] * 3
        stats = settled(client, state)
    assert (stats["errors"], stats["errors_replayed"], stats["errors_input"]) == (3, 3, 0)
    summary, _ = parse_stats({"env": "production", "versions": [stats]},
                             env="production")[2]
    assert summary.errors == RateCounts(3, 3)


def test_without_a_standby_or_past_the_bound_an_error_stays_the_versions() -> None:
    alone = serving(warm(2))
    with SyncClient(create_gateway(alone, clock=CLOCK)) as client:
        assert predict(client, BAD) == 500
        client.idle(0.05)
        stats = v2(alone)
    assert (stats["errors"], stats["errors_pending"], stats["errors_replayed"]) == (1, 0, 0)
    bounded = live_with_standby()
    options = GatewayOptions(blame=BlameOptions(max_pending=2))
    with SyncClient(create_gateway(bounded, options=options, clock=CLOCK)) as client:
        # three failures arrive before the replay task gets the loop: the oldest gives way
        client.idle(0)
        assert [predict(client, BAD) for _ in range(3)] == [500] * 3
        stats = settled(client, bounded)
    assert stats["errors"] == 3
    assert stats["errors_input"] + (stats["errors"] - stats["errors_replayed"]) == 3


def test_a_pending_error_waits_while_the_way_back_reproduced_every_failure() -> None:
    def judged(pending: int, replayed: int, reproduced: int) -> RateCounts | None:
        doc = {**entry(2, 10, 4), "errors_pending": pending, "errors_replayed": replayed,
               "errors_input": reproduced}
        return parse_stats({"env": "production", "versions": [doc]},
                           env="production")[2][0].errors

    assert judged(4, 0, 0) == RateCounts(0, 6)  # nothing replayed yet: all wait
    assert judged(2, 2, 2) == RateCounts(0, 6)  # all input so far: the waiting ones too
    assert judged(2, 2, 1) == RateCounts(3, 9)  # the way back answered one: they count
    old = parse_stats({"env": "production", "versions": [entry(2, 10, 3)]}, env="production")
    assert old[2][0].errors == RateCounts(3, 10)  # a replica that does not replay
    assert old[2][0].reproduced is None


def deployment(version: int, *, verified: bool, at: int) -> Deployment:
    record = VerifiedRecord(baseline={"error_rate": 0.0}, window_start=EPOCH,
                            window_end=EPOCH, approver="t", at=EPOCH, reason="ok") \
        if verified else None
    return Deployment(id=version, model=MODEL, env="production", version=version,
                      started_at=EPOCH + timedelta(minutes=at), deployed_by="t", reason="r",
                      verified=record)


def test_the_watch_says_when_the_inputs_errors_hold_a_rollback_back() -> None:
    policy = HealthPolicy(MODEL, "production", (default_signal("error_rate"),), alpha=0.05)
    baseline = Summary(errors=RateCounts(1, 10_000))
    now = EPOCH + timedelta(hours=1)
    window = LiveWindow(Summary(errors=RateCounts(0, 160), reproduced=RateCounts(40, 40)),
                        EPOCH, now)
    judged = assess(policy, baseline, window, now=now)
    assert judged.verdict is Verdict.HEALTHY
    none = Decision(DecisionKind.NONE, "healthy", Verdict.HEALTHY)
    history = [deployment(1, verified=True, at=0), deployment(2, verified=True, at=10)]
    held = held_back(policy, baseline, window, none, [], now=now, stated=None,
                     history=history, live_version=2)
    assert held is not None
    assert held.note == "40 of 40 failing requests fail on v1 too: caused by input"
    assert held.would_have.kind in (DecisionKind.ROLLBACK, DecisionKind.PAUSE)
    said, decided = say_held_back(judged, none, held)
    assert said.reason.endswith(f"{held.would_have.kind} held back: {held.note}")
    assert held.note in decided.reason
    genuine = LiveWindow(Summary(errors=RateCounts(40, 200), reproduced=RateCounts(0, 40)),
                         EPOCH, now)
    assert held_back(policy, baseline, genuine, none, [], now=now, stated=None,
                     history=history, live_version=2) is None


def test_the_watch_writes_once_that_input_held_a_rollback_back_then_rolls_back() -> None:
    w = WatchedFake()
    for tag in ("v1", "v2"):
        w.world.add_version(tag=tag)
    w.verified_with_baseline(1)
    w.world.deploy(2, verify=False)
    w.clock.advance(30)
    # 60 of 300 failed, v1 failed on all 60: the input's (the source took them out already)
    w.source.data[2] = replace(traffic(240, 0), reproduced=RateCounts(60, 60))
    seen = w.watch.tick(W_ENV)
    assert seen[0].decision.kind is not DecisionKind.ROLLBACK
    assert "rollback held back: 60 of 60 failing requests fail on v1 too: caused by input" \
        in seen[0].assessment.reason
    w.clock.advance(1)
    w.watch.tick(W_ENV)
    [held] = w.events("watch.held_back")  # written once, not at every look
    assert "caused by input" in str(held["reason"])
    assert held["evidence"]["cause"] == "input"  # type: ignore[index]
    assert w.live()[0] == 2
    w.source.data[2] = replace(traffic(300, 60), reproduced=RateCounts(0, 60))  # v1 answered
    w.clock.advance(1)
    assert w.watch.tick(W_ENV)[0].action.startswith("rolled back to v1")
