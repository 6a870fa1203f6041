"""OIP v2 outputs as MLServer gives them: for every zoo entry MLServer's MLflow runtime serves,
a real MLServer (installed apart from lastgood, in its own venv) and a real `lastgood serve` of
the same MLflow directory answer the same `/v2/models/NAME/infer` request; each output's
datatype and shape must be MLServer's, and its name too where MLServer names it after the model
(a graph's outputs, a DataFrame's columns; MLServer calls a model's one unnamed output
`output-1`, lastgood names it as the signature does).

MLServer is the reference: the expected values come from running it, never from lastgood. Its
venv is made once per machine under ~/.cache/lastgood-tests (pip from PyPI, a few minutes), or
given as LASTGOOD_TEST_MLSERVER=PATH/TO/bin/mlserver; when it cannot be installed the test
skips and says why.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.e2e.cli import Cli
from tests.e2e.test_mlflow_reference import ok
from tests.mlflow_zoo import ZooModel, build_zoo
from tests.net import free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # installing MLServer takes minutes

MLSERVER = ("mlserver==1.7.1", "mlserver-mlflow==1.7.1")
# the model libraries MLServer's venv loads the zoo with: the versions lastgood is tested with
SAME_AS_LASTGOOD = ("mlflow", "scikit-learn", "numpy", "pandas", "onnx", "onnxruntime",
                    "statsmodels", "catboost", "skops")
# The zoo entries MLServer's MLflow runtime serves. Tried and left out: pyfunc, pyfunc-params
# and statsmodels (a Series or list of floats) and onnx-zipmap (a list of maps), which MLServer
# 1.7.1 answers 500 (its response codec reads `.dtype` of each value: "'float' object has no
# attribute 'dtype'").
SERVED = ("logreg-skops", "logreg-proba", "multioutput", "onnx", "pyfunc-frame", "catboost")
UNNAMED = re.compile(r"^output-\d+$")  # MLServer's name for an output the model does not name
ROOT = Path(__file__).resolve().parents[2]


def constraint_pins() -> list[str]:
    """lastgood's own pins (constraints.txt) of the libraries the zoo is saved with."""
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    wanted = {name.lower() for name in SAME_AS_LASTGOOD}
    return [line.strip() for line in lines
            if line.split("==")[0].strip().lower() in wanted and "==" in line]


def install_mlserver(venv: Path) -> Path:
    """MLServer and its MLflow runtime in their own venv; its mlserver binary."""
    binary = venv / "bin" / "mlserver"
    if binary.is_file():
        return binary
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *MLSERVER,
                           *constraint_pins()], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if "ERROR" in line] or \
            done.stderr.splitlines()[-1:]
        pytest.skip(f"mlserver could not be installed from PyPI into {venv}: "
                    f"{(lines or ['pip failed'])[-1][:300]}")
    return binary


@pytest.fixture(scope="module")
def mlserver_binary() -> Path:
    given = os.environ.get("LASTGOOD_TEST_MLSERVER")
    if given:
        assert Path(given).is_file(), f"LASTGOOD_TEST_MLSERVER={given} is not a file"
        return Path(given)
    key = hashlib.sha256(" ".join([*MLSERVER, *constraint_pins(), sys.version]).encode())
    return install_mlserver(Path.home() / ".cache" / "lastgood-tests" /
                            f"mlserver-{key.hexdigest()[:12]}")


