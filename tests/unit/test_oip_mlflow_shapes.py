"""OIP v2 outputs of a version from an MLflow directory are shaped as MLServer's MLflow runtime
shapes them (one value per record: [N, 1]; the e2e test holds them to a real MLServer); other
versions keep [N]. The bytes and the JSON data are the same either way."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lastgood.domain.versions import Version
from lastgood.serving.protocols.oip import mlflow_shaped
from lastgood.serving.protocols.oip_outputs import encode_named_outputs, encode_outputs
from lastgood.serving.protocols.oip_tensors import InferRequest
from lastgood.testing import make_manifest


def request(*, binary: bool) -> InferRequest:
    return InferRequest(id=None, inputs=(), outputs=(), binary_output=binary)


@pytest.mark.parametrize("binary", [False, True])
def test_one_value_per_record_is_a_column_and_the_bytes_do_not_change(binary: bool) -> None:
    [flat] = encode_outputs("prediction", [1.5, 2.5], None, request(binary=binary))
    [column] = encode_outputs("prediction", [1.5, 2.5], None, request(binary=binary),
                              as_column=True)
    assert flat.header["shape"] == [2]
    assert column.header["shape"] == [2, 1]
    assert column.blob == flat.blob
    assert column.header.get("data") == flat.header.get("data")


def test_rows_and_named_outputs_keep_their_own_shape_as_columns() -> None:
    [rows] = encode_outputs("p", [[0.1, 0.9], [0.8, 0.2]], None, request(binary=False),
                            as_column=True)
    assert rows.header["shape"] == [2, 2]
    label, probabilities = encode_named_outputs(
        [{"label": 1, "probabilities": [0.1, 0.9]}, {"label": 0, "probabilities": [0.8, 0.2]}],
        (), request(binary=False), as_column=True)
    assert (label.header["name"], label.header["shape"]) == ("label", [2, 1])
    assert (probabilities.header["name"], probabilities.header["shape"]) == ("probabilities",
                                                                             [2, 2])


def version(*files: str, provenance: dict[str, str] | None = None) -> Version:
    manifest = make_manifest(*((name, b"x") for name in files))
    return Version(model="m", number=1, manifest=manifest, digest=manifest.digest,
                   flavor="sklearn", created_at=datetime(2026, 1, 1, tzinfo=UTC),
                   created_by="t", provenance=provenance or {})


def test_versions_from_an_mlflow_directory_are_shaped_as_mlserver_shapes_them() -> None:
    assert mlflow_shaped(version("MLmodel", "model.pkl"))
    assert mlflow_shaped(version("model.onnx", provenance={"output_form": "dict"}))
    assert not mlflow_shaped(version("model.skops"))
