"""The CLI's remote mode: the same methods as the local services, over the control plane's API.

With LASTGOOD_URL (and LASTGOOD_TOKEN) set, `open_remote(settings)` stands in for the services:
each call is one HTTP request, each JSON view is parsed back into the domain record the local
call would return (`services.views_parse`), and each error body `{"error", "message", "fix"}` is
raised as the same class of lastgood's error tree, so output and exit codes match a local run.
httpx errors never leave this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from lastgood.domain import errors as errors_module
from lastgood.domain.access import ApiToken, Role, SigningKey, check_key_name, signing_message
from lastgood.domain.archives import ArchiveRecord
from lastgood.domain.audit import ChainReport, Event
from lastgood.domain.deployments import Deployment, Environment
from lastgood.domain.errors import (
    IdenticalContent,
    IntegrityError,
    InvalidInput,
    LastGoodError,
    NoEligibleTarget,
    NotFound,
    PreconditionFailed,
    TransientError,
)
from lastgood.domain.history_view import HistoryView, view_from_json
from lastgood.domain.operations import Operation, RollbackCause
from lastgood.domain.versions import ArtifactFile, Manifest, Model, Version
from lastgood.ports import KeyRing, Progress
from lastgood.remote.bodies import environment_body, register_meta
from lastgood.services.access import IssuedToken
from lastgood.services.archive import unpack
from lastgood.services.deployments import PhaseHook, RollbackPlan, Status
from lastgood.services.http_statuses import class_for_status
from lastgood.services.quarantine import Quarantine, lift_reason
from lastgood.services.registry import RegisterRequest, Registration, artifact_files
from lastgood.services.views_parse import (
    parse_archive,
    parse_chain,
    parse_deployment,
    parse_environment,
    parse_event,
    parse_key,
    parse_model,
    parse_operation,
    parse_plan,
    parse_quarantine,
    parse_status,
    parse_token,
    parse_version,
)

ERROR_CLASSES: dict[str, type[LastGoodError]] = {
    name: cls for name, cls in vars(errors_module).items()
    if isinstance(cls, type) and issubclass(cls, LastGoodError)}
SLOW = httpx.Timeout(connect=10.0, read=900.0, write=900.0, pool=10.0)  # deploys run checks
PAGE = 1000


def q(name: str | int) -> str:
    """A path segment, quoted so any name stays one segment."""
    return quote(str(name), safe="")


def error_from(response: httpx.Response) -> LastGoodError:
    """The lastgood error an API error response stands for."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    message = str(body.get("message") or f"the control plane answered HTTP "
                  f"{response.status_code}")
    fix, details = str(body.get("fix") or ""), body.get("details")
    details = details if isinstance(details, dict) else {}
    # By name first (what the control plane raised), else by status from the faces' one table
    cls = ERROR_CLASSES.get(str(body.get("error"))) or class_for_status(response.status_code)
    if cls is NoEligibleTarget:
        return NoEligibleTarget(message, fix=fix, refusals=details.get("refusals", ()))
    if cls is IdenticalContent:  # its fields are keywords of their own, like the refusals above
        version = details.get("version")
        return IdenticalContent(message, fix=fix, digest=str(details.get("digest") or ""),
                                version=version if isinstance(version, int) else 0)
    return cls(message, fix=fix, details=details)


class RemoteClient:
    """One control plane: its URL and the bearer token every request carries."""

    def __init__(self, url: str, token: str, *, transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url + "/api/v1", headers=headers,
                                  timeout=SLOW, transport=transport)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; raise the lastgood error of a failure."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise TransientError(f"cannot reach the control plane at {self.url}: "
                                 f"{type(exc).__name__}",
                                 fix="check LASTGOOD_URL and that `lastgood server` runs "
                                     "there") from exc
        if response.is_error:
            raise error_from(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs).json()


