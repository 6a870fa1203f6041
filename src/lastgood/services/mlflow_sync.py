"""Import versions from an outside registry (MLflow): one URI, or every version not imported yet.

A version remembers where it came from in its provenance (`origin` is one MLflow model version),
so `sync` imports each MLflow version exactly once however often it runs: the version and its
event commit together, and a sync killed midway leaves either a whole version or none.
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from lastgood.domain.errors import IdenticalContent, LastGoodError, NotFound
from lastgood.domain.outside import OutsideVersion
from lastgood.domain.versions import Version, check_name
from lastgood.ports import ModelImporter, Progress, UnitOfWorkFactory
from lastgood.services.registry import ORIGIN, RegisterRequest, RegistryService

PROVENANCE_PREFIX = "mlflow."


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
    while window:
        model, outside, future = window.popleft()
        nxt = next(items, None)
        if nxt is not None:
            window.append((nxt[0], nxt[1], pool.submit(fetch, nxt[1])))
        yield model, outside, future.result()


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
        names = list(models) or self._importer.models()
        out: list[tuple[str, OutsideVersion]] = []
        for name in names:
            check_name("model", name)
            done = self._imported_origins(name)
            out += [(name, v) for v in self._importer.versions(name) if v.origin not in done]
        return out

    def sync(self, pending: Iterable[tuple[str, OutsideVersion]], *, actor: str,
             allow_pickle: bool = False,
             on_step: Callable[[SyncStep], None] = lambda step: None) -> SyncReport:
        """Import each pending version in MLflow's order; one that fails is reported and the
        rest go on. Downloads run a few versions ahead on threads (MLflow's latency, not
        lastgood's work, is what a sync waits on); registrations stay one by one, in order."""
        seen = imported = present = 0
        failed: list[SyncStep] = []
        with ThreadPoolExecutor(max_workers=PREFETCH, thread_name_prefix="mlflow-fetch") as pool:
            for model, outside, fetched in _ahead(pool, self._fetch, list(pending)):
                seen += 1
                step = self._sync_one(model, outside, fetched, actor=actor,
                                      allow_pickle=allow_pickle)
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

    def _sync_one(self, model: str, outside: OutsideVersion, fetched: _Fetched, *,
                  actor: str, allow_pickle: bool) -> SyncStep:
        req = RegisterRequest(model=model, path=Path("."), allow_pickle=allow_pickle)
        try:
            if fetched.error is not None:
                raise fetched.error
            assert fetched.local is not None
            done = self._register(req, fetched.found, fetched.local, actor=actor, twin=False)
        except LastGoodError as exc:
            return SyncStep(model, outside.version, "failed", exc.one_line())
        finally:
            if fetched.tmp is not None:
                fetched.tmp.cleanup()
        return SyncStep(model, outside.version, "imported" if done.created else "identical",
                        version=done.version.number)

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
