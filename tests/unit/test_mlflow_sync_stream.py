"""`sync mlflow` as one stream: each version's golden outputs recorded from its own stored
files through one smoke session, failures reported per version in MLflow's order."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lastgood.domain.errors import TransientError
from lastgood.domain.flavors import Inspection
from lastgood.domain.operations import SmokeOutcome
from lastgood.domain.outside import OutsideVersion
from lastgood.domain.versions import GoldenExample, Version
from lastgood.services.mlflow_sync import MlflowSync, SyncStep
from lastgood.services.registry import RegistryService
from lastgood.testing import FixedClock, InlineSession, MemoryRegistry
from lastgood.testing.memory_store import MemoryArtifactStore
from tests.unit.fake_lastgood import FakeFormats, StaticHost


class Importer:
    """Five MLflow versions; v3's download fails."""

    def models(self) -> list[str]:
        return ["fraud"]

    def resolve(self, uri: str) -> OutsideVersion:
        raise AssertionError(f"sync lists versions; it never resolves a URI ({uri})")

    def versions(self, model: str) -> list[OutsideVersion]:
        return [OutsideVersion(origin=f"mlflow:{model}/{n}", uri=f"models:/{model}/{n}",
                               model=model, version=str(n)) for n in range(1, 6)]

    def with_metrics(self, found: OutsideVersion) -> OutsideVersion:
        return found

    def download(self, found: OutsideVersion, dest: Path) -> Path:
        if found.version == "3":
            raise TransientError("MLflow is unreachable", fix="retry")
        (dest / "model").mkdir()
        (dest / "model" / "model.bin").write_text(f"weights of v{found.version}")
        return dest / "model"


class ExampleFormats(FakeFormats):
    def inspect(self, path: Path, *, flavor: str | None, allow_pickle: bool) -> Inspection:
        return Inspection(flavor="sklearn", golden=(GoldenExample({"x": 1.0}, None),))


class ReadingSmoke:
    """Answers with the bytes of the version's own stored file; 'v4' fails to load."""

    def __init__(self, store: MemoryArtifactStore) -> None:
        self.store, self.sessions = store, 0

    def smoke(self, version: Version, *, timeout_s: float) -> SmokeOutcome:
        content = self.store.read(version.manifest.files[0].sha256).decode()
        if content.endswith("v4"):
            return SmokeOutcome(False, "loading or predicting failed: boom")
        return SmokeOutcome(True, "ran", outputs=(content,))

    @contextmanager
    def session(self, *, timeout_s: float) -> Iterator[InlineSession]:
        self.sessions += 1
        yield InlineSession(lambda v: self.smoke(v, timeout_s=timeout_s))


def test_sync_records_each_version_from_its_own_files_and_fails_per_version(
        tmp_path: Path) -> None:
    uow, store = MemoryRegistry(), MemoryArtifactStore()
    smoke = ReadingSmoke(store)
    registry = RegistryService(uow=uow, store=store, formats=ExampleFormats(),
                               host=StaticHost(), clock=FixedClock(), smoke=smoke)
    sync = MlflowSync(registry=registry, importer=Importer(), uow=uow,
                      tracking_uri="http://mlflow", scratch=tmp_path)
    steps: list[SyncStep] = []
    report = sync.sync(sync.pending(["fraud"]), actor="t", on_step=steps.append)
    assert [(s.outside_version, s.outcome) for s in steps] == [
        ("1", "imported"), ("2", "imported"), ("3", "failed"), ("4", "failed"),
        ("5", "imported")]
    assert "MLflow is unreachable" in steps[2].detail
    assert "golden examples were not reproduced" in steps[3].detail
    assert (report.seen, report.imported, len(report.failed)) == (5, 3, 2)
    recorded = {v.number: v.golden[0].expected for v in registry.versions("fraud")}
    assert recorded == {1: "weights of v1", 2: "weights of v2", 3: "weights of v5"}
    assert smoke.sessions == 1, "one smoke process for the whole sync"
    assert list(tmp_path.iterdir()) == [], "every download is removed"
    kept = {f.sha256 for v in registry.versions("fraud") for f in v.manifest.files}
    assert set(store.blobs) == kept, "the refused version's blob is removed"
