"""Hostile numbers sent by real clients to a real `lastgood serve` on loopback: tritonclient
(Open Inference Protocol v2, JSON and binary tensors), MLflow's ScoringServerClient and a CSV,
KServe v1 and native bodies through httpx. Each must be a 4xx naming the field, counted in
`lastgood_rejected_requests_total`, never a request or an error of the model.

(The full door x dtype x literal walk runs on the ASGI app in
tests/unit/test_serving_hostile_numbers.py; this is the smaller set over the wire.)
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli
from tests.e2e.test_cli_serve import wait_ready
from tests.e2e.test_serve_protocols import (
    ENV,
    Served,
    column_inputs,
    golden,
    mlflow_dir,
    triton,
)
from tests.helpers_models import IRIS_COLUMNS, IRIS_SCHEMA, iris_records, three_iris_skops
from tests.net import free_port

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*Any type hint is inferred:UserWarning")]
RECORDS = iris_records(3)
BIG = "9" * 400


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """iris (skops, float64 schema) and iris-mlflow (MLflow's save_model), the default model
    of /invocations."""
    folder = tmp_path_factory.mktemp("hostile")
    cli = Cli(home=folder / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})
    with Lastgood(home=cli.home, actor="setup") as lg:
        lg.register("iris", three_iris_skops(folder / "models")[0], tag="v1.0",
                    schema=IRIS_SCHEMA, golden=golden(iris_records(4)))
        lg.deploy("iris", 1, env="production", reason="release 1")
        lg.register("iris-mlflow", mlflow_dir(folder), tag="v1.0")
        lg.deploy("iris-mlflow", 1, env="production", reason="release 1")
    port = free_port()
    process = cli.start("serve", *ENV, "--port", str(port), "--default-model", "iris-mlflow")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        yield Served(url, port, cli, process)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def rejected(served: Served, model: str) -> float:
    """`lastgood_rejected_requests_total` of `model`, every reason summed, from /metrics."""
    text = httpx.get(f"{served.url}/metrics", timeout=10).text
    prefix = f'lastgood_rejected_requests_total{{model="{model}"'
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(prefix))


def outcomes(served: Served, model: str) -> dict[int, tuple[int, int]]:
    return {n: (v["requests"], v["errors"]) for n, v in served.stats(model).items()}


def refused(served: Served, model: str, send: Callable[[], tuple[int, str]],
            field: str) -> str:
    """Send one hostile request; assert it was refused and counted right; its error text."""
    before, counted = outcomes(served, model), rejected(served, model)
    status, text = send()
    assert 400 <= status < 500, (status, text)
    assert field in text, text
    assert "Traceback" not in text
    assert rejected(served, model) == counted + 1
    assert outcomes(served, model) == before
    return text


def hostile_column(column: str, value: float, n: int = 2) -> list[dict[str, float]]:
    return [{**r, column: value} if i == n - 1 else r for i, r in enumerate(RECORDS[:n])]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_tritonclient_non_finite_fp64_is_a_422_naming_the_tensor(served: Served, value: float,
                                                                 binary: bool) -> None:
    from tritonclient.utils import InferenceServerException

    client = triton(served)

    def send() -> tuple[int, str]:
        with pytest.raises(InferenceServerException) as error:
            client.infer("iris", column_inputs(hostile_column("petal_width", value),
                                               binary=binary))
        return int(error.value.status()), error.value.message()

    text = refused(served, "iris", send, "(petal_width).data[1]")
    assert "NaN is not a number" in text or "is not a finite number" in text


@pytest.mark.parametrize(("datatype", "dtype"), [("FP32", np.float32), ("FP16", np.float16)])
def test_tritonclient_fp32_and_fp16_infinities_are_refused(served: Served, datatype: str,
                                                           dtype: Any) -> None:
    import tritonclient.http as tc
    from tritonclient.utils import InferenceServerException

    client = triton(served)
    inputs = column_inputs(RECORDS[:1], binary=True)
    wide = tc.InferInput("sepal_length", [1], datatype)
    wide.set_data_from_numpy(np.array([np.inf], dtype=dtype), binary_data=True)

    def send() -> tuple[int, str]:
        with pytest.raises(InferenceServerException) as error:
            client.infer("iris", [wide, *inputs[1:]])
        return int(error.value.status()), error.value.message()

    refused(served, "iris", send, "(sepal_length).data[0]")


@pytest.mark.parametrize("literal", [BIG, "1e400", "NaN", "-Infinity"])
def test_a_raw_oip_fp64_tensor_with_a_hostile_literal_is_a_422(served: Served,
                                                              literal: str) -> None:
    row = ",".join(["5.1", "3.5", "1.4", literal])
    body = f'{{"inputs":[{{"name":"x","shape":[1,4],"datatype":"FP64","data":[{row}]}}]}}'

    def send() -> tuple[int, str]:
        r = httpx.post(f"{served.url}/v2/models/iris/infer", content=body, timeout=10)
        return r.status_code, str(r.json()["error"])

    refused(served, "iris", send, "inputs[0] (x).data[3]")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**400],
                         ids=["nan", "inf", "400 digits"])
def test_mlflows_scoring_client_sending_a_hostile_frame_is_refused(served: Served,
                                                                  value: Any) -> None:
    import pandas as pd
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    frame = pd.DataFrame(hostile_column("petal_width", value), columns=list(IRIS_COLUMNS))
    client = ScoringServerClient("127.0.0.1", served.port)

    def send() -> tuple[int, str]:
        with pytest.raises(Exception, match="error code") as error:
            client.invoke(frame)
        message = str(error.value)
        return int(message.split("error code ", 1)[1].split(",", 1)[0]), message

    refused(served, "iris-mlflow", send, "dataframe_split[1].petal_width")


@pytest.mark.parametrize("cell", ["nan", "inf", "1e400", BIG])
def test_a_csv_with_a_hostile_cell_is_refused(served: Served, cell: str) -> None:
    csv = ",".join(IRIS_COLUMNS) + "\n5.1,3.5,1.4,0.2\n" + f"5.1,3.5,1.4,{cell}\n"

    def send() -> tuple[int, str]:
        r = httpx.post(f"{served.url}/invocations", content=csv,
                       headers={"Content-Type": "text/csv"}, timeout=10)
        return r.status_code, str(r.json()["message"])

    refused(served, "iris-mlflow", send, "rows[1].petal_width")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e400", BIG])
@pytest.mark.parametrize("door", ["native", "kserve"])
def test_native_and_kserve_bodies_with_a_hostile_literal_are_refused(served: Served, door: str,
                                                                    literal: str) -> None:
    fields = ", ".join(f'"{c}": {literal if c == "sepal_width" else "1.0"}'
                       for c in IRIS_COLUMNS)
    key, path = (("records", "predict") if door == "native" else ("instances", ":predict"))
    url = f"{served.url}/v1/models/iris{'/' if door == 'native' else ''}{path}"

    def send() -> tuple[int, str]:
        r = httpx.post(url, content=f'{{"{key}": [{{{fields}}}]}}', timeout=10)
        error = r.json()["error"]
        return r.status_code, str(error if door == "kserve" else error["field"])

    refused(served, "iris", send, f"{key}[0].sepal_width")


def test_a_finite_request_still_answers_after_the_hostile_ones(served: Served) -> None:
    assert len(served.native("iris", RECORDS)) == len(RECORDS)
    assert all(errors == 0 for _, errors in outcomes(served, "iris").values())
