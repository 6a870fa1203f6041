"""A whole lastgood wired over in-memory fakes, for stepping the engine in unit tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lastgood.adapters.null import NoEvidence, NoSignatures
from lastgood.domain.audit import EventDraft
from lastgood.domain.compatibility import HostFacts
from lastgood.domain.flavors import Inspection
from lastgood.domain.health import LiveCheck
from lastgood.domain.operations import CommandResult, SmokeOutcome
from lastgood.domain.versions import GoldenExample, Resources, Version
from lastgood.ports import Predictor
from lastgood.services.container import Ports, Services, wire
from lastgood.services.operations import EngineSettings
from lastgood.testing import FixedClock, InlineSession, make_manifest, make_new_version
from lastgood.testing.memory import MemoryRegistry
from lastgood.testing.memory_store import MemoryArtifactStore


class StaticHost:
    def __init__(self, **packages: str) -> None:
        self.packages = {"scikit-learn": "1.5.0", "numpy": "2.0.0", "scipy": "1.13.0", **packages}
        self.memory_mb = 8000

    def facts(self) -> HostFacts:
        return HostFacts(python="3.11.7", packages=dict(self.packages),
                         resources=Resources(memory_mb=self.memory_mb, cpus=2, gpus=0),
                         hostname="test-host", platform="linux")


class ScriptedSmoke:
    """Smoke outcomes by version number; passes unless told otherwise."""

    def __init__(self) -> None:
        self.failing: dict[int, str] = {}
        self.calls: list[int] = []

    def smoke(self, version: Version, *, timeout_s: float) -> SmokeOutcome:
        self.calls.append(version.number)
        if version.number in self.failing:
            return SmokeOutcome(False, self.failing[version.number])
        return SmokeOutcome(True, f"{len(version.golden)} golden examples reproduced", 5.0, 1.0)

    @contextmanager
    def session(self, *, timeout_s: float) -> Iterator[InlineSession]:
        yield InlineSession(lambda v: self.smoke(v, timeout_s=timeout_s))


class ScriptedCommands:
    def __init__(self) -> None:
        self.exit_codes: dict[str, int] = {}
        self.runs: list[tuple[str, dict[str, str]]] = []

    def run(self, command: str, *, env: Mapping[str, str], timeout_s: float) -> CommandResult:
        self.runs.append((command, dict(env)))
        code = self.exit_codes.get(command, 0)
        return CommandResult(code, f"ran {command}", 1.0)

    def call(self, entry_point: str, payload: Mapping[str, Any], *,
             timeout_s: float) -> CommandResult:
        return self.run(entry_point, env={k: str(v) for k, v in payload.items()},
                        timeout_s=timeout_s)


class ScriptedVerifier:
    def __init__(self) -> None:
        self.verdict = "HEALTHY"

    def verify_live(self, model: str, env: str, version: int,
                    baseline: Mapping[str, float]) -> LiveCheck:
        return LiveCheck(self.verdict, f"v{version} is {self.verdict}",
                         {"baseline": dict(baseline)})


class EchoPredictor:
    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[Any]:
        return [0 for _ in records]


class FakeFormats:
    def inspect(self, path: Path, *, flavor: str | None, allow_pickle: bool) -> Inspection:
        return Inspection(flavor=flavor or "sklearn")

    def load(self, version: Version, directory: Path) -> Predictor:
        return EchoPredictor()


@dataclass
class FakeLastgood:
    registry: MemoryRegistry = field(default_factory=MemoryRegistry)
    store: MemoryArtifactStore = field(default_factory=MemoryArtifactStore)
    clock: FixedClock = field(default_factory=FixedClock)
    host: StaticHost = field(default_factory=StaticHost)
    smoke: ScriptedSmoke = field(default_factory=ScriptedSmoke)
    commands: ScriptedCommands = field(default_factory=ScriptedCommands)
    verifier: ScriptedVerifier = field(default_factory=ScriptedVerifier)
    engine_settings: EngineSettings = field(default_factory=lambda: EngineSettings(
        lease_ttl_s=30, replica_stale_s=15, poll_s=0.2))  # the engine's waits move the clock
    services: Services = field(init=False)

    def __post_init__(self) -> None:
        self.services = wire(Ports(
            uow=self.registry, store=self.store, formats=FakeFormats(), host=self.host,
            clock=self.clock, commands=self.commands, smoke=self.smoke,
            signatures=NoSignatures(), verifier=self.verifier, evidence=NoEvidence(),
            engine_settings=self.engine_settings))

    def add_version(self, *, content: bytes | None = None, **kw: Any) -> Version:
        """Register a version whose artifact bytes really are in the store."""
        data = content or f"weights {len(self.store.blobs)} {kw}".encode()
        kw.setdefault("golden", (GoldenExample({"amount": 1.0, "country": "fr"}, 0),))
        new = make_new_version(manifest=make_manifest(("model.bin", data)), **kw)
        self.store.blobs[new.manifest.files[0].sha256] = data
        with self.registry() as uow:
            v = uow.versions.add(new, at=self.clock.now(), actor="tester")
            uow.events.append(EventDraft(action="version.registered", actor="tester",
                                         model=v.model), at=self.clock.now())
            uow.commit()
        return v

    def deploy(self, number: int, *, verify: bool = True, env: str = "production",
               model: str = "fraud-detector") -> None:
        self.clock.advance(60)
        self.services.deployments.deploy(model, number, env=env, reason=f"ship v{number}",
                                         actor="alice")
        if verify:
            self.clock.advance(600)
            self.services.deployments.verify(model, env=env,
                                             baseline={"error_rate": 0.01, "p95_ms": 30},
                                             reason="bake passed", actor="bob")

    def events(self) -> list[str]:
        with self.registry() as uow:
            return [e.action for e in uow.events.list()]
