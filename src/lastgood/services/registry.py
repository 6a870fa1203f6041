"""Register, list, show and retire versions: the registry's use cases."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from lastgood.domain.audit import Event, EventDraft
from lastgood.domain.errors import (
    IdenticalContent,
    InvalidInput,
    LastGoodError,
    PreconditionFailed,
)
from lastgood.domain.flavors import Inspection, flavor
from lastgood.domain.operations import SmokeOutcome
from lastgood.domain.versions import (
    ArtifactFile,
    GoldenExample,
    Manifest,
    Model,
    NewVersion,
    Resources,
    Runtime,
    Schema,
    Version,
    VersionStatus,
    check_name,
    check_tag,
    golden_params,
    golden_summary,
    parse_ref,
    validate_new_version,
)
from lastgood.ports import (
    ArtifactStore,
    Clock,
    Host,
    ModelFormats,
    Progress,
    SmokeRunner,
    UnitOfWorkFactory,
)
from lastgood.services.golden_record import golden_outcome, run_in_turn, unrun_note

RECORD_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Registration:
    """A registered version and what lastgood noticed while registering it."""

    version: Version
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RegisterRequest:
    """What `lastgood register` asks for; unset fields are read from the artifact or the host."""

    model: str
    path: Path
    flavor: str | None = None
    tag: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    requires: Mapping[str, str] = field(default_factory=dict)
    python: str | None = None
    resources: Resources | None = None
    schema: Schema | None = None
    golden: tuple[GoldenExample, ...] = ()
    provenance: Mapping[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    allow_pickle: bool = False
    sign_with: str | None = None  # a signing key kept here (`lastgood key create`)
    signature: str | None = None  # or a signature made elsewhere, checked at registration
    signed_by: str | None = None


Sealer = Callable[[NewVersion, RegisterRequest], NewVersion]
"""Adds the signature a request asks for (see services.signing), or refuses it."""


def unsigned(new: NewVersion, req: RegisterRequest) -> NewVersion:
    """The sealer of a registry without signing keys: refuses any signing request."""
    if req.sign_with or req.signature or req.signed_by:
        raise PreconditionFailed("this registry cannot sign or check signatures",
                                 fix="open it through lastgood's composition root")
    return new


def named_errors(model: str, body: Callable[[], Inspection]) -> Inspection:
    """Inspect, with any refusal naming the model being registered."""
    try:
        return body()
    except InvalidInput as exc:
        raise type(exc)(f"cannot register {model}: {exc.message}", fix=exc.fix,
                        details=exc.details) from exc


BOOKKEEPING_FILES = frozenset({"registered_model_meta"})
"""Files MLflow adds to a model directory when it is downloaded from its registry; they name
the registry entry, not the model, so they are left out of the manifest and the digest."""


def is_bookkeeping(root: Path, path: Path) -> bool:
    """Whether `path` is MLflow's bookkeeping at the top of an MLflow model directory `root`."""
    return (path.parent == root and path.name in BOOKKEEPING_FILES
            and (root / "MLmodel").is_file())


ORIGIN = "origin"
"""Provenance key naming where a version came from outside (e.g. one MLflow model version):
identical content is refused unless it names an origin no version with that content has."""


def artifact_files(path: Path) -> list[tuple[str, Path]]:
    """(manifest path, local path) for a file or every file below a directory."""
    if not path.exists():
        raise InvalidInput(f"artifact path {str(path)!r} does not exist",
                           fix="check the path (a model file or an MLflow model directory)")
    if path.is_file():
        return [(path.name, path)]
    files = sorted(p for p in path.rglob("*") if p.is_file() and not is_bookkeeping(path, p))
    if not files:
        raise InvalidInput(f"directory {str(path)!r} holds no files",
                           fix="point PATH at a model file or a non-empty model directory")
    return [(p.relative_to(path).as_posix(), p) for p in files]


