"""Import versions from an outside registry (MLflow): one URI, or every version not imported yet.

A version remembers where it came from in its provenance (`origin` is one MLflow model version),
so `sync` imports each MLflow version exactly once however often it runs: the version and its
event commit together, and a sync killed midway leaves either a whole version or none.
"""

from __future__ import annotations

import re
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

from lastgood.domain.errors import IdenticalContent, LastGoodError, NotFound
from lastgood.domain.outside import OutsideVersion
from lastgood.domain.versions import NAME_PATTERN, Version, check_name
from lastgood.ports import ModelImporter, Progress, UnitOfWorkFactory
from lastgood.services.mlflow_links import PROVENANCE_PREFIX
from lastgood.services.registry import ORIGIN, RegisterRequest, Registration, RegistryService


@dataclass(frozen=True, slots=True)
class Imported:
    """One import: the version registered, or the existing one holding identical content."""

    outside: OutsideVersion
    version: Version
    created: bool
    identical_to: int | None = None  # a version with the same digest (created or not)


@dataclass(frozen=True, slots=True)
class SyncStep:
    """What sync did for one outside version, told to its progress hook."""

    model: str
    outside_version: str
    outcome: str  # imported | identical | failed
    detail: str = ""
    version: int | None = None


@dataclass(frozen=True, slots=True)
class SyncReport:
    """A sync's totals: how many outside versions were seen, imported, already there, failed."""

    seen: int = 0
    imported: int = 0
    present: int = 0
    failed: tuple[SyncStep, ...] = ()
    skipped: tuple[str, ...] = ()  # one line per MLflow model that could not be synced


NOT_NAME = re.compile(r"[^a-z0-9._-]+")


def lastgood_name(mlflow_name: str) -> str | None:
    """The lastgood model an MLflow model is synced into: its name lowercased, every run of
    other characters (spaces, slashes, ...) made one '-' (`Fraud Model` -> `fraud-model`);
    None when nothing usable is left."""
    name = NOT_NAME.sub("-", mlflow_name.lower()).lstrip("._-")[:128]
    return name if NAME_PATTERN.match(name) else None


