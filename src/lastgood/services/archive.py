"""Forensic bundles: the failed state kept as an immutable tar with a sha256 manifest."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from lastgood.domain import codec
from lastgood.domain.archives import ArchiveRecord
from lastgood.domain.compatibility import HostFacts
from lastgood.domain.errors import IntegrityError, InvalidInput, LastGoodError
from lastgood.domain.history import MAX_SPAN
from lastgood.domain.history_view import view_to_json
from lastgood.domain.operations import Candidate, Operation
from lastgood.domain.versions import Version
from lastgood.ports import ArtifactStore, EvidenceSource, UnitOfWork, UnitOfWorkFactory
from lastgood.services.history import read_unchecked

BUNDLE_FORMAT = "lastgood-archive/1"
HISTORY_BEFORE = timedelta(hours=1)  # history kept in the bundle before the failed deploy


@dataclass(frozen=True, slots=True)
class Bundle:
    """A built tar and the JSON manifest of its members' sha256s."""

    data: bytes
    manifest: Mapping[str, Any]


def _json(obj: Any) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True, default=str).encode()


def pack(members: Mapping[str, bytes], *, at: datetime, header: Mapping[str, Any]) -> Bundle:
    """A deterministic tar (sorted names, fixed mtimes) whose manifest lists every member."""
    files = {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
             for name, data in sorted(members.items())}
    manifest = {"format": BUNDLE_FORMAT, "created_at": at.isoformat(), **header, "files": files}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in [("manifest.json", _json(manifest)), *sorted(members.items())]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), int(at.timestamp()), 0o444
            tar.addfile(info, io.BytesIO(data))
    return Bundle(buf.getvalue(), manifest)


def unpack(data: bytes) -> dict[str, bytes]:
    """Members of a bundle after checking each against the manifest; IntegrityError otherwise."""
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            if handle is not None:
                members[info.name] = handle.read()
    manifest = json.loads(members.pop("manifest.json", b"{}"))
    for name, meta in manifest.get("files", {}).items():
        if hashlib.sha256(members.get(name, b"")).hexdigest() != meta["sha256"]:
            raise IntegrityError(f"archive member {name!r} does not match its manifest",
                                 fix="the bundle was altered; use a copy from backup")
    return members


def build_bundle(uow: UnitOfWork, op: Operation, *, at: datetime, host: HostFacts,
                 evidence: EvidenceSource) -> Bundle:
    """Everything about the failed deployment that a review will ask for."""
    assert op.from_version is not None, "a rollback always starts from a live version"
    failed = uow.versions.get(op.model, op.from_version)
    history = uow.deployments.history(op.model, op.env)
    failed_dep = next((d for d in history if d.version == op.from_version), None)
    since = failed_dep.started_at if failed_dep else op.created_at
    incident = [e for e in uow.events.list(model=op.model, env=op.env) if e.at >= since]
    target = uow.versions.get(op.model, op.target_version) if op.target_version else None
    baseline = next((d.verified for d in history
                     if d.version == op.target_version and d.verified), None)
    members = {
        "failed_version.json": _json(codec.version_to_json(failed)),
        "deployment.json": _json(codec.deployment_to_json(failed_dep) if failed_dep else None),
        "trigger.json": _json({"reason": op.reason, "trigger": dict(op.trigger),
                               "target": op.target_version,
                               "target_baseline": dict(baseline.baseline) if baseline else None,
                               "target_version": codec.version_to_json(target, full=False)
                               if target else None}),
        "checks.json": _json([codec.candidate_to_json(c) for c in op.candidates]),
        "environment.json": _json({"python": host.python, "platform": host.platform,
                                   "hostname": host.hostname, "packages": dict(host.packages),
                                   "memory_mb": host.resources.memory_mb,
                                   "cpus": host.resources.cpus}),
        "events.jsonl": b"\n".join(json.dumps(codec.event_to_json(e), default=str).encode()
                                   for e in incident),
        "samples.json": _json(dict(evidence.samples(op.model, op.env, op.from_version))),
        "history.json": _json(incident_history(uow, op, failed_since=since, at=at)),
    }
    header = {"model": op.model, "env": op.env, "failed_version": op.from_version,
              "operation_id": op.id,
              "pinned_artifacts": [f.sha256 for f in failed.manifest.files]}
    return pack(members, at=at, header=header)


