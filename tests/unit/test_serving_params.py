"""Inference params against a version's params schema, and outputs in each door's convention."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from lastgood.domain.errors import SchemaMismatch
from lastgood.domain.versions import Param, Version
from lastgood.serving.params import checked_params
from lastgood.serving.protocols.mlflow_scoring import as_mlflow_answers
from lastgood.serving.protocols.oip_outputs import encode_named_outputs
from lastgood.serving.protocols.oip_tensors import InferRequest, RequestedOutput
from lastgood.testing import make_manifest

SCHEMA = (Param("threshold", "double", 50.0), Param("mode", "string", "fast"),
          Param("ids", "long", [1], (-1,)))


def test_defaults_fill_what_the_request_leaves_out() -> None:
    got = checked_params(SCHEMA, {"threshold": 60}, where="params")
    assert got == {"threshold": 60, "mode": "fast", "ids": [1]}
    assert checked_params(SCHEMA, None, where="params")["threshold"] == 50.0


@pytest.mark.parametrize(("given", "named"), [
    ({"threshold": "high"}, "params.threshold"),
    ({"threshold": True}, "params.threshold"),
    ({"ids": 3}, "params.ids"),
    ({"ids": [1, 2.5]}, "params.ids"),
    ({"treshold": 1.0}, "params.treshold"),
    (["threshold"], "params"),
])
def test_a_wrong_type_or_unknown_name_is_refused_naming_it(given: Any, named: str) -> None:
    with pytest.raises(SchemaMismatch) as caught:
        checked_params(SCHEMA, given, where="params")
    assert caught.value.details["field"] == named
    assert named in caught.value.one_line()


def test_a_model_without_a_params_schema_refuses_params() -> None:
    with pytest.raises(SchemaMismatch, match="takes no inference params"):
        checked_params((), {"threshold": 1.0}, where="parameters")
    assert checked_params((), {}, where="params") == {}


def with_form(form: str) -> Version:
    manifest = make_manifest(("MLmodel", b"flavors: {}"))
    return Version(model="m", number=1, manifest=manifest, digest=manifest.digest,
                   flavor="onnx", created_at=datetime(2026, 1, 1, tzinfo=UTC), created_by="t",
                   provenance={"output_form": form})


def test_invocations_answer_several_outputs_as_mlflow_does() -> None:
    rows = [{"label": 0, "probabilities": [0.9, 0.1]}, {"label": 1, "probabilities": [0.2, 0.8]}]
    assert as_mlflow_answers(rows, with_form("dict")) == {
        "label": [0, 1], "probabilities": [[0.9, 0.1], [0.2, 0.8]]}
    assert as_mlflow_answers([0.5, 0.7], with_form("series:0")) == [{"0": 0.5}, {"0": 0.7}]
    assert as_mlflow_answers([0.5], with_form("frame:score")) == [{"score": 0.5}]
    assert as_mlflow_answers(rows, with_form("frame")) == rows
    assert as_mlflow_answers([1, 2], with_form("array")) == [1, 2]


def request(*names: str) -> InferRequest:
    return InferRequest(id=None, inputs=(), binary_output=False,
                        outputs=tuple(RequestedOutput(n, None) for n in names))


def test_oip_answers_one_tensor_per_output_as_asked() -> None:
    rows = [{"label": 0, "probabilities": [0.9, 0.1]}, {"label": 1, "probabilities": [0.2, 0.8]}]
    every = encode_named_outputs(rows, (), request())
    assert [(o.header["name"], o.header["datatype"], o.header["shape"]) for o in every] == [
        ("label", "INT64", [2]), ("probabilities", "FP64", [2, 2])]
    [only] = encode_named_outputs(rows, (), request("probabilities"))
    assert only.header["data"] == [0.9, 0.1, 0.2, 0.8]
    with pytest.raises(SchemaMismatch, match="no output named 'score'"):
        encode_named_outputs(rows, (), request("score"))
