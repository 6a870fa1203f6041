"""The control plane through its real ASGI app: authentication and roles on every route, the
rollback story over HTTP, tokens and keys, and the JSON error shape."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lastgood.services.views import event_view, version_view
from tests.helpers_models import IRIS_SCHEMA, three_iris_skops
from tests.integration.api_harness import ENV, MODEL, ApiHarness


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return three_iris_skops(tmp_path_factory.mktemp("models"))


@pytest.fixture
def world(tmp_path: Path) -> ApiHarness:
    return ApiHarness(keys_dir=tmp_path / "keys")


def story(world: ApiHarness, artifacts: list[Path]) -> None:
    """v1 and v2 deployed and verified, v3 live and not verified."""
    for i, path in enumerate(artifacts, start=1):
        assert world.upload(path, tag=f"v{i}.0", metrics={"accuracy": 0.9}).status_code == 201
    for n in (1, 2, 3):
        world.clock.advance(60)
        r = world.as_("operator", "POST", f"/models/{MODEL}/deploy",
                      json={"version": n, "env": ENV, "reason": f"release v{n}"})
        assert r.status_code == 200, r.text
        if n < 3:
            r = world.as_("operator", "POST", f"/models/{MODEL}/verify",
                          json={"env": ENV, "baseline": {"p95_ms": 41, "error_rate": 0.002},
                                "reason": "bake passed"})
            assert r.status_code == 200, r.text


def api_routes(world: ApiHarness) -> list[tuple[str, str]]:
    """Every documented operation, path parameters filled in."""
    paths = world.app.openapi()["paths"]
    return [(method.upper(), re.sub(r"\{[^}]+\}", "x", path))
            for path, ops in paths.items() for method in ops]


def test_every_route_refuses_a_missing_or_bad_token_and_audits_it(world: ApiHarness) -> None:
    routes = api_routes(world)
    assert len(routes) >= 25
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer lgt_forged"}, {"Authorization": "Basic x"}):
            r = world.call(method, path, headers=headers)
            assert r.status_code == 401, (method, path, r.text)
            assert r.json()["error"] == "Unauthorized"
            assert r.headers["www-authenticate"] == "Bearer"
    refused = [e for e in world.events() if e[0] == "auth.refused"]
    assert len(refused) == 3 * len(routes)
    assert {e[1:] for e in refused} == {("anonymous", "refused")}


def test_a_viewer_reads_but_changes_nothing(world: ApiHarness, artifacts: list[Path]) -> None:
    story(world, artifacts)
    for path in ("/models", f"/models/{MODEL}/versions", f"/models/{MODEL}/versions/v1.0",
                 "/environments", f"/environments/{ENV}", f"/models/{MODEL}/status?env={ENV}",
                 f"/models/{MODEL}/history?env={ENV}", f"/models/{MODEL}/timeline?env={ENV}",
                 "/events", "/audit/verify", "/audit/export", "/archives", "/operations",
                 "/keys", "/whoami"):
        assert world.as_("viewer", "GET", path).status_code == 200, path
    before = len(world.events())
    denied = [("POST", f"/models/{MODEL}/rollback", {"env": ENV, "reason": "x"}),
              ("POST", f"/models/{MODEL}/deploy", {"version": 1, "env": ENV, "reason": "x"}),
              ("POST", f"/models/{MODEL}/verify", {"env": ENV, "baseline": {"a": 1.0},
                                                  "reason": "x"}),
              ("POST", f"/models/{MODEL}/versions/1/retire", {"reason": "x"}),
              ("POST", "/operations/resume", {}), ("PUT", f"/environments/{ENV}", {}),
              ("POST", "/tokens", {"owner": "x", "role": "admin"}), ("GET", "/tokens", None)]
    for method, path, body in denied:
        r = world.as_("viewer", method, path, json=body)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"] == "Forbidden"
    refused = world.events()[before:]
    assert len(refused) == len(denied)
    assert all(actor == "vic" and outcome == "refused" for _, actor, outcome in refused)
    assert refused[0][0] == "rollback.refused"
    status = world.as_("viewer", "GET", f"/models/{MODEL}/status?env={ENV}").json()
    assert status["desired"]["version"] == 3  # nothing moved


def test_operators_cannot_manage_tokens_or_policies(world: ApiHarness) -> None:
    for method, path, body in (("POST", "/tokens", {"owner": "x", "role": "admin"}),
                               ("PUT", f"/environments/{ENV}", {"require_signature": False}),
                               ("POST", "/keys", {"name": "k", "public_key": "A" * 43 + "="})):
        r = world.as_("operator", method, path, json=body)
        assert (r.status_code, r.json()["error"]) == (403, "Forbidden")
        assert "admin" in r.json()["message"]


def test_the_rollback_story_over_http(world: ApiHarness, artifacts: list[Path]) -> None:
    story(world, artifacts)
    plan = world.as_("viewer", "POST", f"/models/{MODEL}/rollback",
                     json={"env": ENV, "dry_run": True}).json()
    assert (plan["dry_run"], plan["live"], plan["target"]) == (True, 3, 2)
    world.clock.advance(60)
    op = world.as_("operator", "POST", f"/models/{MODEL}/rollback",
                   json={"env": ENV, "reason": "p95 doubled"}).json()
    assert (op["phase"], op["from_version"], op["target_version"]) == ("succeeded", 3, 2)
    assert op["actor"] == "olga"
    status = world.as_("viewer", "GET", f"/models/{MODEL}/status", params={"env": ENV}).json()
    assert (status["desired"]["version"], status["version"]["status"]) == (2, "active")
    history = world.as_("viewer", "GET", f"/models/{MODEL}/history?env={ENV}").json()
    assert [d["version"] for d in history] == [2, 3, 2, 1]
    assert history[1]["end"] == "rolled_back"
    timeline = world.as_("viewer", "GET", f"/models/{MODEL}/timeline?env={ENV}").json()
    assert next(o["kind"] for o in timeline["operations"]) == "rollback"
    assert len(timeline["deployments"]) == 4
    assert world.as_("viewer", "GET", f"/operations/{op['id']}").json() == op
    versions = world.as_("viewer", "GET", f"/models/{MODEL}/versions").json()
    assert versions[0]["status"] == "quarantined"
    actors = {e[1] for e in world.events() if e[0].startswith(("deploy", "operation"))}
    assert actors == {"olga"}


def test_events_page_with_after_seq_and_the_export_is_the_chain(
        world: ApiHarness, artifacts: list[Path]) -> None:
    story(world, artifacts)
    everything = world.as_("viewer", "GET", "/events", params={"limit": 10_000}).json()
    first = world.as_("viewer", "GET", "/events", params={"limit": 5}).json()
    rest = world.as_("viewer", "GET", "/events",
                     params={"after_seq": first[-1]["seq"], "limit": 10_000}).json()
    assert first + rest == everything
    assert everything == [event_view(e) for e in world.services.registry.events()]
    export = world.as_("viewer", "GET", "/audit/export")
    assert export.headers["content-type"].startswith("application/x-ndjson")
    assert export.text.splitlines() == list(world.services.audit.export_lines())
    chain = world.as_("viewer", "GET", "/audit/verify").json()
    assert chain == {"ok": True, "checked": len(everything), "first_bad": None, "problem": ""}
    only = world.as_("viewer", "GET", "/events", params={"model": MODEL, "env": ENV}).json()
    assert only
    assert all(e["model"] == MODEL and e["env"] == ENV for e in only)


def test_archives_are_listed_shown_and_downloaded_verified(
        world: ApiHarness, artifacts: list[Path]) -> None:
    story(world, artifacts)
    world.as_("operator", "POST", f"/models/{MODEL}/rollback", json={"env": ENV, "reason": "x"})
    [listed] = world.as_("viewer", "GET", "/archives", params={"model": MODEL}).json()
    shown = world.as_("viewer", "GET", f"/archives/{listed['id']}").json()
    assert shown["members"] == sorted(listed["manifest"]["files"])
    tar = world.as_("viewer", "GET", f"/archives/{listed['id']}/download")
    assert tar.headers["content-type"] == "application/x-tar"
    assert hashlib.sha256(tar.content).hexdigest() == listed["sha256"] == \
        tar.headers["x-content-sha256"]
    with tarfile.open(fileobj=io.BytesIO(tar.content)) as bundle:
        assert "manifest.json" in bundle.getnames()
    world.store.corrupt(listed["sha256"])
    r = world.as_("viewer", "GET", f"/archives/{listed['id']}/download")
    assert (r.status_code, r.json()["error"]) == (500, "IntegrityError")


def test_registration_uploads_files_and_folders(world: ApiHarness, artifacts: list[Path],
                                                tmp_path: Path) -> None:
    schema = {"inputs": [{"name": c.name, "dtype": c.dtype} for c in IRIS_SCHEMA.inputs]}
    r = world.upload(artifacts[0], tag="v1.0", metrics={"accuracy": 0.93}, schema=schema,
                     provenance={"git_sha": "abc"}, labels=["nightly"])
    assert r.status_code == 201, r.text
    view = r.json()
    notes = view.pop("notes")  # what registration noticed, beside the version itself
    assert view == version_view(world.services.registry.show(MODEL, 1))
    assert any("golden" in n for n in notes)
    assert view["files"][0]["path"] == artifacts[0].name
    assert view["created_by"] == "olga"
    with artifacts[0].open("rb") as model, io.BytesIO(b'{"note": 1}') as extra:
        r = world.as_("operator", "POST", f"/models/{MODEL}/versions", data={
            "meta": json.dumps({"flavor": "sklearn", "directory": True})}, files=[
            ("file", ("model/model.skops", model, "application/octet-stream")),
            ("file", ("model/notes.json", extra, "application/json"))])
    assert r.status_code == 201, r.text
    assert sorted(f["path"] for f in r.json()["files"]) == ["model/model.skops",
                                                            "model/notes.json"]


@pytest.mark.parametrize("name", ["../escape.skops", "/etc/passwd", "a/../../b", "a\\b",
                                  "a//b", "./x", "x/", "\x01bad", ".."])
def test_artifact_names_that_leave_the_upload_are_refused(
        world: ApiHarness, tmp_path: Path, name: str) -> None:
    r = world.as_("operator", "POST", f"/models/{MODEL}/versions", data={"meta": "{}"},
                  files=[("file", (name, b"weights", "application/octet-stream"))])
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidInput"
    assert world.services.registry.models() == []
    assert not (tmp_path.parent / "escape.skops").exists()


def test_bad_metadata_and_bad_json_are_refused(world: ApiHarness, artifacts: list[Path]) -> None:
    for meta in ("{not json", '{"tag": 3}', '{"metrics": {"a": "NaN"}}', '{"unknown": 1}',
                 '{"schema": {"inputs": "x"}}', '["list"]'):
        with artifacts[0].open("rb") as f:
            r = world.as_("operator", "POST", f"/models/{MODEL}/versions", data={"meta": meta},
                          files=[("file", ("m.skops", f, "application/octet-stream"))])
        assert (r.status_code, r.json()["error"]) == (400, "InvalidInput"), (meta, r.text)
    path = f"/models/{MODEL}/deploy"
    for body in (b"{bad", b"[]", b'{"version": 1}', b'{"version": 1, "env": "p", "x": 1}',
                 b'{"version": -1, "env": "p"}', b'{"version": 99999999999, "env": "p"}'):
        r = world.as_("operator", "POST", path, content=body,
                      headers={"Content-Type": "application/json"})
        assert (r.status_code, r.json()["error"]) == (422, "InvalidInput"), (body, r.text)
    r = world.as_("operator", "POST", f"/models/{MODEL}/verify", content=b'{"env": "p", '
                  b'"baseline": {"p95": NaN}}', headers={"Content-Type": "application/json"})
    assert r.status_code == 422


def test_unknown_things_are_404_with_a_fix(world: ApiHarness, artifacts: list[Path]) -> None:
    story(world, artifacts)
    for path in ("/models/nope/versions", f"/models/{MODEL}/versions/9",
                 f"/models/{MODEL}/versions/v9.9", "/environments/nope", "/operations/op-x",
                 "/archives/arc-nope", f"/models/{MODEL}/status?env=nope", "/nothing/here"):
        r = world.as_("admin", "GET", path)
        assert (r.status_code, r.json()["error"]) == (404, "NotFound"), path
        assert r.json()["fix"]
    r = world.as_("admin", "DELETE", "/tokens/nope")
    assert r.status_code == 404


@pytest.mark.parametrize("archive_id", ["..%2F..%2Fetc%2Fpasswd", "a%20b", "%2e%2e", "x%00"])
def test_archive_ids_cannot_point_outside(world: ApiHarness, archive_id: str) -> None:
    for suffix in ("", "/download"):
        r = world.as_("viewer", "GET", f"/archives/{archive_id}{suffix}")
        assert r.status_code in (404, 422), r.text
        assert r.json()["error"] in ("InvalidInput", "NotFound")


def test_oversized_bodies_are_413(tmp_path: Path, artifacts: list[Path]) -> None:
    from lastgood.api import ApiOptions

    world = ApiHarness(keys_dir=tmp_path, options=ApiOptions(max_body_bytes=1024,
                                                           max_upload_bytes=4096))
    big = {"env": ENV, "reason": "x" * 2000}
    r = world.as_("operator", "POST", f"/models/{MODEL}/rollback", json=big)
    assert (r.status_code, r.json()["error"]) == (413, "PayloadTooLarge")

    async def chunks() -> AsyncIterator[bytes]:  # streamed: no Content-Length
        yield b'{"env": "production", "reason": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'

    r = world.as_("operator", "POST", f"/models/{MODEL}/rollback", content=chunks(),
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    r = world.upload(artifacts[0])  # ~9 KB, over the 4 KB upload limit
    assert r.status_code == 413
    assert world.services.registry.models() == []
    refused = [e for e in world.events() if e[0] == "request.refused"]
    assert refused == [("request.refused", "anonymous", "refused")] * 3


def test_tokens_are_shown_once_and_revoked_for_good(world: ApiHarness) -> None:
    r = world.as_("admin", "POST", "/tokens", json={"owner": "ci-bot", "role": "operator",
                                                    "expires_in_s": 3600})
    assert r.status_code == 201
    created = r.json()
    secret = created.pop("token")
    listed = world.as_("admin", "GET", "/tokens").json()
    assert created in listed
    assert secret not in json.dumps(listed)
    assert world.call("GET", "/api/v1/whoami", token=secret).json() == {
        "owner": "ci-bot", "role": "operator"}
    world.clock.advance(3601)
    assert world.call("GET", "/api/v1/whoami", token=secret).status_code == 401
    other = world.as_("admin", "POST", "/tokens", json={"owner": "x", "role": "viewer"}).json()
    revoked = world.as_("admin", "DELETE", f"/tokens/{other['id']}").json()
    assert revoked["revoked_at"] is not None
    r = world.call("GET", "/api/v1/whoami", token=other["token"])
    assert "revoked" in r.json()["message"]
    actions = [e[0] for e in world.events()]
    assert actions.count("token.created") == 5
    assert "token.revoked" in actions


def test_keys_and_signature_policy_are_admin_settings(world: ApiHarness) -> None:
    public = world.services.ports.keyring.create("release")
    r = world.as_("admin", "POST", "/keys", json={"name": "release", "public_key": public})
    assert (r.status_code, r.json()["fingerprint"]) == (201, r.json()["fingerprint"])
    assert world.as_("admin", "POST", "/keys", json={"name": "release",
                                                     "public_key": public}).status_code == 409
    bad = world.as_("admin", "POST", "/keys", json={"name": "x", "public_key": "bm90IGEga2V5"})
    assert (bad.status_code, bad.json()["error"]) == (422, "InvalidInput")  # not 32 bytes
    env = world.as_("admin", "PUT", f"/environments/{ENV}",
                    json={"require_signature": True, "trusted_keys": ["release"]}).json()
    assert (env["require_signature"], env["trusted_keys"]) == (True, ["release"])
    assert [k["name"] for k in world.as_("viewer", "GET", "/keys").json()] == ["release"]


def test_every_error_is_json_and_docs_load_nothing_from_a_cdn(world: ApiHarness) -> None:
    r = world.as_("admin", "PATCH", "/models")
    assert (r.status_code, r.json()["error"]) == (405, "InvalidInput")
    assert world.call("GET", "/docs").status_code == 404
    assert world.call("GET", "/redoc").status_code == 404
    spec = world.call("GET", "/openapi.json")
    assert spec.status_code == 200
    assert "cdn" not in spec.text.lower()
    assert spec.json()["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_refused_changes_are_audited_once_with_the_caller(world: ApiHarness,
                                                          artifacts: list[Path]) -> None:
    story(world, artifacts)
    before = len(world.events())
    assert world.as_("operator", "POST", f"/models/{MODEL}/versions/1/retire",
                     json={"reason": ""}).status_code == 422  # the schema: a reason
    assert world.as_("operator", "POST", f"/models/{MODEL}/versions", data={"meta": "{}"},
                     files=[("file", ("../x", b"w", "application/octet-stream"))]
                     ).status_code == 400
    assert world.as_("operator", "POST", f"/models/{MODEL}/verify",
                     json={"env": ENV, "baseline": "fast"}).status_code == 422
    assert world.as_("operator", "POST", f"/models/{MODEL}/deploy",
                     json={"version": 1, "env": ENV}).status_code == 422  # no reason
    assert world.as_("viewer", "GET", "/models/nope/versions").status_code == 404  # a read
    refused = world.events()[before:]
    assert refused == [("retire.refused", "olga", "refused"),
                       ("register.refused", "olga", "refused"),
                       ("verify.refused", "olga", "refused"),
                       ("deploy.refused", "olga", "refused")]


def test_authentication_comes_before_parsing_the_body(world: ApiHarness) -> None:
    r = world.call("POST", f"/api/v1/models/{MODEL}/deploy", content=b"{not json",
                   headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["error"]) == (401, "Unauthorized")
    assert world.events()[-1] == ("auth.refused", "anonymous", "refused")