class RemoteRegistry:
    def __init__(self, client: RemoteClient, keyring: KeyRing) -> None:
        self._c, self._keyring = client, keyring

    def register(self, req: RegisterRequest, *, actor: str,
                 progress: Progress | None = None) -> Version:
        return self.register_noted(req, actor=actor, progress=progress).version

    def register_noted(self, req: RegisterRequest, *, actor: str,
                       progress: Progress | None = None) -> Registration:
        files = artifact_files(req.path)
        meta = register_meta(req, directory=req.path.is_dir())
        if req.sign_with is not None:
            meta |= {"signature": self._sign(req.model, files, req.sign_with),
                     "signed_by": req.sign_with}
        with ExitStack() as stack:
            parts = [("file", (name, stack.enter_context(local.open("rb")),
                               "application/octet-stream")) for name, local in files]
            body = self._c.json("POST", f"/models/{q(req.model)}/versions", files=parts,
                                data={"meta": _dumps(meta)})
        return Registration(parse_version(body), tuple(body.get("notes") or ()))

    def _sign(self, model: str, files: list[tuple[str, Path]], key: str) -> str:
        """Sign the digest the server will compute, with a key kept on this machine."""
        recorded = {k.name: k for k in RemoteSigning(self._c, self._keyring).public_keys()}
        if key not in recorded:
            raise NotFound(f"the control plane knows no signing key {key!r}",
                           fix="create it with `lastgood key create NAME`")
        if self._keyring.public_key(key) != recorded[key].public_key:
            raise PreconditionFailed(f"the local private key {key!r} does not match the public "
                                     "key the control plane records under that name",
                                     fix="sign with the key file created for this registry")
        manifest = Manifest(tuple(ArtifactFile(name, *_hash(local)) for name, local in files))
        return self._keyring.sign(key, signing_message(model, manifest.digest))

    def models(self) -> list[Model]:
        return [parse_model(m) for m in self._c.json("GET", "/models")]

    def versions(self, model: str, *, limit: int | None = None) -> list[Version]:
        params = {"limit": limit} if limit is not None else {}
        return [parse_version(v) for v in
                self._c.json("GET", f"/models/{q(model)}/versions", params=params)]

    def show(self, model: str, ref: str | int) -> Version:
        return parse_version(self._c.json("GET", f"/models/{q(model)}/versions/{q(ref)}"))

    def events(self, *, model: str | None = None, env: str | None = None,
               limit: int | None = None, after_seq: int = 0) -> list[Event]:
        found: list[Event] = []
        while limit is None or len(found) < limit:
            size = PAGE if limit is None else min(PAGE, limit - len(found))
            params = _params(model=model, env=env, after_seq=after_seq, limit=size)
            page = [parse_event(e) for e in self._c.json("GET", "/events", params=params)]
            found += page
            if len(page) < size:
                break
            after_seq = page[-1].seq
        return found

    def retire(self, model: str, ref: str | int, *, reason: str, actor: str) -> Version:
        return parse_version(self._c.json("POST", f"/models/{q(model)}/versions/{q(ref)}/retire",
                                          json={"reason": reason}))


class RemoteDeployments:
    def __init__(self, client: RemoteClient) -> None:
        self._c = client

    def environments(self) -> list[Environment]:
        return [parse_environment(e) for e in self._c.json("GET", "/environments")]

    def environment(self, name: str) -> Environment:
        return parse_environment(self._c.json("GET", f"/environments/{q(name)}"))

    def configure(self, name: str, *, changes: Mapping[str, Any], actor: str,
                  create: bool = True) -> Environment:
        return parse_environment(self._c.json("PUT", f"/environments/{q(name)}",
                                              json=environment_body(changes)))

    def deploy(self, model: str, ref: str | int, *, env: str, reason: str | None, actor: str,
               force: bool = False, on_phase: PhaseHook | None = None,
               dry_run: bool = False) -> Operation:
        reason = reason or ("dry run" if dry_run else "")
        body = {"version": str(ref), "env": env, "reason": reason, "force": force,
                "dry_run": dry_run}
        return parse_operation(self._c.json("POST", f"/models/{q(model)}/deploy", json=body))

    def plan_rollback(self, model: str, *, env: str, to: str | int | None = None,
                      force: bool = False, actor: str = "") -> RollbackPlan:
        body = {"env": env, "to": _ref(to), "force": force, "dry_run": True}
        return parse_plan(self._c.json("POST", f"/models/{q(model)}/rollback", json=body))

    def rollback(self, model: str, *, env: str, reason: str | None, actor: str,
                 to: str | int | None = None, force: bool = False,
                 trigger: Mapping[str, Any] | None = None,
                 on_phase: PhaseHook | None = None,
                 cause: RollbackCause | str = RollbackCause.MODEL,
                 plan: RollbackPlan | None = None) -> Operation:
        if plan is not None and plan.target is not None:
            to = plan.target.version  # the API pins the confirmed version; it checks again
        body = {"env": env, "reason": reason or "", "to": _ref(to), "force": force,
                "cause": str(cause)}
        return parse_operation(self._c.json("POST", f"/models/{q(model)}/rollback", json=body))

    def resume(self, *, model: str | None = None, env: str | None = None) -> list[Operation]:
        return [parse_operation(o) for o in self._c.json(
            "POST", "/operations/resume", json={"model": model, "env": env})]

    def verify(self, model: str, *, env: str, baseline: Mapping[str, float], reason: str | None,
               actor: str, window_start: datetime | None = None) -> Deployment:
        body = {"env": env, "baseline": dict(baseline), "reason": reason or ""}
        return parse_deployment(self._c.json("POST", f"/models/{q(model)}/verify", json=body))

    def status(self, model: str, *, env: str) -> Status:
        return parse_status(self._c.json("GET", f"/models/{q(model)}/status",
                                         params={"env": env}))

    def history(self, model: str, *, env: str) -> list[Deployment]:
        return [parse_deployment(d) for d in
                self._c.json("GET", f"/models/{q(model)}/history", params={"env": env})]

    def operation(self, op_id: str) -> Operation:
        return parse_operation(self._c.json("GET", f"/operations/{q(op_id)}"))

    def operations(self, *, model: str | None = None, env: str | None = None,
                   limit: int = 50) -> list[Operation]:
        return [parse_operation(o) for o in self._c.json(
            "GET", "/operations", params=_params(model=model, env=env, limit=limit))]


