"""A replica's /openapi.json says what its native doors enforce: a record or feedback body the
document allows is one the server takes, and one it forbids is refused."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from lastgood.domain.errors import InvalidInput
from lastgood.domain.versions import Column, Schema
from lastgood.serving.feedback import parse_feedback
from lastgood.serving.gateway import create_gateway
from lastgood.serving.guard import GUARDED_PREFIXES, require_token
from lastgood.serving.inputs import check_records
from lastgood.serving.openapi import FEEDBACK, document
from tests.unit.test_serving_gateway import CLOCK, serving, warm
from tests.unit.test_serving_support import MODEL, SyncClient

COLUMNS = (Column("x", "float64"), Column("n", "int32"), Column("ok", "bool"),
           Column("tag", "category"), Column("v", "float32", (2,)),
           Column("note", "string", optional=True))
GOOD: dict[str, Any] = {"x": 1.5, "n": 2, "ok": True, "tag": "a", "v": [1, 2.5]}
RECORDS: list[dict[str, Any]] = [
    GOOD, GOOD | {"note": None}, GOOD | {"note": "hi"}, GOOD | {"x": 3},
    GOOD | {"x": True}, GOOD | {"n": 2**31}, GOOD | {"n": 1.5}, GOOD | {"ok": 1},
    GOOD | {"tag": 3}, GOOD | {"v": [1]}, GOOD | {"v": [1, "2"]}, GOOD | {"extra": 1},
    {k: v for k, v in GOOD.items() if k != "x"}, GOOD | {"v": 2},
]


def _accepted(check: Any, value: Any) -> bool:
    try:
        check(value)
    except InvalidInput:
        return False
    return True


def _predict_body(columns: tuple[Column, ...] = COLUMNS) -> dict[str, Any]:
    state = serving(warm(1, schema=Schema(inputs=columns)))
    operation = document(state)["paths"][f"/v1/models/{MODEL}/predict"]["post"]
    schema: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
    return schema


@pytest.mark.parametrize("record", RECORDS)
def test_a_record_the_document_allows_is_one_the_server_takes(record: dict[str, Any]) -> None:
    valid = jsonschema.Draft202012Validator(_predict_body()).is_valid({"records": [record]})
    assert valid == _accepted(lambda r: check_records([r], COLUMNS), record)


def test_a_version_without_an_input_schema_takes_any_record() -> None:
    body = _predict_body(columns=())
    assert jsonschema.Draft202012Validator(body).is_valid({"records": [{"a": [1, "b"]}]})
    assert not jsonschema.Draft202012Validator(body).is_valid({"records": []})


@pytest.mark.parametrize("payload", [
    {"request_id": "r1", "label": 1}, {"request_id": "r1", "label": None},
    {"request_id": "r1", "metrics": {"revenue": 12.5}}, {"request_id": "r1"},
    {"request_id": "r1", "metrics": {}}, {"request_id": "r1", "metrics": {"Revenue": 1}},
    {"request_id": "r1", "metrics": {"revenue": 1e101}}, {"request_id": "r1", "metrics": 3},
    {"request_id": "r1", "metrics": {"revenue": True}}, {"request_id": 7, "label": 1},
    {"request_id": "r1", "metrics": {f"m{i}": 1 for i in range(17)}},
    {"request_id": "r1", "label": 0, "metrics": {}}, {"label": 1},
])
def test_feedback_the_document_allows_is_feedback_the_server_takes(payload: Any) -> None:
    valid = jsonschema.Draft202012Validator(FEEDBACK).is_valid(payload)
    assert valid == _accepted(parse_feedback, payload)


def test_the_document_is_served_and_names_the_token_when_one_is_required() -> None:
    state = serving(warm(1))
    with SyncClient(create_gateway(state, clock=CLOCK)) as open_http:
        plain = open_http.get("/openapi.json").json()
    with SyncClient(require_token(create_gateway(state, clock=CLOCK), token="s")) as http:
        guarded = http.get("/openapi.json").json()
    predict = f"/v1/models/{MODEL}/predict"
    assert "security" not in plain["paths"][predict]["post"]
    assert guarded["paths"][predict]["post"]["security"] == [{"prediction_token": []}]
    assert "security" not in guarded["paths"]["/healthz"]["get"]
    assert guarded["components"]["securitySchemes"]["prediction_token"]["scheme"] == "bearer"
    assert all(p.startswith(GUARDED_PREFIXES) == ("security" in op)
               for p, item in guarded["paths"].items() for op in item.values())


def test_feedback_refused_for_what_was_sent_before_is_a_409_not_a_bad_body() -> None:
    """No document can say these: they depend on the earlier prediction and on the names a
    version already counts. The body itself is well formed, so it is not a 400 or a 422."""
    record = {"x": 1.5, "n": 2, "tag": "a"}
    with SyncClient(create_gateway(serving(warm(1)), clock=CLOCK)) as http:
        url = f"/v1/models/{MODEL}/feedback"
        two = http.post(f"/v1/models/{MODEL}/predict", json={"records": [record, record]})
        refused = http.post(url, json={"request_id": two.headers["X-Request-Id"], "label": 1})
        assert (refused.status_code, refused.json()["error"]["field"]) == (409, "label")
        scored = http.post(url, json={"request_id": two.headers["X-Request-Id"],
                                      "label": [1, 1]})
        assert scored.json()["correct"] == [True, True]
        for batch in range(3):
            rid = http.post(f"/v1/models/{MODEL}/predict", json={"records": [record]}
                            ).headers["X-Request-Id"]
            told = http.post(url, json={"request_id": rid, "metrics": {
                f"m{batch}_{i}": 1.0 for i in range(16)}})
            assert told.status_code == (200 if batch < 2 else 409), told.text
        assert told.json()["error"]["field"] == "metrics"
