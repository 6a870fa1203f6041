"""The webhook notifier against a real HTTP receiver on 127.0.0.1 that checks the signature."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lastgood.adapters.notify import (
    SIGNATURE_HEADER,
    FanOut,
    LogNotifier,
    WebhookNotifier,
    signature_valid,
)
from lastgood.domain.decisions import Notice
from lastgood.testing import EPOCH

SECRET = "s3cret-shared-with-the-receiver"
NOTICE = Notice(model="fraud-detector", env="production", version=7, decision="rollback",
                verdict="DEGRADED", summary="watch: fraud-detector v7 in production: DEGRADED: "
                "error rate 5.1% vs baseline 1.0%", at=EPOCH, severity="critical",
                evidence={"signals": [{"signal": "error_rate", "e_value": 812.0}]})


@dataclass
class Receiver:
    """What the local receiver saw; `script` holds the statuses to answer, in order."""

    script: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    received: list[tuple[bytes, dict[str, str], bool]] = field(default_factory=list)
    url: str = ""


@contextmanager
def receiver(**options: Any) -> Iterator[Receiver]:
    state = Receiver(**options)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the stdlib's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            valid = signature_valid(body, headers.get(SIGNATURE_HEADER.lower(), ""), SECRET)
            state.received.append((body, headers, valid))
            if state.delay_s:
                threading.Event().wait(state.delay_s)
            status = state.script.pop(0) if state.script else (204 if valid else 401)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/lastgood"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_the_body_is_json_and_the_signature_checks_out() -> None:
    with receiver() as got:
        hook = WebhookNotifier(got.url, secret=SECRET, sleep=lambda s: None)
        hook.notify(NOTICE)
        hook.close()
    assert len(got.received) == 1
    body, headers, valid = got.received[0]
    assert valid
    assert headers[SIGNATURE_HEADER.lower()].startswith("sha256=")
    assert headers["content-type"] == "application/json"
    assert headers["x-lastgood-event"] == "watch.decision"
    doc = json.loads(body)
    assert doc["decision"] == "rollback"
    assert doc["version"] == 7
    assert doc["evidence"]["signals"][0]["e_value"] == 812.0
    assert hook.delivered == 1


def test_a_wrong_secret_fails_the_receivers_check_and_is_not_retried() -> None:
    with receiver() as got:
        hook = WebhookNotifier(got.url, secret="not-the-secret", sleep=lambda s: None)
        assert hook.deliver(NOTICE) is False  # 401: final
        hook.close()
    assert [valid for _, _, valid in got.received] == [False]
    assert hook.failed == 1


def test_server_errors_are_retried_then_delivered() -> None:
    waits: list[float] = []
    with receiver(script=[503, 500]) as got:
        hook = WebhookNotifier(got.url, secret=SECRET, retries=3, backoff_s=0.5,
                               sleep=waits.append)
        assert hook.deliver(NOTICE) is True
        hook.close()
    assert len(got.received) == 3
    assert waits == [0.5, 1.0]


def test_a_slow_receiver_times_out_and_never_raises() -> None:
    with receiver(delay_s=0.5) as got:
        hook = WebhookNotifier(got.url, secret=SECRET, timeout_s=0.1, retries=1,
                               sleep=lambda s: None)
        assert hook.deliver(NOTICE) is False
        hook.close()
    assert len(got.received) == 2


def test_an_unreachable_receiver_is_logged_never_raised(
        caplog: pytest.LogCaptureFixture) -> None:
    with receiver() as got:
        url = got.url
    hook = WebhookNotifier(url, secret=SECRET, retries=2, sleep=lambda s: None)
    with caplog.at_level(logging.WARNING, logger="lastgood.notify"):
        hook.notify(NOTICE)
        hook.close()
    assert hook.failed == 1
    assert "giving up" in caplog.text


def test_every_decision_is_a_log_line_too(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def notify(self, notice: Notice) -> None:
            raise RuntimeError("boom")

    with caplog.at_level(logging.INFO, logger="lastgood.notify"):
        FanOut([Broken(), LogNotifier()]).notify(NOTICE)
    lines = [r for r in caplog.records if "decision=rollback" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.ERROR  # critical notices log as errors
    assert "error rate 5.1%" in lines[0].getMessage()
