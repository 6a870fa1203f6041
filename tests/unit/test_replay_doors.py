"""Every door feeds the reservoir after validation, with the live version's answer; bad input,
requests the live version failed on, and requests to a standby by version are never kept."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from lastgood.serving.gateway import create_gateway
from lastgood.serving.reservoir import ReservoirOptions, Reservoirs
from lastgood.serving.state import ServingState
from tests.unit.test_serving_gateway import CLOCK, serving, warm
from tests.unit.test_serving_support import MODEL, POISON, RECORD, SyncClient

TENSORS = [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.5]},
           {"name": "n", "shape": [1], "datatype": "INT64", "data": [2]},
           {"name": "tag", "shape": [1], "datatype": "BYTES", "data": ["a"]}]


def _state(size: int = 100) -> ServingState:
    state = serving(warm(1))
    state.reservoirs = Reservoirs(ReservoirOptions(size=size, max_request_bytes=400), seed=1)
    state.table(MODEL).standby[2] = warm(2)
    return state


@pytest.fixture
def state() -> ServingState:
    return _state()


@pytest.fixture
def client(state: ServingState) -> Iterator[SyncClient]:
    with SyncClient(create_gateway(state, clock=CLOCK)) as http:
        yield http


def kept(state: ServingState) -> list[Any]:
    reservoir = state.reservoirs.of(MODEL)
    return [] if reservoir is None else [(list(k.records), list(k.predictions), k.version)
                                         for k in reservoir.entries(time.monotonic())]


def test_every_door_feeds_the_reservoir_with_the_records_and_the_live_answer(
        client: SyncClient, state: ServingState) -> None:
    doors: list[tuple[str, dict[str, Any]]] = [
        (f"/v1/models/{MODEL}/predict", {"records": [RECORD]}),
        (f"/v2/models/{MODEL}/infer", {"inputs": TENSORS}),
        ("/invocations", {"dataframe_records": [RECORD]}),
        (f"/v1/models/{MODEL}:predict", {"instances": [RECORD]}),
    ]
    for path, body in doors:
        answer = client.post(path, json=body)
        assert answer.status_code == 200, (path, answer.text)
    found = state.reservoirs.of(MODEL)
    assert found is not None
    assert found.seen == 4
    assert [k[1:] for k in kept(state)] == [([1], 1)] * 4
    assert all(records == [RECORD] for records, _, _ in kept(state))


def test_bad_input_failures_and_requests_to_a_standby_are_not_kept(
        client: SyncClient, state: ServingState) -> None:
    predict = f"/v1/models/{MODEL}/predict"
    assert client.post(predict, json={"records": [{"x": "no"}]}).status_code == 422
    assert client.post(predict, json={"records": [dict(RECORD, n=POISON)]}).status_code == 500
    standby = client.post(f"/v2/models/{MODEL}/versions/2/infer", json={"inputs": TENSORS})
    assert standby.status_code == 200, standby.text
    assert standby.json()["outputs"][0]["data"] == [2]  # the standby answered, not kept
    assert kept(state) == []
    live = client.post(f"/v2/models/{MODEL}/versions/1/infer", json={"inputs": TENSORS})
    assert live.status_code == 200
    assert len(kept(state)) == 1  # the live version named by number is the live answer


def test_a_request_over_the_size_limit_is_skipped_and_counted(client: SyncClient,
                                                              state: ServingState) -> None:
    many = {"records": [RECORD] * 20}  # about 600 bytes, over the 400 of this reservoir
    assert client.post(f"/v1/models/{MODEL}/predict", json=many).status_code == 200
    assert client.post(f"/v1/models/{MODEL}/predict", json={"records": [RECORD]}).status_code \
        == 200
    found = state.reservoirs.of(MODEL)
    assert found is not None
    assert (found.seen, found.skipped, found.kept) == (2, 1, 1)
