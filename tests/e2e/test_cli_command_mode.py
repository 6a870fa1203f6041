"""Command mode as a platform team wires it: the deploy command gets the version's whole model
directory (`LASTGOOD_MODEL_DIR`, as MLflow wrote it) beside the documented LASTGOOD_*
variables, and copies it where its serving platform loads models from."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from tests.contract.test_artifact_store import moto_endpoint
from tests.e2e.cli import Cli
from tests.mlflow_zoo import Versions, iris_frame, save_sklearn

__all__ = ["moto_endpoint"]  # the fixture: a real S3 API on loopback

DEPLOY = ('mkdir -p "$OUT" && cp -r "$LASTGOOD_MODEL_DIR" "$OUT/v$LASTGOOD_VERSION" && '
          'env | grep ^LASTGOOD_ | sort > "$OUT/v$LASTGOOD_VERSION.env"')


@pytest.mark.slow
def test_the_deploy_command_gets_the_model_directory(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("LASTGOOD_")]:
        monkeypatch.delenv(key)
    out = tmp_path / "platform"
    cli = Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off", "OUT": str(out)})
    frame, labels = iris_frame()
    saved = Versions(tmp_path / "mlflow", "iris")
    save_sklearn(saved, LogisticRegression(max_iter=500).fit(frame, labels), frame, fmt="skops")
    [model_dir] = saved.dirs
    assert cli("register", "iris", str(model_dir)).code == 0
    setup = cli("env", "set", "production", "--switch-mode", "command", "--deploy-command",
                DEPLOY)
    assert setup.code == 0, setup.err
    done = cli("deploy", "iris", "1", "--env", "production", "--reason", "release")
    assert done.code == 0, done.err
    copied = out / "v1"
    wanted = sorted(p.relative_to(model_dir) for p in model_dir.rglob("*") if p.is_file())
    assert sorted(p.relative_to(copied) for p in copied.rglob("*") if p.is_file()) == wanted
    assert all(filecmp.cmp(model_dir / p, copied / p, shallow=False) for p in wanted)
    names = {line.split("=", 1)[0] for line in (out / "v1.env").read_text().splitlines()}
    assert {"LASTGOOD_MODEL", "LASTGOOD_VERSION", "LASTGOOD_TAG", "LASTGOOD_DIGEST",
            "LASTGOOD_ENV", "LASTGOOD_FLAVOR", "LASTGOOD_ARTIFACT_URL", "LASTGOOD_ARTIFACTS",
            "LASTGOOD_MODEL_DIR", "LASTGOOD_MODEL_URI"} <= names


@pytest.mark.slow
def test_with_an_s3_store_the_model_directory_is_an_s3_prefix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> None:
    """The store on S3 (a moto server): the deploy command gets LASTGOOD_MODEL_URI, the s3://
    prefix holding the whole model directory, which a platform loads with its own client."""
    from tests.contract.test_artifact_store import BUCKET, MOTO_ENV, published_files

    for key in [k for k in os.environ if k.startswith("LASTGOOD_")]:
        monkeypatch.delenv(key)
    out = tmp_path / "platform"
    cli = Cli(home=tmp_path / "home", extra_env={
        "LASTGOOD_SMOKE_TEST": "off", "OUT": str(out), **MOTO_ENV,
        "LASTGOOD_STORE_URL": f"s3://{BUCKET}/command-mode",
        "LASTGOOD_S3_ENDPOINT_URL": moto_endpoint})
    frame, labels = iris_frame()
    saved = Versions(tmp_path / "mlflow", "iris")
    save_sklearn(saved, LogisticRegression(max_iter=500).fit(frame, labels), frame, fmt="skops")
    [model_dir] = saved.dirs
    assert cli("register", "iris", str(model_dir)).code == 0
    assert cli("env", "set", "production", "--switch-mode", "command", "--deploy-command",
               'mkdir -p "$OUT" && echo "$LASTGOOD_MODEL_URI" > "$OUT/uri"').code == 0
    done = cli("deploy", "iris", "1", "--env", "production", "--reason", "release")
    assert done.code == 0, done.err
    uri = (out / "uri").read_text().strip()
    assert uri == f"s3://{BUCKET}/command-mode/models/iris/1"
    wanted = {p.relative_to(model_dir).as_posix(): p.read_bytes()
              for p in model_dir.rglob("*") if p.is_file()}
    assert published_files(uri, moto_endpoint) == wanted
