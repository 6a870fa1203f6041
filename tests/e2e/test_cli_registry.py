"""The registry through the `lastgood` command: the happy path and every bad input of issue 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.cli import Cli, assert_clean_error
from tests.helpers_models import train_iris_pickle, train_iris_skops


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_iris_skops(tmp_path_factory.mktemp("models") / "iris.skops")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(home=tmp_path / "home")


def blobs(cli: Cli) -> list[Path]:
    root = cli.home / "artifacts"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_register_list_show_with_json(cli: Cli, model_file: Path, tmp_path: Path) -> None:
    golden = tmp_path / "golden.json"
    # The model was fit without feature names, so its inputs are x0…x3; golden examples are
    # run at registration, and inputs the model cannot take would be refused.
    golden.write_text(json.dumps([{"input": {"x0": 5.1, "x1": 3.5, "x2": 1.4, "x3": 0.2},
                                   "output": 0}]))
    first = cli("register", "iris", str(model_file), "--tag", "v1.0", "--metric",
                "accuracy=0.95", "--provenance", "git_sha=abc", "--golden", str(golden),
                "--json")
    assert first.code == 0, first.err
    body = first.json()
    assert (body["name"], body["version"], body["tag"]) == ("iris", 1, "v1.0")
    assert len(body["digest"]) == 64
    same = cli("register", "iris", str(model_file), "--json").json()
    assert (same["registered"], same["identical_to"]) == (False, 1)  # identical: one version
    # a new origin makes identical bytes a version of their own, on purpose
    second = cli("register", "iris", str(model_file), "--provenance", "origin=rebuild-2",
                 "--json").json()
    assert second["version"] == 2
    assert len(blobs(cli)) == 1  # the same bytes are stored once
    listed = cli("versions", "iris", "--json").json()
    assert [v["version"] for v in listed] == [2, 1]
    shown = cli("show", "iris", "v1.0", "--json").json()
    assert shown["metrics"] == {"accuracy": 0.95}
    assert shown["provenance"] == {"git_sha": "abc"}
    assert shown["golden"][0]["output"] == 0
    assert shown["runtime"]["packages"]["scikit-learn"]
    assert cli("models", "--json").json()[0]["versions"] == 2
    events = cli("events", "--model", "iris", "--json").json()
    assert [e["action"] for e in events] == ["version.registered"] * 2
    table = cli("versions", "iris")
    assert "v1.0" in table.out
    assert table.code == 0
    assert table.err == ""  # everything fits: no hint
    newest = cli("versions", "iris", "--limit", "1")
    assert "v1.0" not in newest.out
    assert "the newest 1 shown; --limit N or --all for more" in newest.err
    assert "v1.0" in cli("versions", "iris", "--limit", "1", "--all").out


def test_retire_needs_reason_and_is_audited(cli: Cli, model_file: Path) -> None:
    cli("register", "iris", str(model_file))
    assert_clean_error(cli("retire", "iris", "1"), 2, "reason")
    done = cli("retire", "iris", "1", "--reason", "license expired", "--json")
    assert done.json()["status"] == "retired"
    assert cli("events", "--json").json()[-1]["action"] == "version.retired"


def test_bad_inputs_are_one_line_exit_2_and_write_nothing(cli: Cli, model_file: Path,
                                                          tmp_path: Path) -> None:
    assert cli("register", "iris", str(model_file), "--tag", "v1").code == 0
    empty = tmp_path / "empty.skops"
    empty.write_bytes(b"")
    truncated = tmp_path / "cut.skops"
    truncated.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    bad_schema = tmp_path / "schema.json"
    bad_schema.write_text('{"inputs": [{"name": "x", "dtype": "float128"}]}')
    broken_json = tmp_path / "golden.json"
    broken_json.write_text('[{"input": {"x": 1}, ')
    cases = [
        (("show", "nope", "1"), "nope"),
        (("show", "iris", "9"), "9"),
        (("show", "iris", "v9"), "v9"),
        (("register", "iris", str(tmp_path / "missing.skops")), "does not exist"),
        (("register", "iris", str(empty)), "empty"),
        (("register", "iris", str(truncated)), "cut.skops"),
        (("register", "iris", str(model_file), "--flavor", "onnx"), "onnx"),
        (("register", "iris", str(model_file), "--input-schema", str(bad_schema)), "float128"),
        (("register", "iris", str(model_file), "--golden", str(broken_json)), "line 1"),
        (("register", "iris", str(model_file), "--metric", "accuracy=high"), "--metric"),
        (("register", "iris", str(model_file), "--metric", "accuracy"), "KEY=VALUE"),
        (("register", "iris", str(model_file), "--requires", "numpy>=1"), "--requires"),
        (("register", "iris", str(model_file), "--tag", "v1"), "v1"),
        (("register", "Bad Name", str(model_file)), "model name"),
    ]
    for args, word in cases:
        assert_clean_error(cli(*args), 2, word)
    assert cli("versions", "iris", "--json").json()[0]["version"] == 1
    assert len(blobs(cli)) == 1
    assert len(cli("events", "--json").json()) == 1


def test_pickle_refused_unless_allowed(cli: Cli, tmp_path: Path) -> None:
    pickled = train_iris_pickle(tmp_path / "model.pkl")
    assert_clean_error(cli("register", "iris", str(pickled)), 2, "--allow-pickle")
    ok = cli("register", "iris", str(pickled), "--allow-pickle", "--json")
    assert ok.code == 0, ok.err
    assert cli("show", "iris", "1", "--json").json()["unsafe_format"] is True


def test_unreachable_database_and_store(cli: Cli, model_file: Path) -> None:
    down = cli("models", env={"LASTGOOD_DB_URL": "postgresql+psycopg://u@127.0.0.1:1/x"})
    assert_clean_error(down, 1, "LASTGOOD_DB_URL")
    store = cli("register", "iris", str(model_file),
                env={"LASTGOOD_STORE_URL": "s3://bucket/prefix",
                     "LASTGOOD_S3_ENDPOINT_URL": "http://127.0.0.1:1",
                     "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"})
    assert_clean_error(store, 1, "LASTGOOD_STORE_URL")
    assert cli("models", "--json").json() == []


def test_flipped_byte_is_caught_on_read(cli: Cli, model_file: Path) -> None:
    cli("register", "iris", str(model_file))
    (blob,) = blobs(cli)
    data = bytearray(blob.read_bytes())
    data[100] ^= 0x01
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    cli("env", "set", "production")
    deploy = cli("deploy", "iris", "1", "--env", "production", "--reason", "first")
    assert_clean_error(deploy, 2, "integrity")
