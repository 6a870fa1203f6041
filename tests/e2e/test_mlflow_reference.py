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
from tests.mlflow_zoo import ZooModel, build_zoo, same_predictions
from tests.net import free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # the zoo takes minutes

SHAPES = ("logreg-proba", "multioutput", "onnx", "onnx-zipmap", "onnx-two-inputs",
          "pyfunc-frame", "statsmodels", "catboost")


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
        wait_for(lambda: answers(url) or server.poll() is not None, timeout_s=120, poll_s=0.3)
        assert server.poll() is None, server.communicate()[1][-2000:]
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
        wait_for(lambda: invocations(url, payload).headers.get("x-model-version") == "2",
                 timeout_s=60, poll_s=0.3)
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
