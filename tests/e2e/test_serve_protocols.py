"""`lastgood serve` through the clients teams already run, none of them written here:
tritonclient's InferenceServerClient (Open Inference Protocol v2, JSON and binary tensors),
MLflow's ScoringServerClient and MLflow's documented `/invocations` payloads through `requests`,
and KServe v1 payloads through httpx. Every answer must equal the native route's, be counted
like a native one, and every bad input must be a 4xx in its protocol's shape."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from lastgood.domain.versions import GoldenExample
from lastgood.sdk import Lastgood
from tests.e2e.cli import Cli
from tests.e2e.test_cli_serve import wait_ready
from tests.helpers_models import (
    IRIS_COLUMNS,
    IRIS_SCHEMA,
    iris_records,
    three_iris_skops,
    train_iris,
    train_iris_onnx,
)
from tests.net import free_port, wait_for

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*Any type hint is inferred:UserWarning")]
ENV = ("--env", "production")
RECORDS = iris_records(5)


@dataclass
class Served:
    url: str
    port: int
    cli: Cli
    process: subprocess.Popen[str]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def native(self, model: str, records: list[dict[str, Any]]) -> list[Any]:
        r = httpx.post(f"{self.url}/v1/models/{model}/predict", json={"records": records},
                       timeout=10)
        assert r.status_code == 200, r.text
        return list(r.json()["predictions"])

    def stats(self, model: str) -> dict[int, dict[str, Any]]:
        body = httpx.get(f"{self.url}/v1/models/{model}/stats", timeout=10).json()
        return {v["version"]: v for v in body["versions"]}


def golden(records: list[dict[str, float]]) -> list[GoldenExample]:
    outputs = train_iris().predict([[r[c] for c in IRIS_COLUMNS] for r in records])
    return [GoldenExample(r, int(o)) for r, o in zip(records, outputs, strict=True)]


def mlflow_dir(folder: Path) -> Path:
    """An iris classifier fitted on a DataFrame, saved by MLflow's own save_model."""
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    from tests.helpers_models import iris

    features, labels = iris()
    frame = pd.DataFrame(features, columns=list(IRIS_COLUMNS))
    model = LogisticRegression(max_iter=1000).fit(frame, labels)
    target = folder / "iris-mlflow"
    mlflow.sklearn.save_model(model, target,
                              signature=infer_signature(frame, model.predict(frame)))
    return target


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """iris (v1 verified, v2 live, v1 the warm standby), iris-onnx (a tensor model) and
    iris-mlflow (a directory written by mlflow.sklearn.save_model), the default model of
    /invocations."""
    folder = tmp_path_factory.mktemp("protocols")
    cli = Cli(home=folder / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})
    models = three_iris_skops(folder / "models")
    with Lastgood(home=cli.home, actor="setup") as lg:
        for i, path in enumerate(models[:2], start=1):
            lg.register("iris", path, tag=f"v{i}.0", schema=IRIS_SCHEMA,
                        golden=golden(iris_records(4)))
        lg.deploy("iris", 1, env="production", reason="release 1")
        lg.verify("iris", env="production", baseline={"error_rate": 0.01}, reason="baked")
        lg.deploy("iris", 2, env="production", reason="release 2")
        lg.register("iris-onnx", train_iris_onnx(folder / "iris.onnx"), tag="v1.0")
        lg.deploy("iris-onnx", 1, env="production", reason="release 1")
        lg.register("iris-mlflow", mlflow_dir(folder), tag="v1.0")
        lg.deploy("iris-mlflow", 1, env="production", reason="release 1")
    port = free_port()
    process = cli.start("serve", *ENV, "--port", str(port), "--default-model", "iris-mlflow")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        assert wait_for_standby(url, "iris"), "v1 never became the warm standby"
        yield Served(url, port, cli, process)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def wait_for_standby(url: str, model: str, timeout_s: float = 60) -> bool:
    return wait_for(lambda: bool(httpx.get(f"{url}/v1/models/{model}", timeout=5)
                                 .json()["standby"]), timeout_s=timeout_s, poll_s=0.2)