def incident_history(uow: UnitOfWork, op: Operation, *, failed_since: datetime,
                     at: datetime) -> dict[str, Any]:
    """The metric history around the incident: from an hour before the failed version went
    live (at most 30 days back) to the archive's time, with the baselines and markers."""
    since = max(min(failed_since, at) - HISTORY_BEFORE, at - MAX_SPAN)
    try:
        return view_to_json(read_unchecked(uow, op.model, op.env, since=since, until=at))
    except LastGoodError as exc:  # the bundle keeps the rest; a review sees why this is absent
        return {"unavailable": exc.message}


def archive_id_for(op: Operation) -> str:
    """Deterministic, so a resumed operation never writes a second bundle."""
    return f"arc-{op.id}"


class ArchiveService:
    """List, show and export forensic bundles, verifying their bytes on the way out."""

    def __init__(self, *, uow: UnitOfWorkFactory, store: ArtifactStore):
        self._uow, self._store = uow, store

    def list(self, *, model: str | None = None, env: str | None = None) -> list[ArchiveRecord]:
        with self._uow() as uow:
            return uow.archives.list(model=model, env=env)

    def show(self, archive_id: str) -> tuple[ArchiveRecord, dict[str, bytes]]:
        with self._uow() as uow:
            record = uow.archives.get(archive_id)
        return record, unpack(self._store.read(record.sha256))

    def bundle(self, archive_id: str) -> tuple[ArchiveRecord, bytes]:
        """A bundle's record and its tar, every member verified against the manifest."""
        with self._uow() as uow:
            record = uow.archives.get(archive_id)
        data = self._store.read(record.sha256)
        unpack(data)
        return record, data

    def export(self, archive_id: str, dest: Path) -> ArchiveRecord:
        """Write the verified tar to `dest` (a file path, never inside the store)."""
        with self._uow() as uow:
            record = uow.archives.get(archive_id)
        if dest.exists() and dest.is_dir():
            dest = dest / f"{record.id}.tar"
        if not dest.parent.exists():
            raise InvalidInput(f"folder {str(dest.parent)!r} does not exist",
                               fix="create it or choose another destination")
        data = self._store.read(record.sha256)
        unpack(data)
        tmp = dest.with_suffix(dest.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(dest)
        return record


def build_refusal_bundle(op: Operation, refused: Version, *, candidates: Sequence[Candidate],
                         failing: Sequence[Mapping[str, Any]], at: datetime,
                         host: HostFacts) -> Bundle:
    """The forensic record of a deploy refused on today's traffic: the version, every check,
    and the raw requests it failed on, as its shadow's replicas reported them (the one place
    raw request data is kept outside a replica; `serve --replay-archive off` keeps it out)."""
    members = {
        "refused_version.json": _json(codec.version_to_json(refused)),
        "checks.json": _json([codec.candidate_to_json(c) for c in candidates]),
        "replay_failures.json": _json(list(failing)),
        "trigger.json": _json({"reason": op.reason, "actor": op.actor, "forced": op.forced,
                               "live_version": op.from_version}),
        "environment.json": _json({"python": host.python, "platform": host.platform,
                                   "hostname": host.hostname,
                                   "packages": dict(host.packages)}),
    }
    header = {"model": op.model, "env": op.env, "failed_version": refused.number,
              "operation_id": op.id, "kind": "refused deploy",
              "pinned_artifacts": [f.sha256 for f in refused.manifest.files]}
    return pack(members, at=at, header=header)
