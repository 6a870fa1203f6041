"""The CLI in remote mode against `lastgood server` on loopback: the same JSON as a local run, the
same exit codes, and the same access rules (a viewer cannot roll back; no token, no entry)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.cli import Cli, Result, assert_clean_error
from tests.net import free_port, wait_for

pytestmark = pytest.mark.slow
ENV = ("--env", "production")
VOLATILE = {"created_at", "updated_at", "started_at", "ended_at", "at", "window_start",
            "window_end", "since", "seen_at", "id", "operation_id", "archive_id", "actor",
            "checked_at",  # when a status was read
            "created_by", "deployed_by", "approver", "duration_ms", "deployment_id",
            "by",  # who stated a baseline, in a verified record's distribution
            "host"}  # the host's free memory, in the resources check's evidence




def stable(data: Any) -> Any:
    """`data` without what differs between any two runs (times, ids, who)."""
    if isinstance(data, dict):
        return {k: stable(v) for k, v in data.items() if k not in VOLATILE}
    if isinstance(data, list):
        return [stable(v) for v in data]
    return data


class Remote:
    """A `lastgood server` subprocess over a fresh home, and tokens made by the local CLI."""

    def __init__(self, home: Path) -> None:
        self.local = Cli(home=home, extra_env={"LASTGOOD_SMOKE_TEST": "off"})
        self.url = f"http://127.0.0.1:{free_port()}"
        self.tokens: dict[str, str] = {}

    def start(self) -> subprocess.Popen[str]:
        port = self.url.rsplit(":", 1)[1]
        proc = self.local.start("server", "--host", "127.0.0.1", "--port", port)

        def up() -> bool:
            if proc.poll() is not None:
                return True  # exited: no use waiting
            return httpx.get(f"{self.url}/openapi.json", timeout=1).status_code == 200

        if wait_for(up, timeout_s=60, poll_s=0.1) and proc.poll() is None:
            return proc
        proc.kill()
        raise AssertionError(f"the server did not start: {proc.communicate()[1]}")

    def token(self, owner: str, role: str) -> str:
        done = self.local("token", "create", owner, "--role", role)
        assert done.code == 0, done.err
        self.tokens[role] = done.out.strip()
        return self.tokens[role]

    def __call__(self, *args: str, role: str = "operator", token: str | None = None) -> Result:
        secret = self.tokens[role] if token is None else token
        return self.local(*args, env={"LASTGOOD_URL": self.url, "LASTGOOD_TOKEN": secret})


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    """One server for the module; each test uses its own model and environment."""
    server = Remote(tmp_path_factory.mktemp("server") / "home")
    for owner, role in (("vic", "viewer"), ("olga", "operator"), ("ada", "admin")):
        server.token(owner, role)
    proc = server.start()
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def story(run: Any, models: list[Path]) -> dict[str, Any]:
    """Register three versions, deploy and verify two, deploy the third, plan and roll back:
    every step's --json output."""
    out: dict[str, Any] = {}
    for i, path in enumerate(models, start=1):
        out[f"register{i}"] = run("register", "story", str(path), "--tag", f"v{i}.0",
                                  "--metric", "accuracy=0.9", "--json")
    for n in (1, 2, 3):
        out[f"deploy{n}"] = run("deploy", "story", str(n), *ENV, "--reason", f"release {n}",
                                "--json")
        if n < 3:
            out[f"verify{n}"] = run("verify", "story", *ENV, "--metric", "p95_ms=41",
                                    "--reason", "bake passed", "--json")
    out["plan"] = run("rollback", "story", *ENV, "--dry-run", "--json")
    out["rollback"] = run("rollback", "story", *ENV, "--reason", "p95 doubled", "--json")
    for name in ("status", "history"):
        out[name] = run(name, "story", *ENV, "--json")
    out["versions"] = run("versions", "story", "--json")
    out["show"] = run("show", "story", "v1.0", "--json")
    return out