# -- Open Inference Protocol v2 through tritonclient ------------------------------------------

def triton(served: Served) -> Any:
    import tritonclient.http as tc

    return tc.InferenceServerClient(url=served.host, connection_timeout=10,
                                    network_timeout=10)


def column_inputs(records: list[dict[str, float]], *, binary: bool) -> list[Any]:
    import tritonclient.http as tc

    inputs = []
    for column in IRIS_COLUMNS:
        tensor = tc.InferInput(column, [len(records)], "FP64")
        tensor.set_data_from_numpy(np.array([r[column] for r in records]), binary_data=binary)
        inputs.append(tensor)
    return inputs


def matrix_input(name: str, records: list[dict[str, float]], dtype: Any, datatype: str, *,
                 binary: bool) -> list[Any]:
    import tritonclient.http as tc

    tensor = tc.InferInput(name, [len(records), len(IRIS_COLUMNS)], datatype)
    tensor.set_data_from_numpy(np.array([[r[c] for c in IRIS_COLUMNS] for r in records],
                                        dtype=dtype), binary_data=binary)
    return [tensor]


def test_tritonclient_sees_a_live_ready_server_and_the_registered_signature(
        served: Served) -> None:
    client = triton(served)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert client.is_model_ready("iris", model_version="1")  # the warm standby
    assert not client.is_model_ready("iris", model_version="7")
    assert not client.is_model_ready("nope")
    meta = client.get_model_metadata("iris")
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [
        (c, "FP64", [-1]) for c in IRIS_COLUMNS]
    assert meta["outputs"] == [{"name": "prediction", "datatype": "INT64", "shape": [-1]}]
    assert sorted(meta["versions"]) == ["1", "2"]
    onnx = client.get_model_metadata("iris-onnx")
    assert onnx["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_infers_tabular_columns_and_a_matrix_like_the_native_route(
        served: Served, binary: bool) -> None:
    import tritonclient.http as tc

    client = triton(served)
    want = served.native("iris", RECORDS)
    asked = [tc.InferRequestedOutput("prediction", binary_data=binary)]
    by_column = client.infer("iris", column_inputs(RECORDS, binary=binary), outputs=asked)
    assert by_column.as_numpy("prediction").tolist() == want
    response = by_column.get_response()
    assert response["model_version"] == "2"
    assert response["id"]
    matrix = client.infer("iris", matrix_input("x", RECORDS, np.float64, "FP64", binary=binary),
                          outputs=asked, request_id="triton-req-1")
    assert matrix.as_numpy("prediction").tolist() == want
    assert matrix.get_response()["id"] == "triton-req-1"
    # the default of tritonclient: no outputs named, every output binary
    default = client.infer("iris", column_inputs(RECORDS, binary=binary))
    assert default.as_numpy("prediction").tolist() == want
    saved_by_mlflow = client.infer("iris-mlflow", column_inputs(RECORDS, binary=binary))
    # an MLflow directory's one value per record comes as [N, 1], as MLServer's MLflow runtime
    # shapes it
    assert saved_by_mlflow.as_numpy("prediction").shape == (len(RECORDS), 1)
    assert saved_by_mlflow.as_numpy("prediction").reshape(-1).tolist() == served.native(
        "iris-mlflow", RECORDS)
    for algorithm in ("gzip", "deflate"):
        packed = client.infer("iris", column_inputs(RECORDS, binary=binary),
                              request_compression_algorithm=algorithm)
        assert packed.as_numpy("prediction").tolist() == want


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_infers_a_tensor_model_and_a_standby_version(
        served: Served, binary: bool) -> None:
    import tritonclient.http as tc

    client = triton(served)
    records = [{"input": [r[c] for c in IRIS_COLUMNS]} for r in RECORDS]
    want = served.native("iris-onnx", records)
    result = client.infer("iris-onnx", matrix_input("input", RECORDS, np.float32, "FP32",
                                                    binary=binary),
                          outputs=[tc.InferRequestedOutput("label", binary_data=binary)])
    assert result.as_numpy("label").tolist() == want
    standby = client.infer("iris", column_inputs(RECORDS, binary=binary), model_version="1")
    assert standby.get_response()["model_version"] == "1"
    assert standby.as_numpy("prediction").tolist() == train_iris().predict(
        [[r[c] for c in IRIS_COLUMNS] for r in RECORDS]).tolist()


