"""Every common MLflow flavor, as a user types it: register two versions of a directory written
by MLflow's own save_model, deploy, verify, deploy the second, predict through a real
`lastgood serve` exactly as `mlflow.pyfunc.load_model(dir).predict` does, roll back, predict as
the first version again. One registry and one server for the whole zoo (the server serves
every model deployed to its environment), so the suite starts one process, not fifteen.

And the bad inputs of issue 9, each a one-line error (or a 4xx) with nothing registered.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.e2e.cli import Cli, Result, assert_clean_error
from tests.mlflow_zoo import (
    ZOO_NAMES,
    Versions,
    ZooModel,
    build_zoo,
    iris_frame,
    mlflow_predictions,
    onnx_graph,
    quiet,
    same_predictions,
    save_sklearn,
    signature,
)
from tests.net import free_port, wait_for

ENV = "zoo"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # the zoo takes minutes


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ZooModel]:
    """The zoo, built once per session: save_model is slow (it infers requirements)."""
    built = build_zoo(tmp_path_factory.mktemp("mlflow-zoo"))
    return {entry.name: entry for entry in built}


@dataclass
class Served:
    cli: Cli
    url: str

    def predict(self, model: str, records: list[dict[str, Any]]) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/models/{model}/predict", json={"records": records},
                          timeout=30)

    def wait_for_version(self, model: str, records: list[dict[str, Any]], version: int,
                         timeout: float = 60) -> httpx.Response:
        """The first 200 answer from `version`: the server follows the registry by itself."""
        answers: list[httpx.Response] = []

        def answered_by_version() -> bool:
            answers.append(self.predict(model, records))
            return (answers[-1].status_code == 200
                    and answers[-1].headers["x-model-version"] == str(version))

        if wait_for(answered_by_version, timeout_s=timeout, poll_s=0.3):
            return answers[-1]
        last = answers[-1] if answers else None
        detail = (last.status_code, last.text[:300]) if last is not None else "no answer"
        raise AssertionError(f"{model} never answered as v{version}: {detail}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One registry, one environment and one real `lastgood serve` on loopback for the zoo."""
    cli = Cli(home=tmp_path_factory.mktemp("zoo-home"))
    made = cli("env", "set", ENV)
    assert made.code == 0, made.err
    port = free_port()
    server = cli.start("serve", "--env", ENV, "--port", str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server)
        yield Served(cli, url)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate(timeout=10)


def wait_healthy(url: str, server: subprocess.Popen[str], timeout: float = 60) -> None:
    def healthy() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"lastgood serve exited: {server.communicate()[1][-2000:]}")
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200

    if not wait_for(healthy, timeout_s=timeout, poll_s=0.3):
        raise AssertionError("lastgood serve never answered /healthz")


def ok(result: Result) -> Result:
    assert result.code == 0, (result.code, result.out, result.err)
    assert "Traceback" not in result.err, result.err
    return result


def predictions(response: httpx.Response) -> list[Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == int(response.headers["x-model-version"])
    return list(body["predictions"])


# -- the zoo, end to end ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ZOO_NAMES)
def test_flavor_serves_exactly_and_rolls_back(name: str, zoo: dict[str, ZooModel],
                                              served: Served) -> None:
    entry, cli = zoo[name], served.cli
    expected = [mlflow_predictions(path, entry.sample) for path in entry.dirs]
    assert not same_predictions(*expected), "the two versions must differ for this to prove it"
    for number in (1, 2):
        made = ok(cli(*entry.register_args(number), "--json")).json()
        assert (made["version"], made["flavor"]) == (number, entry.flavor)
        assert made["unsafe_format"] is entry.allow_pickle
    ok(cli("deploy", name, "1", "--env", ENV, "--reason", "first release"))
    ok(cli("verify", name, "--env", ENV, "--metric", "error_rate=0.001",
           "--reason", "bake window passed"))
    ok(cli("deploy", name, "2", "--env", ENV, "--reason", "second release"))
    records = entry.records()
    got = predictions(served.wait_for_version(name, records, 2))
    assert same_predictions(got, expected[1]), (got, expected[1])
    ok(cli("rollback", name, "--env", ENV, "--reason", "v2 regressed", "--yes", "--json"))
    # The rollback completes only once the replica reports v1, so the next answer is v1's.
    back = served.predict(name, records)
    assert back.headers.get("x-model-version") == "1", back.text
    got = predictions(back)
    assert same_predictions(got, expected[0]), (got, expected[0])


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_golden_outputs_recorded_at_registration_are_mlflow_pyfuncs(
        name: str, zoo: dict[str, ZooModel], tmp_path: Path) -> None:
    """The reference defines a version's outputs: what registration recorded is what
    mlflow.pyfunc.load_model(dir).predict answers for the same inputs."""
    entry = zoo[name]
    cli = Cli(home=tmp_path / "home")
    made = ok(cli(*entry.register_args(1), "--json")).json()
    golden = ok(cli("show", name, "1", "--json")).json()["golden"]
    assert golden, "every zoo entry is saved with an input example"
    assert all(g["source"] == "recorded" for g in golden), golden
    inputs = [g["input"] for g in golden]
    sample = as_sample(entry, inputs)
    # the examples' own params (MLflow's input example carries them), given to the reference too
    [params] = {json.dumps(g.get("params") or {}, sort_keys=True) for g in golden}
    expected = mlflow_predictions(entry.dirs[0], sample, json.loads(params))
    assert same_predictions([g["output"] for g in golden], expected), (golden, expected)
    assert made["flavor"] == entry.flavor


def as_sample(entry: ZooModel, inputs: list[dict[str, Any]]) -> Any:
    """Golden inputs shaped like the entry's sample (a frame, one array, or named arrays)."""
    if isinstance(entry.sample, pd.DataFrame):
        return pd.DataFrame(inputs)
    if isinstance(entry.sample, dict):
        return {k: np.asarray([r[k] for r in inputs], dtype=v.dtype)
                for k, v in entry.sample.items()}
    return np.asarray([r[entry.tensor_name] for r in inputs],
                      dtype=np.asarray(entry.sample).dtype)


def test_wrong_dtype_at_predict_is_422_naming_the_column(zoo: dict[str, ZooModel],
                                                         served: Served) -> None:
    entry, cli = zoo["pipeline"], served.cli
    ok(cli("register", "typed", str(entry.dirs[0])))
    ok(cli("deploy", "typed", "1", "--env", ENV, "--reason", "dtype check"))
    records = entry.records()
    served.wait_for_version("typed", records, 1)
    bad = [dict(records[0], sepal_length="tall")]
    answer = served.predict("typed", bad)
    assert answer.status_code == 422, answer.text
    assert "sepal_length" in answer.text
    assert "Traceback" not in answer.text


# -- a flavor whose extra is missing -----------------------------------------------------------

# The host without the extra is simulated in the `lastgood` subprocess (and every child it
# starts, which inherits PYTHONPATH): a sitecustomize that sets sys.modules['xgboost'] = None
# makes every `import xgboost` raise ImportError, exactly as on a host where it was never
# installed. Uninstalling it from the shared venv instead would break the rest of the suite.
BLOCK_XGBOOST = "import sys\nsys.modules['xgboost'] = None\n"


def test_flavor_without_its_extra_is_refused_at_deploy(tmp_path: Path,
                                                       zoo: dict[str, ZooModel]) -> None:
    cli = Cli(home=tmp_path / "home")
    ok(cli(*zoo["xgboost"].register_args(1)))
    ok(cli("env", "set", "production"))
    site = tmp_path / "no-xgboost"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_XGBOOST)
    refused = cli("deploy", "xgboost", "1", "--env", "production", "--reason", "first",
                  env={"PYTHONPATH": str(site)})
    assert_clean_error(refused, 2, "pip install 'lastgood[xgboost]'")
    assert ok(cli("history", "xgboost", "--env", "production", "--json")).json() == []


