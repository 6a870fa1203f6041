"""A tracking server that refuses credentials, as MLflow's basic-auth app does (401 with a
Basic challenge when none are sent, 403 for credentials it does not accept): `sync mlflow` and
`register … models:/` exit 1 naming the variables to set. A real HTTP server on loopback stands
in for `mlflow server --app-name basic-auth`, which needs Flask-WTF (`mlflow[auth]`)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli import Cli, assert_clean_error

pytestmark = pytest.mark.timeout(300)

NOT_AUTHENTICATED = (b"You are not authenticated. Please see https://www.mlflow.org/docs/latest/"
                     b"auth/index.html#authenticating-to-mlflow on how to authenticate.")


class BasicAuthRefusal(http.server.BaseHTTPRequestHandler):
    """Every request refused: 401 without an Authorization header, 403 with one."""

    def do_GET(self) -> None:
        self._refuse()

    def do_POST(self) -> None:
        self._refuse()

    def _refuse(self) -> None:
        sent = self.headers.get("Authorization")
        body = b"Permission denied" if sent else NOT_AUTHENTICATED
        self.send_response(403 if sent else 401)
        if not sent:
            self.send_header("WWW-Authenticate", 'Basic realm="mlflow"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def refusing() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BasicAuthRefusal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def cli_for(tmp_path: Path, url: str, **credentials: str) -> Cli:
    return Cli(home=tmp_path / "home", extra_env={"MLFLOW_TRACKING_URI": url,
                                                  "LASTGOOD_SMOKE_TEST": "off", **credentials})


@pytest.mark.parametrize("credentials", [
    {}, {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "wrong"},
    {"MLFLOW_TRACKING_TOKEN": "expired"}], ids=["none", "password", "token"])
def test_refused_credentials_exit_1_naming_the_variables(
        tmp_path: Path, refusing: str, credentials: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    cli = cli_for(tmp_path, refusing, **credentials)
    code = "403" if credentials else "401"
    for args in (("sync", "mlflow"), ("sync", "mlflow", "--model", "fraud"),
                 ("register", "fraud", "models:/fraud/1")):
        assert_clean_error(cli(*args), 1, f"{refusing} refused the credentials", code,
                           "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                           "MLFLOW_TRACKING_TOKEN")