class RemoteQuarantine:
    def __init__(self, client: RemoteClient) -> None:
        self._c = client

    def list(self, *, model: str | None = None) -> list[Quarantine]:
        return [parse_quarantine(d) for d in self._c.json(
            "GET", "/quarantine", params=_params(model=model))]

    def lift(self, model: str, ref: str | int, *, reason: str | None, actor: str) -> Version:
        return parse_version(self._c.json(
            "POST", f"/models/{q(model)}/versions/{q(ref)}/quarantine/lift",
            json={"reason": lift_reason(reason)}))


class RemoteArchives:
    def __init__(self, client: RemoteClient) -> None:
        self._c = client

    def list(self, *, model: str | None = None, env: str | None = None) -> list[ArchiveRecord]:
        return [parse_archive(a) for a in
                self._c.json("GET", "/archives", params=_params(model=model, env=env))]

    def show(self, archive_id: str) -> tuple[ArchiveRecord, dict[str, bytes]]:
        record = parse_archive(self._c.json("GET", f"/archives/{q(archive_id)}"))
        return record, unpack(self._download(record))

    def export(self, archive_id: str, dest: Path) -> ArchiveRecord:
        record = parse_archive(self._c.json("GET", f"/archives/{q(archive_id)}"))
        if dest.exists() and dest.is_dir():
            dest = dest / f"{record.id}.tar"
        if not dest.parent.exists():
            raise InvalidInput(f"folder {str(dest.parent)!r} does not exist",
                               fix="create it or choose another destination")
        data = self._download(record)
        unpack(data)
        tmp = dest.with_suffix(dest.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(dest)
        return record

    def _download(self, record: ArchiveRecord) -> bytes:
        data = self._c.call("GET", f"/archives/{q(record.id)}/download").content
        if hashlib.sha256(data).hexdigest() != record.sha256:
            raise IntegrityError(f"archive {record.id} arrived with another sha256",
                                 fix="download it again; check what sits between you and the "
                                     "control plane")
        return data


class RemoteAudit:
    def __init__(self, client: RemoteClient) -> None:
        self._c = client

    def verify(self) -> ChainReport:
        return parse_chain(self._c.json("GET", "/audit/verify"))

    def export_lines(self) -> Iterator[str]:
        yield from self._c.call("GET", "/audit/export").text.splitlines()


class RemoteAccess:
    def __init__(self, client: RemoteClient) -> None:
        self._c = client

    def create_token(self, owner: str, *, role: Role, actor: str,
                     expires_in_s: float | None = None) -> IssuedToken:
        body = self._c.json("POST", "/tokens", json={"owner": owner, "role": role.label,
                                                     "expires_in_s": expires_in_s})
        return IssuedToken(parse_token(body), body["token"])

    def tokens(self) -> list[ApiToken]:
        return [parse_token(t) for t in self._c.json("GET", "/tokens")]

    def revoke_token(self, token_id: str, *, actor: str) -> ApiToken:
        return parse_token(self._c.json("DELETE", f"/tokens/{q(token_id)}"))


class RemoteSigning:
    def __init__(self, client: RemoteClient, keyring: KeyRing) -> None:
        self._c, self._keyring = client, keyring

    def create_key(self, name: str, *, actor: str) -> SigningKey:
        """The private key stays in this machine's LASTGOOD_HOME; the server gets the public."""
        public = self._keyring.create(check_key_name(name))
        try:
            return parse_key(self._c.json("POST", "/keys",
                                          json={"name": name, "public_key": public}))
        except LastGoodError:
            self._keyring.discard(name)  # refused: leave no orphan key
            raise

    def public_keys(self) -> list[SigningKey]:
        return [parse_key(k) for k in self._c.json("GET", "/keys")]


class RemoteHistory:
    def __init__(self, client: RemoteClient) -> None:
        self._c = client

    def view(self, model: str, *, env: str, span: timedelta, buckets: int = 1500) -> HistoryView:
        found = self._c.json("GET", f"/models/{q(model)}/metrics/history",
                             params={"env": env, "since": f"{int(span.total_seconds())}s",
                                     "buckets": buckets})
        try:
            return view_from_json(found)
        except (KeyError, TypeError, ValueError) as exc:
            raise TransientError(f"the control plane's history answer is garbage ({exc})",
                                 fix="run the same lastgood version on both ends") from exc


class RemoteControlPlane:
    """Everything the CLI calls, against the control plane at `url`."""

    def __init__(self, url: str, token: str, *, keyring: KeyRing,
                 transport: httpx.BaseTransport | None = None) -> None:
        client = RemoteClient(url, token, transport=transport)
        self.registry = RemoteRegistry(client, keyring)
        self.deployments = RemoteDeployments(client)
        self.archives = RemoteArchives(client)
        self.quarantine = RemoteQuarantine(client)
        self.audit = RemoteAudit(client)
        self.access = RemoteAccess(client)
        self.signing = RemoteSigning(client, keyring)
        self.history = RemoteHistory(client)


def _hash(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as source:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _ref(ref: str | int | None) -> str | None:
    return None if ref is None else str(ref)


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, default=str)
