"""The reference defines a version's outputs: for each shape MLflow users save every day
(predict_proba, several outputs, named outputs of a graph, a DataFrame, a Series, strings), a
real `mlflow models serve` of the directory answers MLflow's own serving_input_example.json,
and a real `lastgood serve`'s `/invocations` must answer the same JSON, before and after a
rollback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.cli import Cli, Result
from tests.mlflow_zoo import ZooModel, build_zoo, mlflow_predictions, same_predictions
from tests.net import free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # the zoo takes minutes

SHAPES = ("logreg-proba", "multioutput", "onnx", "onnx-zipmap", "onnx-two-inputs",
          "pyfunc-frame", "pyfunc-params", "statsmodels", "catboost")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ZooModel]:
    built = build_zoo(tmp_path_factory.mktemp("mlflow-shapes"), SHAPES)
    return {entry.name: entry for entry in built}


def ok(result: Result) -> Result:
    assert result.code == 0, (result.code, result.out, result.err)
    assert "Traceback" not in result.err, result.err
    return result


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ping", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    """A server process on loopback until the block ends; its URL once /ping answers."""
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        up = wait_for(lambda: answers(url) or server.poll() is not None, timeout_s=600,
                      poll_s=0.3)
        assert server.poll() is None, server.communicate()[1][-2000:]
        assert up, f"{command[0]} never answered /ping on {url}"
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate(timeout=10)


def mlflow_serve(directory: Path) -> Any:
    port = free_port()
    bin_dir = Path(sys.executable).parent  # mlflow execs `uvicorn` from PATH
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return serving([str(bin_dir / "mlflow"), "models", "serve", "-m", str(directory),
                    "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                   env, port)


def invocations(url: str, payload: str) -> httpx.Response:
    return httpx.post(f"{url}/invocations", content=payload,
                      headers={"Content-Type": "application/json"}, timeout=60)


def mlflow_answers(entry: ZooModel) -> tuple[str, list[Any]]:
    """MLflow's own example payload and what `mlflow models serve` answers it, per version."""
    payload = (entry.dirs[0] / "serving_input_example.json").read_text()
    theirs = []
    for directory in entry.dirs:
        with mlflow_serve(directory) as url:
            answer = invocations(url, payload)
            assert answer.status_code == 200, answer.text
            theirs.append(answer.json())
    return payload, theirs