def test_oip_requests_count_like_native_ones_and_take_feedback(served: Served) -> None:

    client = triton(served)
    before = served.stats("iris")[2]["requests"]
    result = client.infer("iris", column_inputs(RECORDS[:1], binary=True))
    request_id = result.get_response()["id"]
    told = httpx.post(f"{served.url}/v1/models/iris/feedback", timeout=10, json={
        "request_id": request_id, "label": int(result.as_numpy("prediction")[0])})
    assert told.status_code == 200, told.text
    assert told.json()["version"] == 2
    after = served.stats("iris")[2]
    assert after["requests"] == before + 1
    assert after["feedback"]["correct"] >= 1
    metrics = httpx.get(f"{served.url}/metrics", timeout=10).text
    assert f'lastgood_requests_total{{model="iris",version="2"}} {after["requests"]:.1f}' \
        in metrics


def test_tritonclient_errors_are_4xx_and_never_model_errors(served: Served) -> None:
    import tritonclient.http as tc
    from tritonclient.utils import InferenceServerException

    client = triton(served)
    wrong = tc.InferInput("sepal_length", [1], "BYTES")
    wrong.set_data_from_numpy(np.array([b"5.1"], dtype=object), binary_data=True)
    with pytest.raises(InferenceServerException) as refused:
        client.infer("iris", [*column_inputs(RECORDS[:1], binary=True)[1:], wrong])
    assert refused.value.status() == "422"
    assert "BYTES does not fit" in refused.value.message()
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("iris", column_inputs(RECORDS[:1], binary=True), model_version="9")
    assert unknown.value.status() == "404"
    assert "1 (standby)" in unknown.value.message()
    with pytest.raises(InferenceServerException) as missing:
        client.infer("nope", column_inputs(RECORDS[:1], binary=True))
    assert missing.value.status() == "404"
    assert all(v["errors"] == 0 for v in served.stats("iris").values())


SHORT = (b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","parameters":'
         b'{"binary_data_size":32}}]}')
BAD_OIP: list[tuple[str, dict[str, str], bytes, int, str]] = [
    ("shape and data disagree", {},
     b'{"inputs":[{"name":"x","shape":[2,4],"datatype":"FP64","data":[1,2,3]}]}', 422,
     "the shape holds 8 values, data has 3"),
    ("unknown datatype", {},
     b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP128","data":[1,2,3,4]}]}', 422,
     "unknown datatype 'FP128'"),
    ("BYTES where FP32 is declared", {},
     b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":["a","b","c","d"]}]}',
     422, "datatype FP32 but the value is a str"),
    ("binary part shorter than binary_data_size",
     {"Inference-Header-Content-Length": str(len(SHORT))}, SHORT + b"\0" * 8, 400,
     "only 8 remain"),
    ("huge Inference-Header-Content-Length",
     {"Inference-Header-Content-Length": "99999999999"},
     b'{"inputs":[]}', 400, "does not fit a 13 byte body"),
    ("not JSON", {}, b"{nope", 400, "not valid JSON"),
    ("a tensor the model does not have", {},
     b'{"inputs":[{"name":"sepal_length","shape":[1],"datatype":"FP64","data":[1]},'
     b'{"name":"colour","shape":[1],"datatype":"FP64","data":[1]}]}', 422,
     "no input has this name"),
    ("an output the model does not have", {},
     b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}],'
     b'"outputs":[{"name":"probabilities"}]}', 422, "no output named 'probabilities'"),
]


