"""schemathesis (its CLI, `--checks all`) against a real `lastgood serve` on loopback serving a
verified iris model: its native doors against the OpenAPI document it publishes, and its Open
Inference Protocol v2 doors against the protocol's published REST specification
(tests/data/open_inference_rest.yaml, unchanged; see tests/data/README.md).
"""

from __future__ import annotations

import copy
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lastgood.sdk import Lastgood
from lastgood.serving.protocols.oip_tensors import OIP_PARAMETERS
from tests.e2e.cli import Cli
from tests.e2e.test_cli_rollback import fill_history
from tests.e2e.test_cli_serve import wait_ready
from tests.integration import schemathesis_cli
from tests.net import free_port

pytestmark = pytest.mark.slow

SPEC = Path(__file__).parents[1] / "data" / "open_inference_rest.yaml"
MODEL = "iris"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, models: list[Path]) -> Iterator[str]:
    """`lastgood serve` for production, with v3 of iris live and v2 verified."""
    cli = Cli(home=tmp_path_factory.mktemp("home"), extra_env={"LASTGOOD_SMOKE_TEST": "off"})
    with Lastgood(home=cli.home, actor="setup") as lg:
        fill_history(lg, models, verify_second=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = cli.start("serve", "--env", "production", "--port", str(port))
    try:
        wait_ready(url)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


def test_the_native_doors_do_what_their_openapi_document_says(served: str,
                                                              tmp_path: Path) -> None:
    document = httpx.get(f"{served}/openapi.json", timeout=10).json()
    assert f"/v1/models/{MODEL}/predict" in document["paths"]
    run = schemathesis_cli.run(f"{served}/openapi.json", workdir=tmp_path, max_examples=15)
    assert run.exit_code == 0, run.summary
    assert run.tested == (9, 9), run.summary


def oip_document(metadata: dict[str, Any]) -> dict[str, Any]:
    """The published specification, made concrete for the model a replica serves.

    - `${MODEL_NAME}` in its paths is the placeholder notation of its prose; in OpenAPI a path
      parameter is `{MODEL_NAME}` (their values are fixed to the served model by the config).
    - The inference request is narrowed to what this model takes, as the replica's own model
      metadata (itself checked against the specification's metadata schema by the run) states
      it: one [1, k] FP64 tensor of its k inputs, the model's one output if any is asked for,
      and an `id` lastgood can echo in a header (1 to 64 of A-Z a-z 0-9 . _ : -).
    - The infer request body is required: its schema requires `inputs`, but the
      specification leaves out `required: true` on the body (OpenAPI's default is false), so
      a POST without a body would count as valid.
    - The request's own `parameters` (free-form in the specification) are the protocol's
      (`content_type`, `headers`): this model registered no params schema, and a model that
      takes no inference params refuses others (422 naming them). `binary_data_output` asks
      for the binary tensor extension, which this document does not describe (tritonclient's
      tests cover it).
    - Besides 400, an infer request may be answered 422 when its tensors do not fit the
      model: lastgood's one status for "well formed, but not this model's input" at every
      door (the protocol's prose asks for an error status, "usually 400").
    """
    spec = yaml.safe_load(SPEC.read_text())
    spec["paths"] = {path.replace("${", "{"): item for path, item in spec["paths"].items()}
    schemas = spec["components"]["schemas"]
    inputs = metadata["inputs"]
    tensor = copy.deepcopy(schemas["request_input"])
    tensor["properties"] |= {
        "name": {"type": "string", "not": {"enum": [i["name"] for i in inputs]}},
        "datatype": {"type": "string", "enum": ["FP64"]},
        "shape": {"type": "array", "items": {"type": "integer"}, "enum": [[1, len(inputs)]]},
        "data": {"type": "array", "items": {"type": "number"},
                 "minItems": len(inputs), "maxItems": len(inputs)}}
    request = schemas["inference_request"]
    request["properties"] |= {
        "id": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"},
        "inputs": {"type": "array", "items": tensor, "minItems": 1, "maxItems": 1},
        "outputs": {"type": "array", "items": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string",
                                    "enum": [o["name"] for o in metadata["outputs"]]}}}},
        "parameters": {"type": "object", "additionalProperties": False, "properties": {
            k: {} for k in sorted(OIP_PARAMETERS - {"binary_data_output"})}}}
    infer = spec["paths"]["/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/infer"]["post"]
    infer["requestBody"]["required"] = True
    infer["responses"]["422"] = infer["responses"]["400"]
    return spec


def test_the_oip_doors_do_what_the_protocols_published_specification_says(
        served: str, tmp_path: Path) -> None:
    metadata = httpx.get(f"{served}/v2/models/{MODEL}", timeout=10).json()
    live = httpx.get(f"{served}/v1/models/{MODEL}", timeout=10).json()["live"]["version"]
    (tmp_path / "oip.yaml").write_text(yaml.safe_dump(oip_document(metadata)))
    (tmp_path / "schemathesis.toml").write_text(
        f'[parameters]\n"path.MODEL_NAME" = "{MODEL}"\n"path.MODEL_VERSION" = "{live}"\n')
    run = schemathesis_cli.run(str(tmp_path / "oip.yaml"), workdir=tmp_path, base_url=served,
                               config=tmp_path / "schemathesis.toml", max_examples=25)
    assert run.exit_code == 0, run.summary
    assert run.tested == (6, 6), run.summary
