"""The MLflow integration's pure parts: URIs, 'what was live at T', webhook verification, and
lastgood without mlflow installed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lastgood.adapters.mlflow.webhooks import mlflow_signature
from lastgood.domain.deployments import Deployment, VerifiedRecord, live_at, verified_by
from lastgood.domain.errors import AlreadyExists, InvalidInput, NotFound, Unauthorized
from lastgood.services.mlflow_uris import parse_uri
from lastgood.services.mlflow_webhooks import Delivery, MlflowWebhooks
from lastgood.testing import FixedClock
from lastgood.testing.memory import memory_uow_factory

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_uri_forms() -> None:
    assert parse_uri("models:/fraud/3").version == "3"
    assert parse_uri("models:/fraud@champion").alias == "champion"
    assert parse_uri("models:/team/fraud/latest").model == "team/fraud"
    run = parse_uri("runs:/abc123/model/sub")
    assert (run.run_id, run.path) == ("abc123", "model/sub")
    for bad in ("models:/fraud", "models:/fraud/Production", "runs:/abc", "s3://x"):
        with pytest.raises(InvalidInput):
            parse_uri(bad)


def _dep(n: int, start: int, end: int | None, verified_at: int | None) -> Deployment:
    def at(h):
        return (T0 + timedelta(hours=h))
    record = None if verified_at is None else VerifiedRecord(
        baseline={"auc": 0.9}, window_start=at(start), window_end=at(verified_at),
        approver="a", at=at(verified_at))
    return Deployment(id=n, model="m", env="p", version=n, started_at=at(start),
                      deployed_by="x", reason="r", ended_at=None if end is None else at(end),
                      verified=record)


def test_live_at_and_verified_by() -> None:
    history = [_dep(3, 10, None, None), _dep(2, 5, 10, 7), _dep(1, 0, 5, 1)]
    assert live_at(history, T0 + timedelta(hours=6)).version == 2  # type: ignore[union-attr]
    assert verified_by(history, T0 + timedelta(hours=6)).version == 1  # type: ignore[union-attr]
    assert verified_by(history, T0 + timedelta(hours=8)).version == 2  # type: ignore[union-attr]
    assert live_at(history, T0 + timedelta(hours=11)).version == 3  # type: ignore[union-attr]
    assert live_at(history, T0 - timedelta(hours=1)) is None


class _NoFollow:
    def followed_for(self, outside_model: str, alias: str) -> list[tuple[str, str]]:
        return []


def _hooks(secret: str = "s") -> MlflowWebhooks:
    return MlflowWebhooks(uow=memory_uow_factory(), follow=_NoFollow(),  # type: ignore[arg-type]
                          clock=FixedClock(T0), sign=mlflow_signature, secret=secret)


def _delivery(secret: str, delivery_id: str, ts: float, body: str) -> Delivery:
    stamp = str(int(ts))
    return Delivery(signature=mlflow_signature(secret, delivery_id, stamp, body),
                    timestamp=stamp, delivery_id=delivery_id, body=body.encode())


def test_webhook_deliveries_are_verified_and_refusals_audited() -> None:
    hooks = _hooks()
    body = json.dumps({"entity": "model_version_alias", "action": "created",
                       "data": {"name": "fraud", "alias": "production", "version": "2"}})
    now = T0.timestamp()
    assert hooks.receive(_delivery("s", "d1", now, body)) == []
    with pytest.raises(AlreadyExists, match="already received"):
        hooks.receive(_delivery("s", "d1", now, body))
    with pytest.raises(Unauthorized, match="does not match"):
        hooks.receive(_delivery("wrong", "d2", now, body))
    with pytest.raises(Unauthorized, match="stale"):
        hooks.receive(_delivery("s", "d3", now - 3600, body))
    with hooks.uow() as uow:
        actions = [(e.draft.action, e.draft.subject) for e in uow.events.list()]
    assert actions == [("mlflow.webhook", "d1"), ("mlflow.webhook_refused", "d1"),
                       ("mlflow.webhook_refused", "d2"), ("mlflow.webhook_refused", "d3")]
    with pytest.raises(NotFound, match="LASTGOOD_MLFLOW_WEBHOOK_SECRET"):
        _hooks(secret="").receive(_delivery("s", "d4", now, body))


def test_lastgood_runs_without_mlflow(tmp_path: Path) -> None:
    """mlflow blocked from import: lastgood still works; an MLflow URI names the extra."""
    script = (
        "import sys; sys.modules['mlflow'] = None\n"
        "from lastgood.cli.main import main\n"
        "sys.argv = ['lastgood', *sys.argv[1:]]\n"
        "main()\n")
    env = {"LASTGOOD_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
           "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", script, *args], env=env, text=True,
                              capture_output=True, timeout=120, check=False)

    assert run("models").returncode == 0
    refused = run("register", "fraud", "models:/fraud/1")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().count("\n") == 0
    assert "pip install 'lastgood[mlflow]'" in refused.stderr