def all_ready(url: str, names: tuple[str, ...]) -> bool:
    try:
        return all(httpx.get(f"{url}/v2/models/{n}/ready", timeout=2).status_code == 200
                   for n in names)
    except httpx.TransportError:
        return False


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int, *,
            ready: tuple[str, ...]) -> Iterator[str]:
    """A server on loopback until the block ends; its URL once every model in `ready` is."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        up = wait_for(lambda: server.poll() is not None or all_ready(url, ready),
                      timeout_s=600, poll_s=0.5)
        if server.poll() is not None or not up:
            log.seek(0)
            pytest.fail(f"{command[0]} never served {ready}: {log.read()[-3000:].decode()}")
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ZooModel]:
    built = build_zoo(tmp_path_factory.mktemp("oip-zoo"), SERVED)
    return {entry.name: entry for entry in built}


def mlserver(binary: Path, zoo: dict[str, ZooModel], root: Path) -> Any:
    """One MLServer process serving every entry's first version, parallel_workers 0."""
    port = free_port()
    settings = {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port(),
                "parallel_workers": 0, "debug": False}
    root.mkdir(parents=True, exist_ok=True)
    (root / "settings.json").write_text(json.dumps(settings))
    for name, entry in zoo.items():
        (root / name).mkdir()
        (root / name / "model-settings.json").write_text(json.dumps({
            "name": name, "implementation": "mlserver_mlflow.MLflowRuntime",
            "parameters": {"uri": str(entry.dirs[0])}}))
    env = dict(os.environ, PATH=f"{binary.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return serving([str(binary), "start", str(root)], env, port, ready=tuple(zoo))


DATATYPES = {"f": "FP64", "i": "INT64", "b": "BOOL", "O": "BYTES", "U": "BYTES"}


def infer_body(entry: ZooModel, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The entry's sample as MLServer's MLflow runtime reads it: a tensor per column (`pd`), or
    the one tensor of a tensor model (`np`)."""
    sample = entry.sample
    body: dict[str, Any]
    if isinstance(sample, pd.DataFrame):
        inputs = []
        for name in sample.columns:
            values = sample[name].to_numpy()
            datatype = DATATYPES[values.dtype.kind]
            data = [str(v) for v in values] if datatype == "BYTES" else values.tolist()
            inputs.append({"name": str(name), "datatype": datatype, "shape": [len(values)],
                           "data": data})
        body = {"inputs": inputs, "parameters": {"content_type": "pd"}}
    else:
        array = np.asarray(sample)
        datatype = "FP32" if array.dtype == np.float32 else DATATYPES[array.dtype.kind]
        body = {"inputs": [{"name": entry.tensor_name, "datatype": datatype,
                            "shape": list(array.shape), "data": array.reshape(-1).tolist(),
                            "parameters": {"content_type": "np"}}]}
    if params:
        body.setdefault("parameters", {}).update(params)
    return body


def described(answer: httpx.Response) -> list[tuple[str, str, list[int]]]:
    """Each output's (name, datatype, shape), in the order served."""
    assert answer.status_code == 200, answer.text
    return [(o["name"], o["datatype"], o["shape"]) for o in answer.json()["outputs"]]


def named_as(theirs: list[tuple[str, str, list[int]]],
             ours: list[tuple[str, str, list[int]]]) -> list[tuple[str, str, list[int]]]:
    """MLServer's outputs with lastgood's name where MLServer has none of the model's own
    (`output-1`): lastgood names the one output of a model as its signature does."""
    return [(mine[0] if UNNAMED.match(name) and len(theirs) == len(ours) else name,
             datatype, shape)
            for (name, datatype, shape), mine in zip(theirs, ours, strict=False)] + \
        theirs[len(ours):]


@pytest.fixture(scope="module")
def both(mlserver_binary: Path, zoo: dict[str, ZooModel],
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(MLServer's URL, lastgood's URL), each serving every entry's first version."""
    cli = Cli(home=tmp_path_factory.mktemp("oip-lastgood"))
    ok(cli("env", "set", "prod"))
    for name, entry in zoo.items():
        ok(cli(*entry.register_args(1)))
        ok(cli("deploy", name, "1", "--env", "prod", "--reason", "first"))
    port = free_port()
    command = [sys.executable, "-m", "lastgood", "serve", "--env", "prod", "--port", str(port)]
    with mlserver(mlserver_binary, zoo, tmp_path_factory.mktemp("mlserver")) as theirs, \
            serving(command, cli.env(), port, ready=tuple(zoo)) as ours:
        yield theirs, ours


@pytest.mark.parametrize("name", SERVED)
def test_each_output_has_mlservers_name_datatype_and_shape(
        name: str, zoo: dict[str, ZooModel], both: tuple[str, str]) -> None:
    theirs_url, ours_url = both
    body = infer_body(zoo[name])
    theirs = httpx.post(f"{theirs_url}/v2/models/{name}/infer", json=body, timeout=120)
    ours = httpx.post(f"{ours_url}/v2/models/{name}/infer", json=body, timeout=120)
    mine = described(ours)
    reference = named_as(described(theirs), mine)
    assert mine == reference, f"lastgood {mine} != MLServer {described(theirs)}"