def same_json(ours: Any, theirs: Any) -> bool:
    """Equal JSON, floats within float32 round trips."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return ours.keys() == theirs.keys() and all(same_json(ours[k], theirs[k])
                                                    for k in ours)
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(same_json(a, b)
                                                for a, b in zip(ours, theirs, strict=True))
    return same_predictions([ours], [theirs])


@pytest.mark.parametrize("name", SHAPES)
def test_invocations_answer_what_mlflow_models_serve_answers(
        name: str, shapes: dict[str, ZooModel], tmp_path: Path) -> None:
    entry = shapes[name]
    payload, theirs = mlflow_answers(entry)
    assert theirs[0] != theirs[1], "the two versions must differ for this to prove it"
    cli = Cli(home=tmp_path / "home")
    for number in (1, 2):
        made = ok(cli(*entry.register_args(number), "--json")).json()
        assert made["flavor"] == entry.flavor
    ok(cli("env", "set", "prod"))
    ok(cli("deploy", name, "1", "--env", "prod", "--reason", "first"))
    ok(cli("verify", name, "--env", "prod", "--metric", "error_rate=0.001", "--reason", "baked"))
    ok(cli("deploy", name, "2", "--env", "prod", "--reason", "second"))
    port = free_port()
    command = [sys.executable, "-m", "lastgood", "serve", "--env", "prod", "--port", str(port)]
    with serving(command, cli.env(), port) as url:
        assert wait_for(lambda: invocations(url, payload).headers.get("x-model-version") == "2",
                        timeout_s=120, poll_s=0.3), "lastgood serve never answered as v2"
        second = invocations(url, payload)
        assert second.status_code == 200, second.text
        assert same_json(second.json(), theirs[1]), (second.json(), theirs[1])
        ok(cli("rollback", name, "--env", "prod", "--reason", "v2 regressed", "--yes"))
        first = invocations(url, payload)
        assert first.headers.get("x-model-version") == "1", first.text
        assert same_json(first.json(), theirs[0]), (first.json(), theirs[0])


def test_registration_names_the_pyfunc_path_and_why(shapes: dict[str, ZooModel],
                                                   tmp_path: Path) -> None:
    entry = shapes["logreg-proba"]
    cli = Cli(home=tmp_path / "home")
    made = ok(cli(*entry.register_args(1)))
    assert "note: serving through mlflow.pyfunc: predict_fn predict_proba" in made.out
    assert json.loads(ok(cli("show", entry.name, "1", "--json")).out)["flavor"] == \
        "python_function"


# -- every output through tritonclient, params through MLflow's client and tritonclient ------

@pytest.fixture(scope="module")
def two_models(shapes: dict[str, ZooModel], tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[str, Cli]]:
    """One `lastgood serve` of an ONNX classifier (label and probabilities) and a pyfunc with a
    params schema (the /invocations default)."""
    cli = Cli(home=tmp_path_factory.mktemp("two-models"))
    ok(cli("env", "set", "prod"))
    for name in ("onnx", "pyfunc-params"):
        ok(cli(*shapes[name].register_args(1)))
        ok(cli("deploy", name, "1", "--env", "prod", "--reason", "first"))
    port = free_port()
    command = [sys.executable, "-m", "lastgood", "serve", "--env", "prod", "--port", str(port),
               "--default-model", "pyfunc-params"]
    with serving(command, cli.env(), port) as url:
        yield url, cli


def onnx_input(entry: ZooModel, *, binary: bool) -> Any:
    import numpy as np
    import tritonclient.http as tc

    features = np.asarray(entry.sample, dtype=np.float32)
    tensor = tc.InferInput("float_input", list(features.shape), "FP32")
    tensor.set_data_from_numpy(features, binary_data=binary)
    return tensor


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_oip_answers_every_output_named_and_only_those_asked(
        binary: bool, shapes: dict[str, ZooModel], two_models: tuple[str, Cli]) -> None:
    import numpy as np
    import tritonclient.http as tc
    from tritonclient.utils import InferenceServerException

    entry, (url, _) = shapes["onnx"], two_models
    theirs = mlflow_predictions(entry.dirs[0], np.asarray(entry.sample, dtype=np.float32))
    client = tc.InferenceServerClient(url.removeprefix("http://"))
    every = client.infer("onnx", [onnx_input(entry, binary=binary)])
    names = [o["name"] for o in every.get_response()["outputs"]]
    assert names == ["label", "probabilities"]
    assert every.as_numpy("label").reshape(-1).tolist() == [t["label"] for t in theirs]
    assert same_json(every.as_numpy("probabilities").tolist(),
                     [t["probabilities"] for t in theirs])
    asked = [tc.InferRequestedOutput("probabilities", binary_data=binary)]
    one = client.infer("onnx", [onnx_input(entry, binary=binary)], outputs=asked)
    assert [o["name"] for o in one.get_response()["outputs"]] == ["probabilities"]
    with pytest.raises(InferenceServerException, match="no output named 'score'"):
        client.infer("onnx", [onnx_input(entry, binary=binary)],
                     outputs=[tc.InferRequestedOutput("score", binary_data=binary)])


def test_params_reach_the_model_through_mlflows_scoring_client(
        shapes: dict[str, ZooModel], two_models: tuple[str, Cli]) -> None:
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    entry, (url, _) = shapes["pyfunc-params"], two_models
    host, port = url.removeprefix("http://").split(":")
    client = ScoringServerClient(host, int(port))
    sample = entry.sample.head(3)
    expected = mlflow_pyfunc(entry.dirs[0], sample, {"threshold": 60.0})
    got = client.invoke(sample, params={"threshold": 60.0}).get_predictions()
    assert same_predictions(got.iloc[:, 0].tolist(), expected)
    defaults = client.invoke(sample).get_predictions()
    assert same_predictions(defaults.iloc[:, 0].tolist(),
                            mlflow_pyfunc(entry.dirs[0], sample, None))
    with pytest.raises(Exception, match="threshold") as refused:
        client.invoke(sample, params={"threshold": "high"})
    assert "422" in str(refused.value)
    with pytest.raises(Exception, match="cutoff"):
        client.invoke(sample, params={"cutoff": 1.0})


def test_params_reach_the_model_through_tritonclient(
        shapes: dict[str, ZooModel], two_models: tuple[str, Cli]) -> None:
    import numpy as np
    import tritonclient.http as tc
    from tritonclient.utils import InferenceServerException

    entry, (url, _) = shapes["pyfunc-params"], two_models
    sample = entry.sample.head(3)
    columns = [("amount", "FP64", np.float64), ("visits", "INT64", np.int64),
               ("tier", "BYTES", np.object_)]
    tensors = []
    for name, datatype, dtype in columns:
        tensor = tc.InferInput(name, [len(sample)], datatype)
        tensor.set_data_from_numpy(sample[name].to_numpy(dtype=dtype), binary_data=False)
        tensors.append(tensor)
    client = tc.InferenceServerClient(url.removeprefix("http://"))
    answer = client.infer("pyfunc-params", tensors, parameters={"threshold": 60.0})
    [output] = answer.get_response()["outputs"]
    assert output["shape"] == [len(sample), 1]  # one value per record, as MLServer shapes it
    assert same_predictions(answer.as_numpy(output["name"]).reshape(-1).tolist(),
                            mlflow_pyfunc(entry.dirs[0], sample, {"threshold": 60.0}))
    with pytest.raises(InferenceServerException, match=r"parameters\.threshold"):
        client.infer("pyfunc-params", tensors, parameters={"threshold": "high"})


def mlflow_pyfunc(path: Path, sample: Any, params: dict[str, Any] | None) -> list[Any]:
    """What mlflow.pyfunc itself answers, with these params."""
    import mlflow.pyfunc

    answer = mlflow.pyfunc.load_model(str(path)).predict(sample, params=params)
    return [float(v) for v in answer]
