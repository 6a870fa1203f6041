"""The control plane on a real uvicorn on loopback: the server-sent audit stream delivers each
new event once, keeps an idle connection alive, resumes after Last-Event-ID, and is guarded."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from lastgood.api import ApiOptions
from lastgood.domain.access import Role
from tests.integration.api_harness import ApiHarness
from tests.net import free_port, wait_for

pytestmark = pytest.mark.slow




@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app on a uvicorn thread on 127.0.0.1; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: server.started, timeout_s=5, poll_s=0.01), "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def world(tmp_path: Path) -> ApiHarness:
    return ApiHarness(keys_dir=tmp_path / "keys",
                    options=ApiOptions(stream_poll_s=0.02, keepalive_s=0.2))


def messages(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """(kind, fields) per SSE message: kind is "comment" or the event name."""
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            yield "comment", {"text": line[1:].strip()}
        elif line == "":
            if fields:
                yield fields.get("event", "message"), fields
            fields = {}
        else:
            key, _, value = line.partition(":")
            fields[key] = value.lstrip(" ")


def test_new_audit_events_arrive_once_each_with_keepalives_between(world: ApiHarness) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['viewer']}"}
    with serving(world.app) as url, httpx.Client(base_url=url, timeout=10) as http, \
            http.stream("GET", "/api/v1/stream", headers=headers) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        got = messages(stream.iter_lines())
        kind, fields = next(got)
        assert fields == {"retry": "2000"}  # how long a browser waits before reconnecting
        kind, fields = next(got)
        assert (kind, fields["text"]) == ("comment", "keepalive")  # idle: nothing but this
        for owner in ("first", "second"):
            world.services.access.create_token(owner, role=Role.VIEWER, actor="root")
        seen = []
        while len(seen) < 2:
            kind, fields = next(got)
            if kind == "audit":
                seen.append(json.loads(fields["data"]))
                assert fields["id"] == str(seen[-1]["seq"])
        assert [e["after"]["owner"] for e in seen] == ["first", "second"]
        assert {e["action"] for e in seen} == {"token.created"}
        kind, fields = next(got)
        assert (kind, fields["text"]) == ("comment", "keepalive")


def test_a_reconnecting_client_resumes_after_its_last_event(world: ApiHarness) -> None:
    head = world.services.audit.head()
    world.services.access.create_token("missed", role=Role.VIEWER, actor="root")
    headers = {"Authorization": f"Bearer {world.tokens['viewer']}",
               "Last-Event-ID": str(head)}
    with serving(world.app) as url, httpx.Client(base_url=url, timeout=10) as http, \
            http.stream("GET", "/api/v1/stream", headers=headers) as stream:
        _, fields = next(m for m in messages(stream.iter_lines()) if m[0] == "audit")
        assert json.loads(fields["data"])["after"]["owner"] == "missed"


def test_the_stream_needs_a_token_and_a_known_model(world: ApiHarness) -> None:
    with serving(world.app) as url, httpx.Client(base_url=url, timeout=10) as http:
        r = http.get("/api/v1/stream")
        assert (r.status_code, r.json()["error"]) == (401, "Unauthorized")
        r = http.get("/api/v1/stream", params={"model": "nope"},
                     headers={"Authorization": f"Bearer {world.tokens['viewer']}"})
        assert (r.status_code, r.json()["error"]) == (404, "NotFound")
