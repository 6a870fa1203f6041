"""The protocols through the gateway's ASGI interface, on fake predictors: the cases the real
clients do not send (binary BYTES and BOOL, compressed bodies, model errors, several models
behind `/invocations`, the prediction token on the new prefixes)."""

from __future__ import annotations

import gzip
import json
import struct
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from lastgood.domain.versions import Schema
from lastgood.serving.gateway import GatewayOptions, create_gateway
from lastgood.serving.guard import require_token
from lastgood.serving.slots import Slot
from lastgood.serving.state import ServingState
from tests.unit.test_serving_gateway import CLOCK, serving, warm
from tests.unit.test_serving_support import (
    MODEL,
    POISON,
    FakePredictor,
    SyncClient,
    make_version,
)

INFER = f"/v2/models/{MODEL}/infer"


def tensors(x: float = 1.5, n: int = 2, tag: str = "a") -> list[dict[str, Any]]:
    return [{"name": "x", "shape": [1], "datatype": "FP64", "data": [x]},
            {"name": "n", "shape": [1], "datatype": "INT64", "data": [n]},
            {"name": "tag", "shape": [1], "datatype": "BYTES", "data": [tag]}]


@pytest.fixture
def state() -> ServingState:
    return serving(warm(1))


@pytest.fixture
def client(state: ServingState) -> Iterator[SyncClient]:
    with SyncClient(create_gateway(state, clock=CLOCK)) as http:
        yield http


def counted(state: ServingState) -> tuple[int, int]:
    versions = state.live_stats(MODEL)["versions"]
    return sum(v["requests"] for v in versions), sum(v["errors"] for v in versions)


def test_binary_bytes_and_bool_inputs_are_read_from_the_body(client: SyncClient) -> None:
    header = json.dumps({"inputs": [
        {"name": "x", "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": 8}},
        {"name": "n", "shape": [1], "datatype": "INT64", "data": [2]},
        {"name": "tag", "shape": [1], "datatype": "BYTES",
         "parameters": {"binary_data_size": 5}}]}).encode()
    body = header + struct.pack("<d", 1.5) + struct.pack("<I", 1) + b"a"
    r = client.post(INFER, content=body, headers={"Inference-Header-Content-Length":
                                                  str(len(header))})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [1]
    left = client.post(INFER, content=body + b"xx",
                       headers={"Inference-Header-Content-Length": str(len(header))})
    assert left.status_code == 400
    assert "2 bytes after the last binary tensor" in left.json()["error"]