@dataclass(frozen=True, slots=True)
class _Staged:
    """A registration stored and validated, waiting for its golden run and its commit."""

    req: RegisterRequest
    new: NewVersion
    notes: tuple[str, ...]
    golden_note: str = ""
    found: Inspection | None = None  # what the format said (the pins pyfunc would need back)


class RegistryService:
    """Every read and write of the registry that is not a deployment."""

    def __init__(self, *, uow: UnitOfWorkFactory, store: ArtifactStore, formats: ModelFormats,
                 host: Host, clock: Clock, smoke: SmokeRunner, record_outputs: bool = True,
                 seal: Sealer = unsigned):
        self._uow, self._store, self._formats = uow, store, formats
        self._host, self._clock, self._seal = host, clock, seal
        self._smoke, self._record = smoke, record_outputs

    def register(self, req: RegisterRequest, *, actor: str,
                 progress: Progress | None = None) -> Version:
        """Hash and store the artifacts, then record the version and its event in one commit."""
        return self.register_noted(req, actor=actor, progress=progress).version

    def register_noted(self, req: RegisterRequest, *, actor: str,
                       progress: Progress | None = None) -> Registration:
        """`register`, with the notes lastgood made (what it read, ignored or recorded).

        Golden examples are run once in a child process before the commit: given outputs must
        be reproduced, and examples without one get the output the version gave recorded. If
        anything fails, blobs this call created and no version refers to are removed, so nothing
        is half-written.
        """
        [done] = self.register_many([req], actor=actor, progress=progress)
        if isinstance(done, LastGoodError):
            raise done
        return done

    def register_many(self, reqs: Iterable[RegisterRequest | LastGoodError], *, actor: str,
                      progress: Progress | None = None
                      ) -> Generator[Registration | LastGoodError, None, None]:
        """`register_noted` for each request, in order, as they come: the golden examples of
        them all run in one child process (starting one costs more than loading a small model),
        which loads each version while the next requests are stored and inspected; each version
        then commits on its own with its event. A request's files are read before the next
        request is taken. One that is refused is yielded as its error and the others go on (an
        error given in a request's place, say its failed download, is yielded back in turn);
        blobs only the refused ones needed are removed when the stream ends."""
        created: list[str] = []
        failed = False
        try:
            with self._smoke.session(timeout_s=RECORD_TIMEOUT_S) as session:
                staged = (self._staged(req, created, progress) for req in reqs)
                for item, outcome in run_in_turn(staged, partial(self._probe, actor=actor),
                                                 session):
                    checked = self._golden_checked(item, outcome)
                    done = (self._committed(checked, actor) if isinstance(checked, _Staged)
                            else checked)
                    failed = failed or isinstance(done, LastGoodError)
                    yield done
        except BaseException:
            self._forget(created)
            raise
        if failed:
            self._forget(created)  # keeps whatever a committed version refers to

    def _staged(self, req: RegisterRequest | LastGoodError, created: list[str],
                progress: Progress | None) -> _Staged | LastGoodError:
        """Stored and validated, not yet golden-checked nor committed (or why not)."""
        if isinstance(req, LastGoodError):
            return req
        try:
            check_name("model", req.model)
            if req.tag is not None:
                check_tag(req.tag)
            files = artifact_files(req.path)
            inspection = named_errors(req.model, lambda: self._formats.inspect(
                req.path, flavor=req.flavor, allow_pickle=req.allow_pickle))
            self._check_tag_free(req)
            manifest = Manifest(tuple(self._put(name, local, created, progress)
                                      for name, local in files))
            self._refuse_identical(req, manifest)
            new = validate_new_version(self._new_version(req, inspection, manifest))
        except LastGoodError as exc:
            return exc
        return _Staged(req, new, inspection.notes, found=inspection)

    def _committed(self, staged: _Staged, actor: str) -> Registration | LastGoodError:
        try:
            new = self._seal(staged.new, staged.req)
            with self._uow() as uow:
                version = uow.versions.add(new, at=self._clock.now(), actor=actor)
                uow.events.append(self._registered_event(version, actor, staged.golden_note),
                                  at=self._clock.now())
                uow.commit()
        except LastGoodError as exc:
            return exc
        return Registration(version, (*staged.notes, *_path_notes(staged, version.flavor),
                                      staged.golden_note))

    @staticmethod
    def _golden_checked(staged: _Staged | LastGoodError, outcome: SmokeOutcome | None
                        ) -> _Staged | LastGoodError:
        """Given outputs must match the run's; missing ones are recorded from it."""
        if isinstance(staged, LastGoodError):
            return staged
        if outcome is None:
            return replace(staged, golden_note=unrun_note(staged.new))
        found = golden_outcome(staged.new, outcome)
        if isinstance(found, LastGoodError):
            return found
        new = found[0]
        if new.flavor != staged.new.flavor and staged.found and not staged.req.requires:
            # moved to mlflow.pyfunc by the reference check: the pins the native path left out
            pins = {**staged.found.pyfunc_packages, **new.runtime.packages}
            new = replace(new, runtime=replace(new.runtime, packages=pins))
        return replace(staged, new=new, golden_note=found[1])

    def _probe(self, staged: _Staged | LastGoodError, *, actor: str) -> Version | None:
        """The version the golden examples run on, None when there is nothing to run."""
        if isinstance(staged, LastGoodError) or not staged.new.golden or not self._record:
            return None
        new = staged.new
        return Version(model=new.model, number=0, manifest=new.manifest,
                       digest=new.manifest.digest, flavor=new.flavor,
                       created_at=self._clock.now(), created_by=actor, runtime=new.runtime,
                       schema=new.schema, golden=new.golden, unsafe_format=new.unsafe_format)

    def _check_tag_free(self, req: RegisterRequest) -> None:
        """Refuse a duplicate tag before hashing gigabytes (the commit checks again)."""
        if req.tag is None:
            return
        with self._uow() as uow:
            try:
                existing = uow.versions.get(req.model, req.tag)
            except LastGoodError:
                return
        from lastgood.domain.errors import AlreadyExists

        raise AlreadyExists(f"tag {req.tag!r} is already version {existing.number} of "
                            f"{req.model!r}", fix="choose another tag; tags are never reused")

    def _refuse_identical(self, req: RegisterRequest, manifest: Manifest) -> None:
        """Identical content is one version: say which, unless it comes from another origin."""
        with self._uow() as uow:
            v = uow.versions.with_digest(req.model, manifest.digest, key=ORIGIN,
                                         origin=req.provenance.get(ORIGIN) or None)
        if v is not None:
            raise IdenticalContent(
                f"content identical to {v.ref} (digest {v.digest[:12]}) is already registered",
                fix=f"use {v.ref}; nothing new was registered", version=v.number,
                digest=v.digest)

    def _put(self, name: str, local: Path, created: list[str],
             progress: Progress | None) -> ArtifactFile:
        try:
            with local.open("rb") as source:
                blob = self._store.put(source, progress=progress)
        except PermissionError as exc:
            raise InvalidInput(f"cannot read {str(local)!r}: permission denied",
                               fix="make the file readable by this user") from exc
        if blob.created:
            created.append(blob.sha256)
        return ArtifactFile(path=name, size=blob.size, sha256=blob.sha256)

    def _forget(self, created: Sequence[str]) -> None:
        """Remove blobs this registration created if no committed version refers to them."""
        if not created:
            return
        try:
            with self._uow() as uow:
                referenced = uow.versions.referenced_blobs()
            for sha in created:
                if sha not in referenced:
                    self._store.delete(sha)
        except LastGoodError:
            pass  # the registry is unreachable: the orphan blobs are harmless and deduplicated

    def _new_version(self, req: RegisterRequest, found: Inspection,
                     manifest: Manifest) -> NewVersion:
        inputs, outputs = found.schema or ((), ())
        schema = replace(req.schema or Schema(inputs=inputs, outputs=outputs),
                         params=found.params)
        return NewVersion(
            model=req.model, manifest=manifest, flavor=found.flavor,
            runtime=self._runtime(req, found), schema=schema,
            golden=req.golden or found.golden, metrics=dict(req.metrics),
            provenance=dict(req.provenance), labels=tuple(req.labels), tag=req.tag,
            unsafe_format=found.unsafe,
        )

    def _runtime(self, req: RegisterRequest, found: Inspection) -> Runtime:
        """Explicit pins win; then what the artifact declares; then the registering host."""
        facts = self._host.facts()
        declared = found.runtime or Runtime()
        spec = flavor(found.flavor)
        packages = dict(req.requires) or dict(declared.packages) or {
            name: facts.packages[name]
            for name in (*spec.requires, *spec.reads)
            if name in facts.packages
        }
        python = req.python or declared.python or ".".join(facts.python.split(".")[:2])
        return Runtime(python=python, packages=packages,
                       resources=req.resources or declared.resources)

    @staticmethod
    def _registered_event(v: Version, actor: str, golden_note: str) -> EventDraft:
        return EventDraft(
            action="version.registered", actor=actor, model=v.model, subject=f"v{v.number}",
            after={"version": v.number, "tag": v.tag, "digest": v.digest, "flavor": v.flavor,
                   "unsafe_format": v.unsafe_format},
            evidence={"files": len(v.manifest.files), "bytes": v.manifest.total_size,
                      "golden": golden_summary(v.golden), "golden_note": golden_note,
                      **({"golden_params": golden_params(v.golden)}
                         if any(g.params for g in v.golden) else {})},
        )

    def models(self) -> list[Model]:
        with self._uow() as uow:
            return uow.models.list()

    def versions(self, model: str, *, limit: int | None = None) -> list[Version]:
        with self._uow() as uow:
            return uow.versions.list(model, limit=limit)

    def show(self, model: str, ref: str | int) -> Version:
        with self._uow() as uow:
            return uow.versions.get(model, parse_ref(str(ref)))

    def events(self, *, model: str | None = None, env: str | None = None,
               limit: int | None = None, after_seq: int = 0) -> list[Event]:
        with self._uow() as uow:
            if model is not None:
                uow.models.get(model)
            return uow.events.list(model=model, env=env, limit=limit, after_seq=after_seq)

    def scan_events(self) -> Iterator[Event]:
        with self._uow() as uow:
            yield from uow.events.scan()

    def retire(self, model: str, ref: str | int, *, reason: str, actor: str) -> Version:
        """Withdraw a version for good: it stays in history but is never a target again."""
        if not reason.strip():
            raise InvalidInput("retiring a version needs a reason",
                               fix="pass --reason 'why it must never serve again'")
        with self._uow() as uow:
            version = uow.versions.get(model, parse_ref(str(ref)))
            live = [e.name for e in uow.environments.list()
                    if (d := uow.deployments.live(model, e.name)) and d.version == version.number]
            if live:
                raise PreconditionFailed(
                    f"{version.ref} is live in {', '.join(live)}",
                    fix="deploy or roll back to another version first, then retire it")
            if version.status is VersionStatus.RETIRED:
                return version
            updated = uow.versions.set_status(model, version.number, VersionStatus.RETIRED)
            uow.events.append(EventDraft(
                action="version.retired", actor=actor, model=model, subject=f"v{version.number}",
                reason=reason, before={"status": str(version.status)},
                after={"status": str(updated.status)}), at=self._clock.now())
            uow.commit()
            return updated


def _path_notes(staged: _Staged, served: str) -> tuple[str, ...]:
    """The notes about the path that serves: the native path's own while it serves, else the
    pins serving through mlflow.pyfunc took back."""
    if staged.found is None:
        return ()
    if served == staged.found.flavor:
        return staged.found.native_notes
    back = {k: v for k, v in staged.found.pyfunc_packages.items()
            if k in staged.new.runtime.packages}
    if not back:
        return ()
    listed = ", ".join(f"{k}=={v}" for k, v in sorted(back.items()))
    return (f"kept {listed} in the runtime pins: the version serves through mlflow.pyfunc",)