def test_remote_json_equals_local_json(remote: Remote, models: list[Path],
                                       tmp_path: Path) -> None:
    local = Cli(home=tmp_path / "local-home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})
    there = story(remote, models)
    here = story(local, models)
    for step, result in there.items():
        assert result.code == 0, (step, result.err)
        assert here[step].code == 0, (step, here[step].err)
        assert stable(result.json()) == stable(here[step].json()), step
    assert there["rollback"].json()["actor"] == "olga"  # the token's owner, not the OS user
    assert there["rollback"].json()["target_version"] == 2


def test_a_viewer_cannot_roll_back_remotely_and_the_attempt_is_audited(
        remote: Remote, models: list[Path]) -> None:
    staging = ("--env", "staging")
    for i, path in enumerate(models[:2], start=1):
        assert remote("register", "guarded", str(path)).code == 0
        assert remote("deploy", "guarded", str(i), *staging, "--reason", "r").code == 0
        assert remote("verify", "guarded", *staging, "--metric", "p95_ms=40",
                      "--reason", "ok").code == 0
    plan = remote("rollback", "guarded", *staging, "--dry-run", "--json", role="viewer")
    assert (plan.code, plan.json()["target"]) == (0, 1)
    denied = remote("rollback", "guarded", *staging, "--reason", "bad", "--yes", role="viewer")
    assert_clean_error(denied, 7, "vic has the viewer role", "operator")
    status = remote("status", "guarded", *staging, "--json", role="viewer").json()
    assert status["desired"]["version"] == 2  # nothing moved
    events = remote("events", "--model", "guarded", "--json", role="viewer").json()
    refused = [e for e in events if e["outcome"] == "refused"]
    assert [(e["action"], e["actor"], e["env"]) for e in refused] == [
        ("rollback.refused", "vic", "staging")]


def test_missing_unknown_and_revoked_tokens_exit_6(remote: Remote) -> None:
    assert_clean_error(remote("models", token=""), 6, "no API token")
    assert_clean_error(remote("models", token="lgt_forged"), 6, "unknown API token")
    made = remote("token", "create", "temp", "--role", "viewer", "--json", role="admin").json()
    assert remote("models", token=made["token"]).code == 0
    listed = remote("token", "list", "--json", role="admin").json()
    assert made["token"] not in str(listed)
    assert remote("token", "revoke", made["id"], role="admin").code == 0
    assert_clean_error(remote("models", token=made["token"]), 6, "revoked")
    assert_clean_error(remote("token", "list", role="operator"), 7, "admin")


def test_an_unreachable_control_plane_is_one_line(tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "home")
    result = cli("models", env={"LASTGOOD_URL": f"http://127.0.0.1:{free_port()}",
                                "LASTGOOD_TOKEN": "x"})
    assert_clean_error(result, 1, "cannot reach the control plane", "LASTGOOD_URL")


def test_remote_signing_keeps_the_private_key_here(remote: Remote, models: list[Path],
                                                  tmp_path: Path) -> None:
    signer = Cli(home=tmp_path / "release-pipeline")
    env = {"LASTGOOD_URL": remote.url, "LASTGOOD_TOKEN": remote.tokens["admin"]}
    assert signer("key", "create", "release", env=env).code == 0
    assert (tmp_path / "release-pipeline" / "keys" / "release.key").is_file()
    assert not (remote.local.home / "keys").exists()
    secure = ("--env", "secure")
    assert remote("env", "set", "secure", "--require-signature", "--trusted-key",
                  "release", role="admin").code == 0
    signed = signer("register", "signed", str(models[0]), "--sign-with", "release", "--json",
                    env=env)
    assert signed.code == 0, signed.err
    assert remote("register", "signed", str(models[1])).code == 0
    assert remote("deploy", "signed", "1", *secure, "--reason", "signed").code == 0
    refused = remote("deploy", "signed", "2", *secure, "--reason", "unsigned")
    assert_clean_error(refused, 2, "is not signed")
    assert remote("show", "signed", "1", "--json").json()["signed_by"] == "release"


def test_demo_serve_leaves_the_dashboard_running(tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "home", extra_env={"LASTGOOD_SMOKE_TEST": "off"})
    port = free_port()
    proc = cli.start("demo", "--no-watch", "--serve", "--port", str(port))
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "sign in with this admin token:" in line:
                break
        token = lines[-1].split()[-1]
        assert f"dashboard: http://127.0.0.1:{port}/" in "".join(lines)
        base = f"http://127.0.0.1:{port}"
        who = httpx.get(f"{base}/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
        assert who.json() == {"owner": "demo", "role": "admin"}
        status = httpx.get(f"{base}/api/v1/models/wine-quality/status",
                           params={"env": "production"},
                           headers={"Authorization": f"Bearer {token}"}).json()
        assert status["desired"]["version"] == 2  # the rollback the demo just did
        page = httpx.get(f"{base}/", follow_redirects=True)
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