@pytest.mark.parametrize(("case", "headers", "body", "status", "words"), BAD_OIP,
                         ids=[c[0] for c in BAD_OIP])
def test_malformed_oip_bodies_are_4xx_in_oip_shape(served: Served, case: str,
                                                   headers: dict[str, str], body: bytes,
                                                   status: int, words: str) -> None:
    before = served.stats("iris")
    r = httpx.post(f"{served.url}/v2/models/iris/infer", content=body, headers=headers,
                   timeout=10)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["error"], str)
    assert words in r.json()["error"]
    after = served.stats("iris")
    assert {n: (v["requests"], v["errors"]) for n, v in after.items()} == \
        {n: (v["requests"], v["errors"]) for n, v in before.items()}


def test_unknown_routes_and_wrong_methods_answer_json(served: Served) -> None:
    oip = httpx.get(f"{served.url}/v2/models/iris/nope", timeout=10)
    assert (oip.status_code, isinstance(oip.json()["error"], str)) == (404, True)
    wrong = httpx.get(f"{served.url}/v2/models/iris/infer", timeout=10)
    assert wrong.status_code == 405
    assert "POST" in wrong.headers["allow"]
    native = httpx.delete(f"{served.url}/v1/models/iris/predict", timeout=10)
    assert native.status_code == 405
    assert native.json()["error"]["type"] == "MethodNotAllowed"
    assert httpx.get(f"{served.url}/nope", timeout=10).json()["error"]["type"] == \
        "RouteNotFound"


# -- MLflow scoring -------------------------------------------------------------------------

def test_mlflows_own_scoring_client_pings_and_invokes_with_a_dataframe(served: Served) -> None:
    import pandas as pd
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    client = ScoringServerClient("127.0.0.1", served.port)
    client.ping()
    assert client.get_version() == __import__("lastgood").__version__
    frame = pd.DataFrame(RECORDS, columns=list(IRIS_COLUMNS))
    answer = client.invoke(frame)
    assert answer.get_predictions(predictions_format="ndarray").tolist() == \
        served.native("iris-mlflow", RECORDS)


def test_mlflows_documented_payloads_and_csv(served: Served) -> None:
    import pandas as pd
    import requests

    want = served.native("iris-mlflow", RECORDS)
    frame = pd.DataFrame(RECORDS, columns=list(IRIS_COLUMNS))
    rows = [[r[c] for c in IRIS_COLUMNS] for r in RECORDS]
    url = f"{served.url}/invocations"
    for payload in ({"dataframe_split": frame.to_dict(orient="split")},
                    {"dataframe_records": frame.to_dict(orient="records")},
                    {"instances": RECORDS}, {"instances": rows}, {"inputs": rows},
                    {"inputs": {c: frame[c].tolist() for c in IRIS_COLUMNS}}):
        r = requests.post(url, json=payload, timeout=10)
        assert r.status_code == 200, (payload, r.text)
        assert r.json() == {"predictions": want}
        assert r.headers["X-Model-Version"] == "1"
        assert r.headers["X-Request-Id"]
    csv = requests.post(url, data=frame.to_csv(index=False),
                        headers={"Content-Type": "text/csv"}, timeout=10)
    assert csv.json() == {"predictions": want}
    assert requests.get(f"{served.url}/health", timeout=10).status_code == 200


BAD_MLFLOW: list[tuple[str, str, bytes, int, str]] = [
    ("both dataframe_split and instances", "application/json",
     b'{"dataframe_split":{"columns":["a"],"data":[[1]]},"instances":[[1]]}', 422,
     "both dataframe_split and instances"),
    ("a CSV with a missing column", "text/csv",
     b"sepal_length,sepal_width,petal_length\n5.1,3.5,1.4\n", 422, "rows[0].petal_width"),
    ("a CSV cell that is no number", "text/csv",
     b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,wide\n", 422,
     "rows[0].petal_width"),
    ("another content type", "text/plain", b"5.1,3.5,1.4,0.2", 415, "text/plain"),
    ("params the model cannot take", "application/json",
     b'{"inputs":[[5.1,3.5,1.4,0.2]],"params":{"temperature":0.1}}', 422, "params"),
    ("no payload key", "application/json", b'{"rows":[[1]]}', 422, "none of"),
]