# -- bad model directories: one line, exit 2, nothing registered ------------------------------

def assert_nothing_registered(cli: Cli) -> None:
    assert ok(cli("models", "--json")).json() == []


def unknown_flavor_dir(root: Path) -> Path:
    """A directory MLflow writes for a flavor with no python_function: lastgood can load it
    neither natively nor through MLflow. Written by MLflow's Model API (add_flavor + save),
    as a flavor plugin does; nothing hand-made."""
    from mlflow.models import Model

    frame, target = iris_frame()
    root.mkdir(parents=True)
    (root / "model.h2o").write_bytes(b"an h2o MOJO would be here")
    meta = Model()
    meta.add_flavor("h2o", data="model.h2o", h2o_version="3.46.0.1")
    meta.signature = signature(frame, target)
    with quiet():
        meta.save(str(root / "MLmodel"))
    return root


def corrupt_skops_dir(root: Path) -> Path:
    """A skops directory saved by MLflow, then its model.skops cut in half. The edit is the
    point: a truncated upload or a disk error leaves exactly this."""
    from sklearn.linear_model import LogisticRegression

    frame, target = iris_frame()
    versions = Versions(root, "corrupt")
    save_sklearn(versions, LogisticRegression(max_iter=2000).fit(frame, target), frame,
                 fmt="skops")
    model = versions.dirs[0] / "model.skops"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    return versions.dirs[0]


def onnx_signature_mismatch_dir(root: Path) -> Path:
    """An ONNX graph taking float32 [N, 4] saved with a signature of [N, 3]: MLflow saves it
    (it only logs that the example does not run)."""
    import mlflow.onnx
    from sklearn.linear_model import LogisticRegression

    frame, target = iris_frame()
    features = frame.to_numpy(dtype=np.float32)
    graph = onnx_graph(LogisticRegression(max_iter=2000).fit(features, target), zipmap=False)
    path = root / "onnx-mismatch"
    with quiet():
        mlflow.onnx.save_model(graph, str(path), input_example=features[:3, :3],
                               signature=signature(features[:, :3], target.to_numpy()))
    return path


@pytest.mark.parametrize(("builder", "words"), [
    (unknown_flavor_dir, ("h2o",)),
    (corrupt_skops_dir, ("model.skops",)),
    (onnx_signature_mismatch_dir, ("signature",)),
], ids=["unknown-flavor", "corrupt-skops", "onnx-signature-mismatch"])
def test_bad_mlflow_directory_is_refused_at_register(tmp_path: Path, builder: Any,
                                                     words: tuple[str, ...]) -> None:
    path = builder(tmp_path / "model")
    cli = Cli(home=tmp_path / "home")
    assert_clean_error(cli("register", "bad", str(path)), 2, *words)
    assert_nothing_registered(cli)


def test_golden_file_the_model_does_not_reproduce_is_refused(tmp_path: Path,
                                                             zoo: dict[str, ZooModel]) -> None:
    entry = zoo["logreg-skops"]
    expected = mlflow_predictions(entry.dirs[0], entry.sample)
    wrong = [{"input": record, "output": (label + 1) % 3}
             for record, label in zip(entry.records(), expected, strict=True)]
    golden = tmp_path / "golden.json"
    golden.write_text(json.dumps(wrong))
    cli = Cli(home=tmp_path / "home")
    refused = cli("register", entry.name, str(entry.dirs[0]), "--golden", str(golden))
    assert_clean_error(refused, 2, "golden")
    assert_nothing_registered(cli)
