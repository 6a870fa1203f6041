"""Every door x every dtype x every hostile number, through the gateway's ASGI interface.

NaN, +-Infinity, numbers that overflow the column's type and integers out of range must be
refused before the model: a 4xx in the door's own error shape naming the field, counted as
rejected, never as a model error, and the model never called. Python's json module reads
`NaN`, `Infinity` and `1e400` (as infinity) without complaint, so each literal is written into
the body as raw text, as a hostile client would send it.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from lastgood.domain.versions import Column, Schema
from lastgood.serving.gateway import create_gateway
from lastgood.serving.slots import Slot
from lastgood.serving.state import ServingState
from tests.unit.test_serving_gateway import CLOCK, serving
from tests.unit.test_serving_support import MODEL, FakePredictor, SyncClient, make_version

COLUMNS = (Column("f64", "float64"), Column("f32", "float32"), Column("i64", "int64"),
           Column("i32", "int32"), Column("flag", "bool"), Column("s", "string"),
           Column("c", "category"), Column("d", "datetime"))
SCHEMA = Schema(inputs=COLUMNS, outputs=(Column("y", "int64"),))
GOOD: dict[str, Any] = {"f64": 1.5, "f32": 2.5, "i64": 3, "i32": 4, "flag": True, "s": "a",
                        "c": "b", "d": "2025-01-01T00:00:00"}
DATATYPE = {"float64": "FP64", "float32": "FP32", "int64": "INT64", "int32": "INT32",
            "bool": "BOOL"}
HOLE = "__HOSTILE__"
BIG = "9" * 400

# a hostile JSON literal -> the dtypes in which it is a fine value (none: hostile everywhere)
LITERALS: dict[str, frozenset[str]] = {
    "NaN": frozenset(), "Infinity": frozenset(), "-Infinity": frozenset(),
    "1e400": frozenset(), "-1e400": frozenset(), BIG: frozenset(), f"-{BIG}": frozenset(),
    "1e39": frozenset({"float64"}), "-3.5e38": frozenset({"float64"}),
    str(2**31): frozenset({"int64", "float64", "float32"}),
    str(-(2**31) - 1): frozenset({"int64", "float64", "float32"}),
    str(2**63): frozenset({"float64", "float32"}),
    str(-(2**63) - 1): frozenset({"float64", "float32"}),
}
# the same as CSV cells (text is a fine value of a text column, so only the typed ones)
CSV_CELLS: dict[str, frozenset[str]] = {
    "nan": frozenset(), "NaN": frozenset(), "inf": frozenset(), "-Infinity": frozenset(),
    "1e400": frozenset(), BIG: frozenset(), "1e39": frozenset({"float64"}),
    str(2**31): frozenset({"int64", "float64", "float32"}),
    str(2**63): frozenset({"float64", "float32"}),
}
CSV_DTYPES = ("float64", "float32", "int64", "int32", "bool")


def body_with(payload: Any, literal: str) -> bytes:
    """The payload as JSON with the hole replaced by the literal, as raw text."""
    return json.dumps(payload).replace(json.dumps(HOLE), literal).encode()


def record_with(column: str) -> dict[str, Any]:
    return {**GOOD, column: HOLE}


def row_with(column: str) -> list[Any]:
    return list(record_with(column).values())


def oip_tensor(name: str, dtype: str, value: Any) -> dict[str, Any]:
    return {"name": name, "shape": [1], "datatype": DATATYPE.get(dtype, "BYTES"),
            "data": [value]}


def oip_with(column: str) -> dict[str, Any]:
    return {"inputs": [oip_tensor(c.name, c.dtype, v)
                       for c, v in zip(COLUMNS, record_with(column).values(), strict=True)]}


@dataclass(frozen=True)
class Door:
    name: str
    path: str
    payload: Callable[[str], Any]  # column -> payload with the hole in that column
    shape: str  # native | mlflow | plain (KServe's and OIP's {"error": "..."})


JSON_DOORS = [
    Door("native", f"/v1/models/{MODEL}/predict", lambda c: {"records": [record_with(c)]},
         "native"),
    Door("mlflow dataframe_records", "/invocations",
         lambda c: {"dataframe_records": [record_with(c)]}, "mlflow"),
    Door("mlflow dataframe_split", "/invocations",
         lambda c: {"dataframe_split": {"columns": list(GOOD), "data": [row_with(c)]}},
         "mlflow"),
    Door("mlflow instances", "/invocations", lambda c: {"instances": [record_with(c)]},
         "mlflow"),
    Door("mlflow inputs (columns)", "/invocations",
         lambda c: {"inputs": {k: [v] for k, v in record_with(c).items()}}, "mlflow"),
    Door("mlflow inputs (rows)", "/invocations", lambda c: {"inputs": [row_with(c)]},
         "mlflow"),
    Door("kserve instances", f"/v1/models/{MODEL}:predict",
         lambda c: {"instances": [record_with(c)]}, "plain"),
    Door("kserve inputs (rows)", f"/v1/models/{MODEL}:predict",
         lambda c: {"inputs": [row_with(c)]}, "plain"),
    Door("oip json", f"/v2/models/{MODEL}/infer", oip_with, "plain"),
]


def error_text(shape: str, response: httpx.Response) -> str:
    """The door's error, checked to be in the door's own shape."""
    body = response.json()
    if shape == "native":
        assert set(body["error"]) >= {"type", "message", "fix", "field"}, body
        return f"{body['error']['field']} {body['error']['message']}"
    if shape == "mlflow":
        assert body["error_code"] in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"), body
        return str(body["message"])
    assert isinstance(body["error"], str), body
    return str(body["error"])


class Counts:
    """What the replica counted and whether the model was called."""

    def __init__(self, state: ServingState, predictor: FakePredictor) -> None:
        self.state, self.predictor = state, predictor

    def now(self) -> tuple[float, int, int, int]:
        rejected = sum(s.value for m in self.state.recorder.registry.collect()
                       if m.name == "lastgood_rejected_requests" for s in m.samples
                       if s.name.endswith("_total") and s.labels["model"] == MODEL)
        versions = self.state.live_stats(MODEL)["versions"]
        return (rejected, sum(v["requests"] for v in versions),
                sum(v["errors"] for v in versions), self.predictor.calls)


@dataclass
class FakeReplica:
    client: SyncClient
    counts: Counts
    predictor: FakePredictor


def world_of(schema: Schema) -> Iterator[FakeReplica]:
    predictor = FakePredictor(1)
    slot = Slot(make_version(1, schema=schema, golden=())).warmed(
        predictor, at=CLOCK.now(), load_ms=1.0, warmup_ms=[0.1], per_record_ms=0.01)
    state = serving(slot)
    with SyncClient(create_gateway(state, clock=CLOCK)) as client:
        yield FakeReplica(client, Counts(state, predictor), predictor)


@pytest.fixture
def world() -> Iterator[FakeReplica]:
    yield from world_of(SCHEMA)


@pytest.fixture
def schemaless() -> Iterator[FakeReplica]:
    yield from world_of(Schema())


def refusal_problems(world: FakeReplica, door: str, shape: str, where: str,
                     post: Callable[[], httpx.Response], field: str) -> list[str]:
    """Send one hostile request; what is wrong with the answer (empty when it is right)."""
    before = world.counts.now()
    response = post()
    after = world.counts.now()
    problems = []
    if not 400 <= response.status_code < 500:
        problems.append(f"status {response.status_code}: {response.text[:200]}")
    else:
        text = error_text(shape, response)
        if field not in text:
            problems.append(f"the error does not name {field!r}: {text}")
    if after[0] != before[0] + 1:
        problems.append(f"rejected went {before[0]} -> {after[0]}")
    if after[1:] != before[1:]:
        problems.append(f"requests, errors, model calls went {before[1:]} -> {after[1:]}")
    return [f"{door} {where}: {p}" for p in problems]


def fine(world: FakeReplica, post: Callable[[], httpx.Response]) -> None:
    """The door's base request answers: its refusals are the hostile value's."""
    calls = world.predictor.calls
    response = post()
    assert response.status_code == 200, response.text
    assert world.predictor.calls == calls + 1


@pytest.mark.parametrize("door", JSON_DOORS, ids=[d.name for d in JSON_DOORS])
def test_every_hostile_json_number_is_refused_before_the_model(world: FakeReplica,
                                                               door: Door) -> None:
    def post(column: str, literal: str) -> Callable[[], httpx.Response]:
        return lambda: world.client.post(door.path, content=body_with(door.payload(column),
                                                                      literal),
                                         headers={"Content-Type": "application/json"})

    fine(world, post("f64", "1.25"))
    problems, tried = [], 0
    for column in COLUMNS:
        for literal, valid_in in LITERALS.items():
            if column.dtype in valid_in:
                fine(world, post(column.name, literal))
                continue
            tried += 1
            problems += refusal_problems(world, door.name, door.shape,
                                         f"{column.name}={literal[:12]}",
                                         post(column.name, literal), column.name)
    assert tried > 80
    assert not problems, "\n".join(problems)


def test_every_hostile_csv_cell_is_refused_before_the_model(world: FakeReplica) -> None:
    def post(column: str, cell: str) -> Callable[[], httpx.Response]:
        values = {k: ("true" if v is True else str(v)) for k, v in GOOD.items()}
        values[column] = cell
        text = ",".join(values) + "\n" + ",".join(values.values()) + "\n"
        return lambda: world.client.post("/invocations", content=text.encode(),
                                         headers={"Content-Type": "text/csv"})

    fine(world, post("f64", "1.25"))
    problems = []
    for column in (c for c in COLUMNS if c.dtype in CSV_DTYPES):
        for cell, valid_in in CSV_CELLS.items():
            if column.dtype in valid_in:
                fine(world, post(column.name, cell))
                continue
            problems += refusal_problems(world, "csv", "mlflow", f"{column.name}={cell[:12]}",
                                         post(column.name, cell), column.name)
    assert not problems, "\n".join(problems)


# every OIP datatype: the literals hostile to it and the column its tensor feeds
HOSTILE_TO_ALL = ("NaN", "Infinity", "-Infinity", "1e400", "-1e400", BIG, f"-{BIG}")
OIP_RANGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "FP16": ("f64", ("65520", "-65520", "1e5", "70000.0")),
    "FP32": ("f64", ("1e39", "-1e39", "3.4028236e38")),
    "FP64": ("f64", ("1.8e308",)),
    "INT8": ("i64", ("128", "-129")), "INT16": ("i64", ("32768", "-32769")),
    "INT32": ("i64", (str(2**31), str(-(2**31) - 1))),
    "INT64": ("i64", (str(2**63), str(-(2**63) - 1))),
    "UINT8": ("i64", ("256", "-1")), "UINT16": ("i64", ("65536", "-1")),
    "UINT32": ("i64", (str(2**32), "-1")), "UINT64": ("i64", (str(2**64), "-1")),
    "BOOL": ("flag", ("1", "0")), "BYTES": ("s", ()),
}
FINE_VALUES = {"FP16": "65504", "FP32": "3.4028234e38", "FP64": "1e308", "INT8": "-128",
               "INT16": "32767", "INT32": str(2**31 - 1), "INT64": str(-(2**63)),
               "UINT8": "255", "UINT16": "65535", "UINT32": str(2**32 - 1), "UINT64": "7",
               "BOOL": "true", "BYTES": '"text"'}


def oip_one(datatype: str, column: str) -> dict[str, Any]:
    payload = oip_with("f64")
    payload["inputs"][0]["data"] = [GOOD["f64"]]
    index = list(GOOD).index(column)
    payload["inputs"][index] = {"name": column, "shape": [1], "datatype": datatype,
                                "data": [HOLE]}
    return payload


@pytest.mark.parametrize("datatype", list(OIP_RANGES))
def test_every_oip_datatype_refuses_its_hostile_json_numbers(world: FakeReplica,
                                                             datatype: str) -> None:
    column, out_of_range = OIP_RANGES[datatype]
    path = f"/v2/models/{MODEL}/infer"
    payload = oip_one(datatype, column)
    if column != "i64" or datatype != "UINT64":
        fine(world, lambda: world.client.post(path, content=body_with(
            payload, FINE_VALUES[datatype])))
    problems = []
    for literal in (*HOSTILE_TO_ALL, *out_of_range):
        problems += refusal_problems(
            world, datatype, "plain", literal[:12],
            lambda lit=literal: world.client.post(path, content=body_with(payload, lit)),
            f"({column})")
    assert not problems, "\n".join(problems)


BINARY_HOSTILE = [("FP16", "e", v) for v in (float("nan"), float("inf"), float("-inf"))] + \
    [("FP32", "f", v) for v in (float("nan"), float("inf"), float("-inf"))] + \
    [("FP64", "d", v) for v in (float("nan"), float("inf"), float("-inf"))]


@pytest.mark.parametrize(("datatype", "code", "value"), BINARY_HOSTILE,
                         ids=[f"{d}-{v}" for d, _, v in BINARY_HOSTILE])
def test_binary_tensor_data_refuses_non_finite_numbers(world: FakeReplica, datatype: str, code: str,
                                                       value: float) -> None:
    payload = oip_one(datatype, "f64")
    data = struct.pack(f"<{code}", value)
    tensor = payload["inputs"][0]
    del tensor["data"]
    tensor["parameters"] = {"binary_data_size": len(data)}
    header = json.dumps(payload).encode()

    def post(blob: bytes) -> httpx.Response:
        return world.client.post(f"/v2/models/{MODEL}/infer", content=header + blob,
                                 headers={"Inference-Header-Content-Length": str(len(header))})

    fine(world, lambda: post(struct.pack(f"<{code}", 1.5)))
    assert not refusal_problems(world, datatype, "plain", "binary", lambda: post(data), "(f64)")


def test_a_binary_bool_byte_other_than_0_or_1_is_refused(world: FakeReplica) -> None:
    payload = oip_one("BOOL", "flag")
    tensor = payload["inputs"][list(GOOD).index("flag")]
    del tensor["data"]
    tensor["parameters"] = {"binary_data_size": 1}
    header = json.dumps(payload).encode()
    assert not refusal_problems(world, "BOOL", "plain", "binary", lambda: world.client.post(
        f"/v2/models/{MODEL}/infer", content=header + b"\x02",
        headers={"Inference-Header-Content-Length": str(len(header))}), "(flag)")


SCHEMALESS_DOORS = [
    Door("native", f"/v1/models/{MODEL}/predict", lambda c: {"records": [{c: HOLE}]},
         "native"),
    Door("mlflow dataframe_records", "/invocations",
         lambda c: {"dataframe_records": [{c: HOLE}]}, "mlflow"),
    Door("mlflow dataframe_split", "/invocations",
         lambda c: {"dataframe_split": {"columns": [c], "data": [[HOLE]]}}, "mlflow"),
    Door("kserve instances", f"/v1/models/{MODEL}:predict",
         lambda c: {"instances": [{c: [1.0, HOLE]}]}, "plain"),
    Door("oip json", f"/v2/models/{MODEL}/infer",
         lambda c: {"inputs": [{"name": c, "shape": [1], "datatype": "FP64",
                                "data": [HOLE]}]}, "plain"),
]


@pytest.mark.parametrize("door", SCHEMALESS_DOORS, ids=[d.name for d in SCHEMALESS_DOORS])
def test_a_version_without_a_schema_refuses_hostile_numbers_too(schemaless: FakeReplica,
                                                                door: Door) -> None:
    def post(literal: str) -> Callable[[], httpx.Response]:
        return lambda: schemaless.client.post(door.path, content=body_with(
            door.payload("amount"), literal), headers={"Content-Type": "application/json"})

    fine(schemaless, post("12.5"))
    fine(schemaless, post(str(2**64 - 1)))
    if door.name == "oip json":  # declared FP64: a fine float64, so a fine value
        fine(schemaless, post(str(2**64)))
    problems = []
    for literal in (*HOSTILE_TO_ALL, *((str(2**64),) if door.name != "oip json" else ())):
        problems += refusal_problems(schemaless, door.name, door.shape, literal[:12],
                                     post(literal), "amount")
    assert not problems, "\n".join(problems)


def test_a_schemaless_csv_refuses_non_finite_cells(schemaless: FakeReplica) -> None:
    def post(cell: str) -> Callable[[], httpx.Response]:
        return lambda: schemaless.client.post("/invocations", content=f"amount\n{cell}\n".encode(),
                                              headers={"Content-Type": "text/csv"})

    fine(schemaless, post("12.5"))
    problems = []
    for cell in ("nan", "NaN", "inf", "-Infinity", "1e400", BIG):
        problems += refusal_problems(schemaless, "csv", "mlflow", cell[:12], post(cell),
                                     "amount")
    assert not problems, "\n".join(problems)


def test_a_model_exception_on_a_valid_number_stays_a_model_error(world: FakeReplica) -> None:
    def explode(records: Any) -> list[Any]:
        raise OverflowError("the model's own arithmetic overflowed")

    world.predictor.predict = explode  # type: ignore[method-assign]
    before = world.counts.now()
    response = world.client.post(f"/v1/models/{MODEL}/predict",
                                 content=body_with({"records": [record_with("f64")]}, "1e300"))
    after = world.counts.now()
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "ModelFailed"
    assert (after[0], after[1], after[2]) == (before[0], before[1] + 1, before[2] + 1)
