"""The MLflow Model Registry through the `lastgood` command, against a real `mlflow server`
driven with MlflowClient: import by version, alias and run; sync; mirror; follow."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import Cli, assert_clean_error
from tests.e2e.mlflow_server import MlflowServer, log_model, wait_until

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    found = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    found.start()
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture(scope="module")
def fraud(server: MlflowServer) -> list[tuple[str, str]]:
    """Three versions of `fraud` in MLflow: (run id, version) each; alias champion → v2."""
    from mlflow import MlflowClient

    logged = [log_model(server.url, "fraud", seed=s, metric=0.8 + s / 100) for s in (1, 2, 3)]
    MlflowClient(server.url).set_registered_model_alias("fraud", "champion", "2")
    return logged


@pytest.fixture
def cli(tmp_path: Path, server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> Cli:
    for key in [k for k in os.environ if k.startswith(("LASTGOOD_", "MLFLOW_"))]:
        monkeypatch.delenv(key)
    return Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off",
                                                  "MLFLOW_TRACKING_URI": server.url})


def client(server: MlflowServer) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(server.url)


def test_import_by_version_alias_and_run(cli: Cli, fraud: list[tuple[str, str]],
                                         server: MlflowServer) -> None:
    by_version = cli("register", "fraud", "models:/fraud/1", "--json")
    assert by_version.code == 0, by_version.err
    v1 = by_version.json()
    assert v1["registered"] is True
    assert v1["mlflow"]["version"] == "1"
    shown = cli("show", "fraud", "1", "--json").json()
    assert shown["metrics"]["auc"] == pytest.approx(0.81)
    prov = shown["provenance"]
    assert prov["mlflow.model"] == "fraud"
    assert prov["mlflow.version"] == "1"
    assert prov["mlflow.run_id"] == fraud[0][0]
    assert prov["mlflow.tracking_uri"] == server.url
    assert prov["origin"] == "mlflow:fraud/1"
    assert all(f["path"] != "registered_model_meta" for f in shown["files"])

    by_alias = cli("register", "fraud", "models:/fraud@champion", "--json").json()
    assert by_alias["registered"] is True
    assert by_alias["mlflow"]["version"] == "2"
    assert cli("show", "fraud", "2", "--json").json()["provenance"]["mlflow.aliases"] == "champion"

    # the same model through its run: identical content, said so, nothing new registered
    run_id = fraud[0][0]
    again = cli("register", "fraud", f"runs:/{run_id}/model", "--json")
    assert again.code == 0, again.err
    assert again.json()["registered"] is False
    assert again.json()["identical_to"] == 1
    assert len(cli("versions", "fraud", "--json").json()) == 2
    text = cli("register", "fraud", "models:/fraud/1")
    assert "identical to fraud@1" in text.out


def test_downloaded_folder_and_registry_copy_have_one_digest(
        cli: Cli, fraud: list[tuple[str, str]], server: MlflowServer, tmp_path: Path) -> None:
    import mlflow

    imported = cli("register", "fraud", "models:/fraud/3", "--json").json()
    folder = mlflow.artifacts.download_artifacts("models:/fraud/3", dst_path=str(tmp_path / "d"),
                                                 tracking_uri=server.url)
    assert (Path(folder) / "registered_model_meta").is_file()
    by_hand = cli("register", "fraud", folder, "--json")
    assert by_hand.code == 0, by_hand.err
    assert by_hand.json()["identical_to"] == imported["version"]
    assert by_hand.json()["digest"] == imported["digest"]


def test_bad_mlflow_input_is_one_line(cli: Cli, fraud: list[tuple[str, str]],
                                      server: MlflowServer, tmp_path: Path) -> None:
    assert_clean_error(cli("register", "fraud", "models:/nope/1"), 2, "nope", "fraud")
    assert_clean_error(cli("register", "fraud", "models:/fraud/99"), 2, "no version 99", "1, 2, 3")
    assert_clean_error(cli("register", "fraud", "models:/fraud@gone"), 2, "gone", "champion")
    assert_clean_error(cli("register", "fraud", "runs:/0123456789abcdef/model"), 2, "no run")
    assert_clean_error(cli("register", "fraud", "models:/fraud/Production"), 2, "stages")
    empty = client(server).create_run(client(server).get_experiment_by_name(
        "lastgood-tests").experiment_id).info.run_id
    assert_clean_error(cli("register", "fraud", f"runs:/{empty}/model"), 2, "no MLflow model")
    no_uri = cli("register", "fraud", "models:/fraud/1", env={"MLFLOW_TRACKING_URI": ""})
    assert_clean_error(no_uri, 2, "MLFLOW_TRACKING_URI")
    down = cli("register", "fraud", "models:/fraud/1",
               env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})
    assert_clean_error(down, 1, "unreachable", "MLFLOW_TRACKING_URI")


def bulk_versions(server: MlflowServer, name: str, count: int, run_id: str) -> None:
    """`count` MLflow versions of `name` sharing one logged model's artifacts: MLflow makes a
    version per create_model_version call without uploading anything again."""
    c = client(server)
    first = c.get_model_version("fraud", "1")
    model_id = first.model_id or first.source.removeprefix("models:/")  # MLflow 3 logged model
    with contextlib.suppress(Exception):
        c.create_registered_model(name)
    for _ in range(count):
        c.create_model_version(name, first.source, run_id=run_id,
                               model_id=model_id)


def origins(cli: Cli, model: str) -> list[str]:
    return [cli("show", model, str(v["version"]), "--json").json()["provenance"]["origin"]
            for v in cli("versions", model, "--json").json()]


def test_sync_twice_imports_each_version_once(cli: Cli, fraud: list[tuple[str, str]]) -> None:
    first = cli("sync", "mlflow", "--model", "fraud", "--json")
    assert first.code == 0, first.err
    assert first.json()["imported"] == 3
    again = cli("sync", "mlflow", "--model", "fraud", "--json")
    assert again.code == 0, again.err
    assert again.json()["seen"] == 0
    assert again.json()["imported"] == 0
    assert sorted(origins(cli, "fraud")) == ["mlflow:fraud/1", "mlflow:fraud/2", "mlflow:fraud/3"]
    text = cli("sync", "mlflow", "--model", "fraud")
    assert "0 imported" in text.out


def test_sync_maps_mlflow_names_and_skips_a_clash(cli: Cli, fraud: list[tuple[str, str]],
                                                  server: MlflowServer) -> None:
    for name in ("Fraud Detector", "Churn Model", "churn-model"):
        bulk_versions(server, name, 1, fraud[0][0])
    done = cli("sync", "mlflow", "--model", "Fraud Detector", "--model", "Churn Model",
               "--model", "churn-model", "--json")
    assert done.code == 1, "a model skipped is a partial sync"
    assert done.json()["imported"] == 2
    [line] = done.json()["skipped"]
    assert "'Churn Model' skipped" in line
    assert "'churn-model'" in line
    assert "rename" in line
    assert origins(cli, "fraud-detector") == ["mlflow:Fraud Detector/1"]
    assert origins(cli, "churn-model") == ["mlflow:churn-model/1"]
    text = cli("sync", "mlflow", "--model", "Churn Model", "--model", "churn-model")
    assert text.code == 1
    assert "'Churn Model' skipped" in text.err
    assert "Traceback" not in text.err
    assert "0 imported" in text.out


def test_watch_keeps_mlflow_in_sync(cli: Cli, fraud: list[tuple[str, str]]) -> None:
    started = cli.start("watch", "--env", "production", "--interval", "1", "--sync-mlflow", "1")
    try:
        assert wait_until(lambda: len(_versions(cli, "fraud")) >= 3, timeout_s=120), \
            "the watch imported nothing from MLflow"
    finally:
        started.terminate()
        started.communicate(timeout=30)
    assert sorted(origins(cli, "fraud")) == ["mlflow:fraud/1", "mlflow:fraud/2", "mlflow:fraud/3"]


BULK = 150


def test_sync_killed_midway_leaves_no_duplicate(cli: Cli, fraud: list[tuple[str, str]],
                                                server: MlflowServer) -> None:
    # enough versions that the kill lands midway: a sync registers several a second, and each
    # `lastgood versions` the test polls with takes a while on a loaded machine
    bulk_versions(server, "bulk", BULK, fraud[0][0])
    started = cli.start("sync", "mlflow", "--model", "bulk")
    try:
        assert wait_until(lambda: len(_versions(cli, "bulk")) >= 1, timeout_s=120)
    finally:
        started.kill()  # SIGKILL: no cleanup runs
        started.communicate(timeout=30)
    partial = len(_versions(cli, "bulk"))
    assert partial < BULK, "the sync finished before it was killed; the drill proves nothing"
    done = cli("sync", "mlflow", "--model", "bulk", "--json")
    assert done.code == 0, done.err
    assert done.json()["imported"] == BULK - partial
    found = origins(cli, "bulk")
    assert len(found) == len(set(found)) == BULK
    # identical content from BULK MLflow versions: BULK versions, each said to be identical
    assert cli("sync", "mlflow", "--model", "bulk", "--json").json()["seen"] == 0


def _versions(cli: Cli, model: str) -> list[Any]:
    found = cli("versions", model, "--json")
    return found.json() if found.code == 0 else []


def deploy(cli: Cli, version: str, *extra: str) -> None:
    done = cli("deploy", "fraud", version, "--env", "production", "--reason", "release", *extra)
    assert done.code == 0, done.err


def verify(cli: Cli) -> None:
    done = cli("verify", "fraud", "--env", "production", "--metric", "accuracy=0.9",
               "--reason", "ok")
    assert done.code == 0, done.err


def mirrored(cli: Cli) -> dict[str, Any]:
    return dict(cli("status", "fraud", "--env", "production", "--json").json()["mlflow"])


def test_deploy_and_rollback_move_the_alias_and_write_tags(
        cli: Cli, fraud: list[tuple[str, str]], server: MlflowServer) -> None:
    assert cli("sync", "mlflow", "--model", "fraud").code == 0
    assert cli("env", "set", "production", "--mlflow-mode", "mirror").code == 0
    deploy(cli, "1")
    verify(cli)
    c = client(server)
    assert c.get_model_version_by_alias("fraud", "production").version == "1"
    tags = c.get_model_version("fraud", "1").tags
    assert json.loads(tags["lastgood.production.verified"])["approver"] == "oncall"
    deploy(cli, "2")
    assert c.get_model_version_by_alias("fraud", "production").version == "2"
    back = cli("rollback", "fraud", "--env", "production", "--reason", "auc fell", "--yes")
    assert back.code == 0, back.err
    assert c.get_model_version_by_alias("fraud", "production").version == "1"
    rolled = json.loads(c.get_model_version("fraud", "1").tags["lastgood.rolled_back_from"])
    assert rolled["lastgood_version"] == 2
    assert rolled["reason"] == "auc fell"
    quarantined = json.loads(c.get_model_version("fraud", "2").tags["lastgood.quarantined"])
    assert quarantined["archive_id"]
    assert quarantined["reason"] == "auc fell"
    state = mirrored(cli)
    assert state["in_sync"] is True
    assert state["mirrored"] == "1"
    assert "in sync" in cli("status", "fraud", "--env", "production").out


def test_mlflow_down_during_rollback(cli: Cli, fraud: list[tuple[str, str]],
                                     server: MlflowServer) -> None:
    assert cli("sync", "mlflow", "--model", "fraud").code == 0
    assert cli("env", "set", "production", "--mlflow-mode", "mirror").code == 0
    deploy(cli, "1")
    verify(cli)
    deploy(cli, "2")
    server.stop()
    try:
        back = cli("rollback", "fraud", "--env", "production", "--reason", "auc fell", "--yes")
        assert back.code == 0, back.err
        state = mirrored(cli)
        assert state["in_sync"] is False
        assert state["wanted"] == "1"
        assert state["mirrored"] == "2"
        assert "unreachable" in state["last_error"]
        text = cli("status", "fraud", "--env", "production").out
        assert "behind" in text
        assert "should name v1" in text
        offline = cli("sync", "mlflow", "--model", "fraud")
        assert offline.code == 1
        assert "MLFLOW_TRACKING_URI" in offline.err
    finally:
        server.start()
    caught_up = cli("sync", "mlflow", "--model", "fraud", "--json")
    assert caught_up.code == 0, caught_up.err
    assert client(server).get_model_version_by_alias("fraud", "production").version == "1"
    assert mirrored(cli)["in_sync"] is True
    events = cli("events", "--model", "fraud", "--json").json()
    assert [e["action"] for e in events].count("mlflow.mirror_failed") == 1


def test_follow_mode_deploys_an_alias_moved_in_mlflow(
        cli: Cli, fraud: list[tuple[str, str]], server: MlflowServer) -> None:
    assert cli("sync", "mlflow", "--model", "fraud").code == 0
    assert cli("env", "set", "production", "--mlflow-mode", "follow").code == 0
    deploy(cli, "1")
    c = client(server)
    c.set_registered_model_alias("fraud", "production", "2")
    followed = cli("sync", "mlflow", "--model", "fraud", "--json")
    assert followed.code == 0, followed.err
    assert followed.json()["followed"][0]["outcome"] == "deployed"
    live = cli("status", "fraud", "--env", "production", "--json").json()["desired"]
    assert live["version"] == 2
    assert live["deployed_by"] == "mlflow"
    assert "requested through MLflow" in live["reason"]

    # a refused request: v3 is retired in lastgood; the alias is set back and the refusal tagged
    assert cli("retire", "fraud", "3", "--reason", "leaks labels").code == 0
    c.set_registered_model_alias("fraud", "production", "3")
    refused = cli("sync", "mlflow", "--model", "fraud", "--json")
    assert refused.code == 0, refused.err
    assert refused.json()["followed"][0]["outcome"] == "refused"
    assert c.get_model_version_by_alias("fraud", "production").version == "2"
    assert "retired" in json.loads(c.get_model_version("fraud", "3").tags["lastgood.refused"])[
        "reason"]
    actions = [e["action"] for e in cli("events", "--model", "fraud", "--json").json()]
    assert "mlflow.follow_refused" in actions
    quiet = cli("sync", "mlflow", "--model", "fraud", "--json").json()
    assert quiet["followed"] == []


def test_status_and_history_at_a_time(cli: Cli, fraud: list[tuple[str, str]]) -> None:
    from datetime import UTC, datetime

    assert cli("sync", "mlflow", "--model", "fraud").code == 0
    deploy(cli, "1")
    verify(cli)
    between = datetime.now(UTC).isoformat()
    deploy(cli, "2")
    then = cli("status", "fraud", "--env", "production", "--at", between, "--json").json()
    assert then["live"]["version"] == 1
    assert then["last_verified"]["version"] == 1
    now = cli("status", "fraud", "--env", "production", "--at",
              datetime.now(UTC).isoformat(), "--json").json()
    assert now["live"]["version"] == 2
    assert now["last_verified"]["version"] == 1
    before = cli("status", "fraud", "--env", "production", "--at", "2000-01-01T00:00:00Z")
    assert "was not deployed" in before.out
    hist = cli("history", "fraud", "--env", "production", "--at", between, "--json").json()
    assert [d["version"] for d in hist] == [1]
    assert hist[0]["live_then"] is True
    assert_clean_error(cli("status", "fraud", "--env", "production", "--at", "yesterday"), 2,
                       "ISO 8601")


def _server(cli: Cli, port: int) -> Any:
    import httpx

    proc = cli.start("server", "--host", "127.0.0.1", "--port", str(port))

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1).status_code == 200
        except httpx.TransportError:
            return proc.poll() is not None

    assert wait_until(up, timeout_s=90), "lastgood server did not start"
    assert proc.poll() is None, proc.communicate()[1]
    return proc


def test_webhooks_follow_and_refuse_bad_deliveries(cli: Cli, fraud: list[tuple[str, str]],
                                                  server: MlflowServer) -> None:
    import time

    import httpx

    from lastgood.adapters.mlflow.webhooks import mlflow_signature
    from tests.net import free_port

    secret = "webhook-secret"
    cli.extra_env = dict(cli.extra_env or {}) | {"LASTGOOD_MLFLOW_WEBHOOK_SECRET": secret}
    assert cli("sync", "mlflow", "--model", "fraud").code == 0
    assert cli("env", "set", "production", "--mlflow-mode", "follow").code == 0
    deploy(cli, "1")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/mlflow/webhook"
    proc = _server(cli, port)
    c = client(server)
    hook = c.create_webhook(name=f"lastgood-{port}", url=url, secret=secret,
                            events=["model_version_alias.created"])
    try:
        time.sleep(1.5)  # past the server's webhook cache (MLFLOW_WEBHOOK_CACHE_TTL=1)
        c.set_registered_model_alias("fraud", "production", "2")
        assert wait_until(lambda: cli("status", "fraud", "--env", "production", "--json").json()[
            "desired"]["version"] == 2, timeout_s=60)

        body = json.dumps({"entity": "model_version_alias", "action": "created",
                           "data": {"name": "fraud", "alias": "production", "version": "2"}})
        now = str(int(time.time()))
        bad = httpx.post(url, content=body, headers={
            "X-MLflow-Signature": "v1,bm90IGl0", "X-MLflow-Timestamp": now,
            "X-MLflow-Delivery-Id": "bad-1"})
        assert bad.status_code == 401
        assert "signature" in bad.json()["message"]
        old = str(int(time.time()) - 3600)
        stale = httpx.post(url, content=body, headers={
            "X-MLflow-Signature": mlflow_signature(secret, "old-1", old, body),
            "X-MLflow-Timestamp": old, "X-MLflow-Delivery-Id": "old-1"})
        assert stale.status_code == 401
        assert "stale" in stale.json()["message"]
        signed = {"X-MLflow-Signature": mlflow_signature(secret, "once-1", now, body),
                  "X-MLflow-Timestamp": now, "X-MLflow-Delivery-Id": "once-1"}
        assert httpx.post(url, content=body, headers=signed).status_code == 200
        replay = httpx.post(url, content=body, headers=signed)
        assert replay.status_code == 409
        assert "already received" in replay.json()["message"]
    finally:
        c.delete_webhook(hook.webhook_id)
        proc.terminate()
        proc.communicate(timeout=30)
    refused = [e for e in cli("events", "--json").json()
               if e["action"] == "mlflow.webhook_refused"]
    assert [e["subject"] for e in refused] == ["bad-1", "old-1", "once-1"]
