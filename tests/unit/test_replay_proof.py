"""Replay on a warm standby (fake predictors) and how the preflight judges its proofs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from lastgood.domain.replay import (
    ReplayLimits,
    ReplayOutcome,
    ReplayProof,
    ReplayState,
    judge_replay,
    judgement_from_json,
    proof_from_json,
    proof_to_json,
    proofs_from_json,
    reservoir_size_problem,
    window_problem,
)
from lastgood.serving.replay_proof import ReplayOptions, ReplayProver, compare_answers
from lastgood.serving.reservoir import Kept, ReservoirOptions, Reservoirs
from lastgood.serving.slots import Slot, SlotTable
from lastgood.testing import EPOCH, FixedClock
from tests.unit.test_serving_support import POISON, RECORD, FakePredictor, make_version


def _table(*, live_answer: Any = 1, standby_answer: Any = 2) -> SlotTable:
    table = SlotTable("iris")
    live = Slot(make_version(1)).warmed(FakePredictor(1, answer=live_answer), at=EPOCH,
                                        load_ms=1, warmup_ms=(), per_record_ms=0.01)
    table.switch(live, at=EPOCH)
    standby = Slot(make_version(2)).warmed(FakePredictor(2, answer=standby_answer), at=EPOCH,
                                           load_ms=1, warmup_ms=(), per_record_ms=0.01)
    table.standby[2] = standby
    return table


def _offer(reservoirs: Reservoirs, records: list[dict[str, Any]], answer: Any) -> None:
    reservoirs.offer("iris", Kept(records, [answer] * len(records), 1, time.monotonic()),
                     size_bytes=50)


def _replay(table: SlotTable, reservoirs: Reservoirs) -> list[ReplayProof]:
    prover = ReplayProver(clock=FixedClock(EPOCH), reservoirs=reservoirs,
                          options=ReplayOptions(budget=0.5, chunk=4))
    assert asyncio.run(prover.replay({"iris": table})) == 1
    return prover.proofs(table)


def test_a_standby_that_fails_on_recent_requests_names_the_first_example() -> None:
    reservoirs = Reservoirs(ReservoirOptions(size=100), seed=1)
    for i in range(10):
        _offer(reservoirs, [dict(RECORD, n=POISON if i in (3, 7) else i)], 1)
    [proof] = _replay(_table(standby_answer=1), reservoirs)
    assert (proof.state, proof.replayed, proof.failed) == (ReplayState.REPLAYED, 10, 2)
    assert proof.error == "ZeroDivisionError: model blew up"
    assert "n=13" in proof.example
    assert proof.agreement == 1.0  # the 8 it answered agree with the live version
    assert proof.cpu_ms >= 0
    assert proof.oldest_s is not None


def test_agreement_of_labels_is_counted_per_request_record() -> None:
    reservoirs = Reservoirs(ReservoirOptions(size=100), seed=2)
    for i in range(4):
        _offer(reservoirs, [dict(RECORD, n=i)], 1 if i else 2)  # live said 2 once, 1 thrice
    [proof] = _replay(_table(standby_answer=2), reservoirs)
    assert proof.failed == 0
    assert proof.agreement == 0.25
    [label] = proof.outputs
    assert (label.output, label.kind, label.compared, label.agreed) == ("prediction", "label", 4, 1)


def test_scores_keep_the_distribution_of_differences_per_output() -> None:
    pairs = [({"p": 0.5, "y": "a"}, {"p": 0.5, "y": "a"}),
             ({"p": 0.9, "y": "b"}, {"p": 0.6, "y": "a"})]
    by_name = {o.output: o for o in compare_answers(pairs)}
    assert by_name["y"].kind == "label"
    assert by_name["y"].rate == 0.5
    assert by_name["p"].kind == "score"
    assert by_name["p"].agreed == 1
    assert by_name["p"].max == pytest.approx(0.3)


def test_an_empty_reservoir_says_no_data_and_off_says_off() -> None:
    [empty] = _replay(_table(), Reservoirs(ReservoirOptions(size=100)))
    assert empty.state is ReplayState.NO_DATA
    assert empty.replayed == 0
    [off] = _replay(_table(), Reservoirs(ReservoirOptions(size=0)))
    assert off.state is ReplayState.OFF


def test_requests_answered_by_another_live_version_are_not_replayed() -> None:
    reservoirs = Reservoirs(ReservoirOptions(size=100))
    reservoirs.offer("iris", Kept([dict(RECORD)], [9], 9, time.monotonic()), size_bytes=5)
    [proof] = _replay(_table(), reservoirs)
    assert proof.state is ReplayState.NO_DATA


def _proof(**fields: Any) -> ReplayProof:
    base: dict[str, Any] = {"version": 1, "live_version": 2, "state": ReplayState.REPLAYED,
                            "replayed": 1000, "at": EPOCH}
    return ReplayProof(**{**base, **fields})


def test_the_proof_round_trips_through_json() -> None:
    proof = _proof(failed=2, example="city='marseille'", error="ValueError: unknown",
                   outputs=compare_answers([(1, 1), (0.5, 0.25)]), oldest_s=12.5)
    assert proof_from_json(proof_to_json(proof)) == proof
    assert proofs_from_json({"replay": [proof_to_json(proof)]}) == (proof,)
    assert proofs_from_json({"packages": "x"}) is None


def test_failing_on_todays_traffic_refuses_with_the_example() -> None:
    judged = judge_replay(version=1, replicas=[
        ("r1", [_proof(failed=12, example="city='marseille'",
                       error="ValueError: Found unknown categories ['marseille']")])])
    assert judged.outcome is ReplayOutcome.FAILED
    assert judged.summary == (
        "v1 fails on 12 of 1,000 recent requests: city='marseille': ValueError: Found unknown "
        "categories ['marseille'] — the data pipeline changed since v1")


def test_agreement_is_shown_and_refuses_only_under_a_set_limit() -> None:
    outputs = compare_answers([(1, 1)] * 91 + [(0, 1)] * 9)
    replicas = [("r1", [_proof(outputs=outputs)])]
    judged = judge_replay(version=1, replicas=replicas)
    assert judged.outcome is ReplayOutcome.PASSED
    assert "v1 agrees with live v2 on 91 % of the last hour's requests" in judged.summary
    strict = judge_replay(version=1, replicas=replicas, limits=ReplayLimits(min_agreement=0.95))
    assert strict.outcome is ReplayOutcome.FAILED
    assert "below the limit of 95 %" in strict.summary
    lenient = judge_replay(version=1, limits=ReplayLimits(max_failures=20),
                           replicas=[("r1", [_proof(failed=12, outputs=outputs)])])
    assert lenient.outcome is ReplayOutcome.PASSED


def test_no_data_is_never_a_pass() -> None:
    empty = judge_replay(version=1, replicas=[("r1", [_proof(state=ReplayState.NO_DATA,
                                                             replayed=0)])])
    assert empty.outcome is ReplayOutcome.NO_DATA
    assert empty.summary.startswith("no replay data yet")
    assert judge_replay(version=1, replicas=[]).outcome is ReplayOutcome.NO_DATA
    off = judge_replay(version=1, replicas=[("r1", [_proof(state=ReplayState.OFF)])])
    assert off.outcome is ReplayOutcome.OFF
    assert "--replay-reservoir 0" in off.summary


@pytest.mark.parametrize(("size", "ok"), [(0, True), (1000, True), (-1, False), (10**6, False)])
def test_reservoir_size_range(size: int, ok: bool) -> None:
    assert (reservoir_size_problem(size) is None) is ok


@pytest.mark.parametrize(("seconds", "ok"), [(3600, True), (59, False), (float("nan"), False),
                                             (8 * 86400, False)])
def test_window_range(seconds: float, ok: bool) -> None:
    assert (window_problem(seconds) is None) is ok


def test_the_judgement_round_trips_through_json() -> None:
    judged = judge_replay(version=1, replicas=[
        ("r1", [_proof(failed=3, example="city='marseille'", error="ValueError: x",
                       outputs=compare_answers([(1, 1), (0.5, 0.25)]), oldest_s=4.0)])])
    assert judgement_from_json(judged.as_json()) == judged


def test_the_limits_come_from_settings_and_bad_ones_are_refused() -> None:
    from lastgood.config import load_settings
    from lastgood.domain.errors import InvalidInput

    base = {"LASTGOOD_HOME": "/nonexistent"}
    default = load_settings(base)
    assert (default.max_replay_failures, default.min_replay_agreement) == (0, None)
    set_ = load_settings(base | {"LASTGOOD_MAX_REPLAY_FAILURES": "3",
                                 "LASTGOOD_MIN_REPLAY_AGREEMENT": "0.9"})
    assert (set_.max_replay_failures, set_.min_replay_agreement) == (3, 0.9)
    for key, value in (("LASTGOOD_MAX_REPLAY_FAILURES", "-1"),
                       ("LASTGOOD_MIN_REPLAY_AGREEMENT", "1.5"),
                       ("LASTGOOD_MIN_REPLAY_AGREEMENT", "most")):
        with pytest.raises(InvalidInput, match=key):
            load_settings(base | {key: value})