@pytest.mark.parametrize(("case", "content_type", "body", "status", "words"), BAD_MLFLOW,
                         ids=[c[0] for c in BAD_MLFLOW])
def test_bad_invocations_are_4xx_in_mlflow_shape(served: Served, case: str,
                                                 content_type: str, body: bytes, status: int,
                                                 words: str) -> None:
    before = served.stats("iris-mlflow")
    r = httpx.post(f"{served.url}/invocations", content=body,
                   headers={"Content-Type": content_type}, timeout=10)
    assert r.status_code == status, r.text
    assert r.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST")
    assert words in r.json()["message"]
    assert served.stats("iris-mlflow") == before


def test_an_unknown_default_model_is_refused_in_one_line(served: Served) -> None:
    from tests.e2e.cli import assert_clean_error

    assert_clean_error(served.cli("serve", *ENV, "--port", str(free_port()),
                                  "--default-model", "nope"),
                       2, "--default-model 'nope' is not a registered model", "iris-mlflow")


# -- KServe v1 ------------------------------------------------------------------------------

def test_kserve_v1_payloads_through_httpx(served: Served) -> None:
    want = served.native("iris", RECORDS)
    with httpx.Client(base_url=served.url, timeout=10) as http:
        assert http.get("/v1/models").json()["models"] == ["iris", "iris-mlflow", "iris-onnx"]
        assert {k: v for k, v in http.get("/v1/models/iris").json().items()
                if k in ("name", "ready")} == {"name": "iris", "ready": True}
        rows = [[r[c] for c in IRIS_COLUMNS] for r in RECORDS]
        for body in ({"instances": RECORDS}, {"instances": rows}, {"inputs": rows}):
            r = http.post("/v1/models/iris:predict", json=body)
            assert r.status_code == 200, r.text
            assert r.json() == {"predictions": want}
            assert r.headers["X-Model-Version"] == "2"
        onnx = http.post("/v1/models/iris-onnx:predict", json={"instances": rows})
        assert onnx.json()["predictions"] == served.native(
            "iris-onnx", [{"input": row} for row in rows])
        bad = http.post("/v1/models/iris:predict", json={"instances": [[1.0, 2.0]]})
        assert bad.status_code == 422
        assert "expected an object or a list of 4 values" in bad.json()["error"]
        unknown = http.post("/v1/models/nope:predict", json={"instances": rows})
        assert unknown.status_code == 404
        assert "iris, iris-mlflow, iris-onnx" in unknown.json()["error"]


# -- a rollback under tritonclient load (last: it changes what is live) ----------------------

def test_a_rollback_under_tritonclient_load_fails_nothing_and_names_the_target(
        served: Served) -> None:
    import tritonclient.http as tc

    answers: list[tuple[float, str]] = []
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        client = triton(served)
        inputs = column_inputs(RECORDS[:2], binary=True)
        while not stop.is_set():
            try:
                result = client.infer("iris", inputs)
                answers.append((time.monotonic(), result.get_response()["model_version"]))
            except tc.InferenceServerException as exc:  # pragma: no cover - would fail below
                failures.append(str(exc))
            time.sleep(0.005)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        done = served.cli("rollback", "iris", *ENV, "--reason", "p95 doubled", "--yes",
                          "--json")
        switched_at = time.monotonic()
        assert done.code == 0, done.err
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
    assert failures == []
    assert {v for _, v in answers} == {"1", "2"}
    after = [v for at, v in answers if at > switched_at + 0.05]
    assert after
    assert set(after) == {"1"}