def sync_names(mlflow_names: Iterable[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """{lastgood name: MLflow name} for the models sync can import, and a warning line for
    each it cannot (no usable name, or a name another MLflow model maps to as well)."""
    claims: dict[str, list[str]] = {}
    skipped: list[str] = []
    for outside in sorted(set(mlflow_names)):
        name = lastgood_name(outside)
        if name is None:
            skipped.append(f"MLflow model {outside!r} skipped: its name has no letter or "
                           "digit lastgood can use; rename it in MLflow "
                           "(MlflowClient().rename_registered_model)")
        else:
            claims.setdefault(name, []).append(outside)
    names: dict[str, str] = {}
    for name, outsides in claims.items():
        exact = [o for o in outsides if o == name]
        keep = exact[0] if exact else outsides[0] if len(outsides) == 1 else None
        if keep is not None:
            names[name] = keep
        for other in (o for o in outsides if o != keep):
            rivals = ", ".join(repr(o) for o in outsides if o != other)
            skipped.append(f"MLflow model {other!r} skipped: it would be lastgood model "
                           f"{name!r}, as would {rivals}; rename one of them in MLflow "
                           "(MlflowClient().rename_registered_model)")
    return names, tuple(skipped)


def provenance_of(found: OutsideVersion, *, tracking_uri: str) -> dict[str, str]:
    """What lastgood records of an outside version (its tags under mlflow.tag.*)."""
    fields = {"model": found.model, "version": found.version, "run_id": found.run_id,
              "source": found.source, "uri": found.uri, "url": found.url,
              "aliases": ",".join(found.aliases), "tracking_uri": tracking_uri}
    out = {PROVENANCE_PREFIX + k: v for k, v in fields.items() if v}
    out |= {f"{PROVENANCE_PREFIX}tag.{k}": v for k, v in found.tags.items()}
    return out | {ORIGIN: found.origin}


def outside_version(v: Version) -> str | None:
    """The MLflow version a lastgood version was imported from, if any."""
    return v.provenance.get(PROVENANCE_PREFIX + "version")


PREFETCH = 4
"""Versions downloaded ahead of the one being registered."""


@dataclass(frozen=True, slots=True)
class _Fetched:
    found: OutsideVersion
    tmp: tempfile.TemporaryDirectory[str] | None
    local: Path | None
    error: LastGoodError | None = None


def _ahead(pool: ThreadPoolExecutor, fetch: Callable[[OutsideVersion], _Fetched],
           pending: list[tuple[str, OutsideVersion]]
           ) -> Iterator[tuple[str, OutsideVersion, _Fetched]]:
    """Yield each pending version with its download, keeping PREFETCH downloads in flight."""
    window: deque[tuple[str, OutsideVersion, Future[_Fetched]]] = deque()
    items = iter(pending)
    for model, outside in items:
        window.append((model, outside, pool.submit(fetch, outside)))
        if len(window) >= PREFETCH:
            break
    try:
        while window:
            model, outside, future = window.popleft()
            nxt = next(items, None)
            if nxt is not None:
                window.append((nxt[0], nxt[1], pool.submit(fetch, nxt[1])))
            yield model, outside, future.result()
    finally:  # downloads not taken (the sync stopped early) are removed
        for _, _, future in window:
            fetched = future.result()
            if fetched.tmp is not None:
                fetched.tmp.cleanup()


class MlflowSync:
    """Import from MLflow through the ModelImporter port, then register as usual."""

    def __init__(self, *, registry: RegistryService, importer: ModelImporter,
                 uow: UnitOfWorkFactory, tracking_uri: str, scratch: Path | None = None):
        self._registry, self._importer, self._uow = registry, importer, uow
        self._tracking_uri, self._scratch = tracking_uri, scratch

    def import_uri(self, req: RegisterRequest, uri: str, *, actor: str,
                   progress: Progress | None = None) -> Imported:
        """Register what `uri` names as the next version of `req.model` (an identical one is
        reported, not duplicated)."""
        check_name("model", req.model)
        return self._import(req, self._importer.resolve(uri), actor=actor, progress=progress)

    def pending(self, models: Sequence[str] = ()) -> list[tuple[str, OutsideVersion]]:
        """(lastgood model, outside version) for every MLflow version not imported yet."""
        return self.plan(models)[0]

    def plan(self, models: Sequence[str] = ()
             ) -> tuple[list[tuple[str, OutsideVersion]], tuple[str, ...]]:
        """`pending`, and a warning line for each MLflow model whose name cannot be synced
        (see `sync_names`); the others are planned all the same."""
        names, skipped = sync_names(list(models) or self._importer.models())
        out: list[tuple[str, OutsideVersion]] = []
        for name, outside in names.items():
            done = self._imported_origins(name)
            out += [(name, v) for v in self._importer.versions(outside) if v.origin not in done]
        return out, skipped

    def sync(self, pending: Iterable[tuple[str, OutsideVersion]], *, actor: str,
             allow_pickle: bool = False,
             on_step: Callable[[SyncStep], None] = lambda step: None) -> SyncReport:
        """Import each pending version in MLflow's order; one that fails is reported and the
        rest go on. Downloads run a few versions ahead on threads (MLflow's latency, not
        lastgood's work, is what a sync waits on); the versions stream through one
        registration, whose child process records their golden outputs while the next ones
        are downloaded and stored, and each version commits on its own."""
        seen = imported = present = 0
        failed: list[SyncStep] = []
        with ThreadPoolExecutor(max_workers=PREFETCH, thread_name_prefix="mlflow-fetch") as pool:
            for step in self._steps(_ahead(pool, self._fetch, list(pending)), actor=actor,
                                    allow_pickle=allow_pickle):
                seen += 1
                imported += step.outcome == "imported"
                present += step.outcome == "identical"
                if step.outcome == "failed":
                    failed.append(step)
                on_step(step)
        return SyncReport(seen=seen, imported=imported, present=present, failed=tuple(failed))

    def _fetch(self, outside: OutsideVersion) -> _Fetched:
        tmp = tempfile.TemporaryDirectory(prefix="lastgood-mlflow-", dir=self._scratch)
        try:
            found = self._importer.with_metrics(outside)
            return _Fetched(found, tmp, self._importer.download(found, Path(tmp.name)))
        except LastGoodError as exc:
            tmp.cleanup()
            return _Fetched(outside, None, None, exc)

    def _steps(self, fetched: Iterator[tuple[str, OutsideVersion, _Fetched]], *, actor: str,
               allow_pickle: bool) -> Iterator[SyncStep]:
        """One step per version, in order: its registration, or its failed download."""
        order: deque[tuple[str, OutsideVersion]] = deque()

        def requests() -> Iterator[RegisterRequest | LastGoodError]:
            for model, outside, f in fetched:
                order.append((model, outside))
                if f.error is not None:
                    yield f.error
                    continue
                try:
                    yield self._request(model, f.found, cast(Path, f.local),
                                        allow_pickle=allow_pickle)
                finally:  # the registry stored the files before taking the next request
                    if f.tmp is not None:
                        f.tmp.cleanup()

        registered = self._registry.register_many(requests(), actor=actor)
        with closing(registered):
            for done in registered:
                model, outside = order.popleft()
                yield self._step(model, outside, done)

    def _step(self, model: str, outside: OutsideVersion,
              done: Registration | LastGoodError) -> SyncStep:
        if isinstance(done, IdenticalContent):
            return SyncStep(model, outside.version, "identical", version=done.version)
        if isinstance(done, LastGoodError):
            return SyncStep(model, outside.version, "failed", done.one_line())
        return SyncStep(model, outside.version, "imported", version=done.version.number)

    def _request(self, model: str, found: OutsideVersion, local: Path, *,
                 allow_pickle: bool) -> RegisterRequest:
        return replace(RegisterRequest(model=model, path=Path("."), allow_pickle=allow_pickle),
                       path=local, metrics=dict(found.metrics),
                       provenance=provenance_of(found, tracking_uri=self._tracking_uri))

    def _import(self, req: RegisterRequest, found: OutsideVersion, *, actor: str,
                progress: Progress | None = None) -> Imported:
        with tempfile.TemporaryDirectory(prefix="lastgood-mlflow-", dir=self._scratch) as tmp:
            local = self._importer.download(found, Path(tmp))
            return self._register(req, found, local, actor=actor, progress=progress)

    def _register(self, req: RegisterRequest, found: OutsideVersion, local: Path, *,
                  actor: str, progress: Progress | None = None, twin: bool = True) -> Imported:
        metrics: Mapping[str, float] = {**found.metrics, **req.metrics}
        provenance = {**provenance_of(found, tracking_uri=self._tracking_uri), **req.provenance}
        full = replace(req, path=local, metrics=metrics, provenance=provenance)
        try:
            version = self._registry.register(full, actor=actor, progress=progress)
        except IdenticalContent as exc:
            return Imported(found, self._registry.show(req.model, exc.version),
                            created=False, identical_to=exc.version)
        return Imported(found, version, created=True,
                        identical_to=self._twin(version) if twin else None)

    def _twin(self, version: Version) -> int | None:
        with self._uow() as uow:
            same = uow.versions.with_digest(version.model, version.digest, key=ORIGIN,
                                            origin=None)
        return same.number if same is not None and same.number != version.number else None

    def _imported_origins(self, model: str) -> set[str]:
        with self._uow() as uow:
            try:
                found = uow.versions.list(model)
            except NotFound:
                return set()
        return {o for v in found if (o := v.provenance.get(ORIGIN))}
