"""Replay end to end on in-memory fakes: a real reconciler replays its reservoir on the
standbys, reports the proofs, and the rollback's replay check refuses a target that fails on
today's traffic, takes the next one, or stops clearly when none answers it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from lastgood.domain.errors import NoEligibleTarget
from lastgood.serving.reservoir import Kept
from tests.unit.fake_lastgood import FakeLastgood
from tests.unit.test_readiness_rollback import ENV, MODEL, Replica, plan

TODAY = {"amount": 3.0, "country": "pt"}  # a country v2 and v1 never saw


@pytest.fixture
def world() -> FakeLastgood:
    """v1 and v2 verified, v3 live: the candidates are v2, then v1."""
    w = FakeLastgood()
    for n in (1, 2, 3):
        w.add_version(tag=f"v{n}.0")
    w.deploy(1)
    w.deploy(2)
    w.deploy(3, verify=False)
    return w


class Refusing:
    """Answers 0, but raises on a country it does not know (an encoder with handle_unknown
    set to error)."""

    def __init__(self, known: tuple[str, ...]) -> None:
        self.known = known

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        for record in records:
            if record["country"] not in self.known:
                raise ValueError(f"Found unknown categories [{record['country']!r}]")
        return [0 for _ in records]


def replayed(world: FakeLastgood, *, refusing: dict[int, Refusing]) -> Replica:
    replica = Replica(world, "r1")
    replica.settle()
    for number, predictor in refusing.items():
        replica.rec.state.tables[MODEL].standby[number].predictor = predictor
    reservoirs = replica.rec.state.reservoirs
    for i in range(8):
        record = TODAY if i % 4 == 0 else {"amount": float(i), "country": "fr"}
        reservoirs.offer(MODEL, Kept([record], [0], 3, time.monotonic()), size_bytes=40)

    async def go() -> None:
        await replica.rec.replay()
        await replica.rec.report()
    asyncio.run(go())
    return replica


def replay_of(world: FakeLastgood, version: int) -> Any:
    found = plan(world)
    candidate = next(c for c in found.candidates if c.version == version)
    return found, next(c for c in candidate.checks if c.name == "replay")


def test_a_target_that_fails_on_todays_traffic_is_refused_and_the_next_taken(
        world: FakeLastgood) -> None:
    replayed(world, refusing={2: Refusing(("fr",))})
    found, check = replay_of(world, 2)
    assert check.status == "fail"
    assert check.summary == ("v2 fails on 2 of 8 recent requests: country='pt': ValueError: "
                             "Found unknown categories ['pt'] — the data pipeline changed "
                             "since v2")
    assert found.target is not None
    assert found.target.version == 1
    _, taken = replay_of(world, 1)
    assert taken.summary == ("v1 answered all 8 recent requests; v1 agrees with live v3 on "
                             "100 % of the last hour's requests")


def test_when_no_verified_version_answers_todays_traffic_the_rollback_stops_clearly(
        world: FakeLastgood) -> None:
    replayed(world, refusing={2: Refusing(("fr",)), 1: Refusing(("fr",))})
    found = plan(world)
    assert found.target is None
    assert [r for c in found.candidates for r in c.refusals if r.startswith("replay:")] == [
        "replay: v2 fails on 2 of 8 recent requests: country='pt': ValueError: Found unknown "
        "categories ['pt'] — the data pipeline changed since v2",
        "replay: v1 fails on 2 of 8 recent requests: country='pt': ValueError: Found unknown "
        "categories ['pt'] — the data pipeline changed since v1"]
    with pytest.raises(NoEligibleTarget):
        world.services.deployments.rollback(MODEL, env=ENV, reason="errors", actor="carol")
    status = world.services.deployments.status(MODEL, env=ENV)
    assert status.live is not None
    assert status.live.version == 3  # live unchanged