def test_a_gzip_body_is_read_and_an_unknown_encoding_refused(client: SyncClient) -> None:
    body = json.dumps({"inputs": tensors()}).encode()
    r = client.post(INFER, content=gzip.compress(body), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    br = client.post(INFER, content=body, headers={"Content-Encoding": "br"})
    assert br.status_code == 415
    bomb = client.post(INFER, content=gzip.compress(b" " * 5_000_000),
                       headers={"Content-Encoding": "gzip"})
    assert bomb.status_code == 413


@pytest.mark.parametrize(("body", "words"), [
    ({"id": "has spaces", "inputs": tensors()}, "id: expected 1 to 64"),
    ({"inputs": tensors(x=float("nan"))}, "(x).data[0]: NaN is not a number"),
    ({"inputs": tensors()[:2]}, "inputs.tag: missing"),
    ({"inputs": [{**tensors()[0], "shape": [2]}, *tensors()[1:]]}, "holds 2 values"),
    ({"inputs": [{**tensors()[1], "datatype": "INT8", "data": [300]}, tensors()[0],
                 tensors()[2]]}, "does not fit INT8"),
    ({"inputs": [{**tensors()[1], "datatype": "FP64", "data": [2.0]}, tensors()[0],
                 tensors()[2]]}, "FP64 does not fit the input 'n' (int64)"),
    ({"inputs": tensors(), "outputs": [{"name": "y", "parameters": {"classification": 2}}]},
     "classification extension"),
])
def test_bad_tensors_are_422_naming_the_tensor(client: SyncClient, state: ServingState,
                                               body: dict[str, Any], words: str) -> None:
    r = client.post(INFER, content=json.dumps(body).encode())
    assert r.status_code == 422, r.text
    assert words in r.json()["error"]
    assert counted(state) == (0, 0)


def test_a_model_error_through_oip_is_500_in_its_shape_and_counted(
        client: SyncClient, state: ServingState) -> None:
    r = client.post(INFER, json={"inputs": tensors(n=POISON)})
    assert r.status_code == 500
    assert "failed: ZeroDivisionError" in r.json()["error"]
    assert counted(state) == (1, 1)


def test_versions_are_reached_by_number_or_tag_and_ids_come_back(
        state: ServingState, client: SyncClient) -> None:
    state.table(MODEL).keep_standby([2], offered=[warm(2)])
    r = client.post(f"/v2/models/{MODEL}/versions/v2/infer",
                    json={"id": "req-7", "inputs": tensors()})
    assert r.json()["model_version"] == "2"
    assert r.json()["outputs"][0]["data"] == [2]
    assert (r.json()["id"], r.headers["X-Request-Id"]) == ("req-7", "req-7")
    assert client.get(f"/v2/models/{MODEL}/versions/2/ready").status_code == 200


def test_a_model_without_a_warm_slot_is_503_not_ready() -> None:
    empty = ServingState(env="production")
    empty.deployed = frozenset({MODEL})
    empty.table(MODEL)
    with SyncClient(create_gateway(empty, clock=CLOCK)) as cold:
        assert cold.get("/v2/health/ready").status_code == 503
        assert cold.get(f"/v2/models/{MODEL}/ready").status_code == 503
        assert cold.post(INFER, json={"inputs": tensors()}).status_code == 503
        assert cold.get("/ping").status_code == 503


def test_invocations_needs_a_default_model_when_several_are_served() -> None:
    state = serving(warm(1))
    slot = Slot(make_version(1, model="other")).warmed(
        FakePredictor(1), at=CLOCK.now(), load_ms=1.0, warmup_ms=[0.1], per_record_ms=0.01)
    state.table("other").switch(slot, at=CLOCK.now())
    state.deployed = frozenset({MODEL, "other"})
    records = {"dataframe_records": [{"x": 1.5, "n": 2, "tag": "a"}]}
    with SyncClient(create_gateway(state, clock=CLOCK)) as client:
        r = client.post("/invocations", json=records)
        assert r.status_code == 400
        assert "iris, other" in r.json()["message"]
        assert "--default-model" in r.json()["message"]
    chosen = GatewayOptions(default_model=MODEL)
    with SyncClient(create_gateway(state, options=chosen, clock=CLOCK)) as client:
        assert client.post("/invocations", json=records).json() == {"predictions": [1]}


def test_the_prediction_token_guards_every_protocols_predictions(state: ServingState) -> None:
    app = partial(require_token, token="s3cret")(create_gateway(state, clock=CLOCK))
    with SyncClient(app) as client:
        for path in (INFER, "/invocations", f"/v1/models/{MODEL}:predict"):
            assert client.post(path, json={}).status_code == 401, path
        assert client.get(f"/v2/models/{MODEL}").status_code == 401
        for path in ("/v2", "/v2/health/live", "/v2/health/ready", "/ping", "/health",
                     "/version"):
            assert client.get(path).status_code == 200, path
        authorized = client.post(INFER, json={"inputs": tensors()},
                                 headers={"Authorization": "Bearer s3cret"})
        assert authorized.status_code == 200


DATATYPE_VALUES: list[tuple[str, str, list[Any]]] = [
    ("BOOL", "?", [True, False]), ("INT8", "b", [-128, 127]), ("INT16", "h", [-3, 4]),
    ("INT32", "i", [-(2**31), 5]), ("INT64", "q", [-(2**63), 2**62]), ("UINT8", "B", [0, 255]),
    ("UINT16", "H", [1, 65535]), ("UINT32", "I", [0, 2**32 - 1]),
    ("UINT64", "Q", [0, 2**64 - 1]), ("FP16", "e", [0.5, -2.0]), ("FP32", "f", [1.5, 2.25]),
    ("FP64", "d", [0.1, -1e300]),
]


@pytest.mark.parametrize(("datatype", "code", "values"), DATATYPE_VALUES,
                         ids=[d[0] for d in DATATYPE_VALUES])
@pytest.mark.parametrize("binary", [False, True])
def test_every_datatype_reaches_the_model_as_json_or_binary(
        datatype: str, code: str, values: list[Any], binary: bool) -> None:
    seen: list[Any] = []

    class Recording(FakePredictor):
        def predict(self, records: Any) -> list[Any]:
            seen.extend(r["v"] for r in records)
            return super().predict(records)

    version = make_version(1, schema=Schema())  # no schema: tensors arrive by their names
    slot = Slot(version).warmed(Recording(1), at=CLOCK.now(), load_ms=1.0, warmup_ms=[0.1],
                                per_record_ms=0.01)
    state = serving(slot)
    tensor: dict[str, Any] = {"name": "v", "shape": [2], "datatype": datatype}
    if binary:
        blob = struct.pack(f"<2{code}", *values)
        tensor["parameters"] = {"binary_data_size": len(blob)}
        header = json.dumps({"inputs": [tensor]}).encode()
        content, headers = header + blob, {"Inference-Header-Content-Length": str(len(header))}
    else:
        content, headers = json.dumps({"inputs": [{**tensor, "data": values}]}).encode(), {}
    with SyncClient(create_gateway(state, clock=CLOCK)) as client:
        r = client.post(INFER, content=content, headers=headers)
    assert r.status_code == 200, r.text
    assert seen == values
    assert [type(v) for v in seen] == [type(v) for v in values]
