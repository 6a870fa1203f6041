"""The gateway through its ASGI interface: predictions, bad input, evidence, metrics, switching."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lastgood.domain.versions import Column, Schema
from lastgood.serving.evidence import EvidenceOptions, Recorder
from lastgood.serving.gateway import GatewayOptions, create_gateway
from lastgood.serving.slots import Slot, SlotState
from lastgood.serving.state import ServingState
from lastgood.testing import FixedClock
from tests.unit.test_serving_support import (
    MODEL,
    POISON,
    RECORD,
    UNCONVERTIBLE,
    FakePredictor,
    SyncClient,
    make_version,
)

CLOCK = FixedClock()


def warm(number: int, *, delay_s: float = 0.0, per_record_ms: float | None = 0.01,
         schema: Schema | None = None) -> Slot:
    version = make_version(number) if schema is None else make_version(number, schema=schema)
    return Slot(version).warmed(FakePredictor(number, delay_s=delay_s), at=CLOCK.now(),
                                load_ms=1.0, warmup_ms=[0.1], per_record_ms=per_record_ms)


def serving(*slots: Slot, sample_rate: float = 1.0) -> ServingState:
    state = ServingState(env="production", recorder=Recorder(
        options=EvidenceOptions(sample_rate=sample_rate, buffer_size=8), seed=1))
    state.deployed = frozenset({MODEL})
    table = state.table(MODEL)
    for slot in slots:
        table.switch(slot, at=CLOCK.now())
    return state


@pytest.fixture
def state() -> ServingState:
    return serving(warm(1))


@pytest.fixture
def client(state: ServingState) -> Iterator[SyncClient]:
    app = create_gateway(state, options=GatewayOptions(max_body_bytes=2000), clock=CLOCK)
    http = SyncClient(app)
    yield http
    http.close()


def predict(client: SyncClient, body: Any, **kw: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(f"/v1/models/{MODEL}/predict", content=content, **kw)


def test_a_prediction_names_its_version_and_request(client: SyncClient) -> None:
    response = predict(client, {"records": [RECORD, RECORD]})
    assert response.status_code == 200
    body = response.json()
    assert body["predictions"] == [1, 1]
    assert body["version"] == 1
    assert response.headers["X-Model-Version"] == "1"
    assert body["request_id"] == response.headers["X-Request-Id"]


def test_a_sane_incoming_request_id_is_kept(client: SyncClient) -> None:
    response = predict(client, {"records": [RECORD]}, headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"


@pytest.mark.parametrize(("body", "status", "field"), [
    (b"{not json", 400, None),
    (b"\xff\xfe", 400, None),
    (b"[" * 100_000, 413, None),
    (b"[" * 1500, 400, None),
    ({"records": []}, 422, "records"),
    ({"rows": [RECORD]}, 422, "rows"),
    ([RECORD], 422, "body"),
    ({"records": [1]}, 422, "records[0]"),
    ({"records": [{"x": 1.0, "n": 2}]}, 422, "records[0].tag"),
    ({"records": [{**RECORD, "extra": 1}]}, 422, "records[0].extra"),
    ({"records": [{**RECORD, "x": "1.5"}]}, 422, "records[0].x"),
    ({"records": [{**RECORD, "n": 2.5}]}, 422, "records[0].n"),
    ({"records": [{**RECORD, "n": True}]}, 422, "records[0].n"),
    ({"records": [{**RECORD, "n": 2**70}]}, 422, "records[0].n"),
    ({"records": [RECORD, {**RECORD, "tag": None}]}, 422, "records[1].tag"),
])
def test_bad_input_is_refused_by_name_and_never_counted(
        client: SyncClient, state: ServingState, body: Any, status: int, field: str | None) -> None:
    response = predict(client, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if field is not None:
        assert error["field"] == field
        assert field.split(".")[-1] in error["message"]
    stats = state.live_stats(MODEL)["versions"]
    assert all(v["requests"] == 0 and v["errors"] == 0 for v in stats)
    assert "lastgood_rejected_requests_total" in client.get("/metrics").text


def test_an_unknown_model_is_404(client: SyncClient) -> None:
    response = client.post("/v1/models/nope/predict", json={"records": [RECORD]})
    assert response.status_code == 404
    assert "nope" in response.json()["error"]["message"]
    assert client.get("/v1/models/nope").status_code == 404


def test_an_oversized_declared_body_is_413_before_reading(client: SyncClient) -> None:
    response = predict(client, {"records": [RECORD] * 100})
    assert response.status_code == 413


def test_shapes_and_dtypes_of_array_columns_are_checked() -> None:
    schema = Schema(inputs=(Column("pixels", "float32", (2, 2)), Column("when", "datetime")))
    with SyncClient(create_gateway(serving(warm(1, schema=schema)), clock=CLOCK)) as client:
        good = {"pixels": [[0, 1.5], [2, 3]], "when": "2025-01-01T00:00:00"}
        assert predict(client, {"records": [good]}).status_code == 200
        bad_shape = predict(client, {"records": [{**good, "pixels": [[0, 1]]}]})
        assert bad_shape.json()["error"]["field"] == "records[0].pixels"
        bad_item = predict(client, {"records": [{**good, "pixels": [[0, 1], [2, "x"]]}]})
        assert bad_item.json()["error"]["field"] == "records[0].pixels[1][1]"
        bad_date = predict(client, {"records": [{**good, "when": "yesterday"}]})
        assert bad_date.json()["error"]["field"] == "records[0].when"


def test_a_model_error_is_counted_and_sampled(client: SyncClient, state: ServingState) -> None:
    response = predict(client, {"records": [{**RECORD, "n": POISON}]})
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "ModelFailed"
    stats = client.get(f"/v1/models/{MODEL}/stats").json()
    assert stats["versions"][0]["errors"] == 1
    evidence = state.evidence(MODEL, 1)
    assert evidence["samples"][-1]["error"].startswith("ZeroDivisionError")


def test_the_models_own_input_refusal_is_422_not_a_model_error(
        client: SyncClient, state: ServingState) -> None:
    response = predict(client, {"records": [{**RECORD, "n": UNCONVERTIBLE}]})
    assert response.status_code == 422
    assert "convert" in response.json()["error"]["message"]
    assert all(v["errors"] == 0 for v in state.live_stats(MODEL)["versions"])


def test_metrics_expose_requests_latency_and_prediction_distribution(client: SyncClient) -> None:
    predict(client, {"records": [RECORD, RECORD]})
    text = client.get("/metrics").text
    assert 'lastgood_requests_total{model="iris",version="1"} 1.0' in text
    assert 'lastgood_predictions_total{model="iris",value="1",version="1"} 2.0' in text
    assert 'lastgood_request_latency_seconds_count{model="iris",version="1"} 1.0' in text
    assert 'lastgood_slot{model="iris",role="live",state="warm",version="1"} 1.0' in text
    [entry] = client.get(f"/v1/models/{MODEL}/stats").json()["versions"]
    histogram = entry["latency_histogram"]
    assert sum(histogram["counts"]) == 1
    assert len(histogram["counts"]) == len(histogram["bounds"]) + 1
    assert entry["counting_since"] == CLOCK.now().isoformat()


def test_feedback_scores_online_accuracy_once_per_request(client: SyncClient) -> None:
    rid = predict(client, {"records": [RECORD]}).headers["X-Request-Id"]
    url = f"/v1/models/{MODEL}/feedback"
    scored = client.post(url, json={"request_id": rid, "label": 1})
    assert scored.status_code == 200
    assert scored.json()["correct"] is True
    assert client.post(url, json={"request_id": rid, "label": 1}).status_code == 404
    wrong = predict(client, {"records": [RECORD]}).headers["X-Request-Id"]
    client.post(url, json={"request_id": wrong, "label": 2})
    feedback = client.get(f"/v1/models/{MODEL}/stats").json()["versions"][0]["feedback"]
    assert feedback == {"total": 2, "correct": 1, "accuracy": 0.5, "output": None}
    assert client.post(url, content=b"{").status_code == 400
    assert client.post(url, json={"label": 1}).status_code == 422


def test_evidence_ring_buffer_is_bounded(client: SyncClient, state: ServingState) -> None:
    for _ in range(12):
        predict(client, {"records": [RECORD]})
    samples = state.evidence(MODEL, 1)["samples"]
    assert len(samples) == 8
    assert samples[-1]["predictions"] == [1]
    over_http = client.get(f"/v1/models/{MODEL}/versions/1/evidence").json()
    assert over_http["counters"]["requests"] == 12
    assert len(over_http["samples"]) == 8


def test_status_endpoints_show_slots_and_readiness(state: ServingState) -> None:
    with SyncClient(create_gateway(state, clock=CLOCK)) as client:
        state.table(MODEL).keep_standby([2], offered=[warm(2)])
        model = client.get(f"/v1/models/{MODEL}").json()
        assert model["live"]["version"] == 1
        assert [s["version"] for s in model["standby"]] == [2]
        listed = client.get("/v1/models").json()
        assert listed["models"] == [MODEL]  # names, as KServe v1 lists them
        assert listed["slots"][0]["model"] == MODEL
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        state.deployed = frozenset({MODEL, "other"})
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503
        assert "other" in not_ready.json()["reasons"][0]


def test_a_deployed_model_without_a_warm_slot_is_503(state: ServingState) -> None:
    state.table("fresh")
    with SyncClient(create_gateway(state, clock=CLOCK)) as client:
        response = client.post("/v1/models/fresh/predict", json={"records": [RECORD]})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"


def test_slow_predictions_run_in_the_pool_and_never_block_the_loop() -> None:
    state = serving(warm(1, delay_s=0.2, per_record_ms=None))
    app = create_gateway(state, clock=CLOCK)

    async def go() -> tuple[int, float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            slow = asyncio.create_task(
                http.post(f"/v1/models/{MODEL}/predict", json={"records": [RECORD]}))
            await asyncio.sleep(0.05)
            ticks = 0
            while not slow.done():  # the loop keeps turning while the model works
                ticks += 1
                await asyncio.sleep(0.005)
            return (await slow).status_code, ticks

    status, ticks = asyncio.run(go())
    assert status == 200
    assert ticks > 5


def test_switching_under_concurrent_load_loses_nothing() -> None:
    old, new = warm(1, delay_s=0.002, per_record_ms=None), warm(2, delay_s=0.002,
                                                                per_record_ms=None)
    state = serving(old)
    table = state.table(MODEL)
    app = create_gateway(state, clock=CLOCK)

    async def client_loop(http: httpx.AsyncClient, out: list[tuple[int, int]]) -> None:
        for _ in range(40):
            r = await http.post(f"/v1/models/{MODEL}/predict", json={"records": [RECORD]})
            out.append((r.status_code, r.json().get("version", -1)))

    async def switcher(out: list[tuple[int, int]]) -> None:
        while len(out) < 60:  # mid-stream, by count rather than by time: no timing assumption
            await asyncio.sleep(0.001)
        replaced = table.switch(new, at=CLOCK.now())
        table.keep_standby([], offered=[replaced] if replaced else [])

    async def go() -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await asyncio.gather(switcher(out), *(client_loop(http, out) for _ in range(8)))
        return out

    results = asyncio.run(go())
    assert len(results) == 320
    assert {status for status, _ in results} == {200}
    versions = [v for _, v in results]
    assert set(versions) == {1, 2}
    assert old.state is SlotState.CLOSED  # drained, then closed; never asked after close
    assert old.predictor is None
    assert state.live_stats(MODEL)["versions"][0]["version"] == 2
