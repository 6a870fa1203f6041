"""A version the reference check moves to mlflow.pyfunc at registration keeps the pins that
path needs (mlflow's own, which the native path leaves out), and the notes say which path's
pins were kept."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lastgood.domain.flavors import Inspection
from lastgood.domain.operations import SmokeOutcome
from lastgood.domain.versions import GoldenExample, Runtime, Version
from lastgood.services.registry import RegisterRequest, RegistryService
from lastgood.testing import FixedClock, InlineSession, MemoryRegistry
from lastgood.testing.memory_store import MemoryArtifactStore
from tests.unit.fake_lastgood import FakeFormats, StaticHost

LEFT_OUT = "left out mlflow: lastgood loads this flavor natively without it"


class NativeSklearn(FakeFormats):
    """An MLflow sklearn directory: scikit-learn pinned, mlflow's pin left out."""

    def inspect(self, path: Path, *, flavor: str | None, allow_pickle: bool) -> Inspection:
        return Inspection(flavor="sklearn", golden=(GoldenExample({"x": 1.0}, None),),
                          runtime=Runtime("3.11", {"scikit-learn": "1.9.1"}),
                          pyfunc_packages={"mlflow": "3.17.2"}, native_notes=(LEFT_OUT,))


class Reference:
    """The recording: the reference answers otherwise than the native path (`moved`), or not."""

    def __init__(self, *, moved: bool) -> None:
        self.moved = moved

    def smoke(self, version: Version, *, timeout_s: float) -> SmokeOutcome:
        return SmokeOutcome(True, "ran", outputs=([0.9, 0.1],),
                            serve_with="python_function" if self.moved else "",
                            reference="serving through mlflow.pyfunc: the native sklearn path "
                                      "answers 0 where mlflow.pyfunc answers [0.9, 0.1]"
                            if self.moved else "golden outputs recorded by mlflow.pyfunc")

    @contextmanager
    def session(self, *, timeout_s: float) -> Iterator[InlineSession]:
        yield InlineSession(lambda v: self.smoke(v, timeout_s=timeout_s))


def register(tmp_path: Path, *, moved: bool, requires: dict[str, str] | None = None
             ) -> tuple[Version, tuple[str, ...]]:
    (tmp_path / "model.bin").write_bytes(b"weights")
    registry = RegistryService(uow=MemoryRegistry(), store=MemoryArtifactStore(),
                               formats=NativeSklearn(), host=StaticHost(), clock=FixedClock(),
                               smoke=Reference(moved=moved))
    done = registry.register_noted(RegisterRequest("m", tmp_path / "model.bin",
                                                   requires=requires or {}), actor="t")
    return done.version, done.notes


def test_a_version_moved_to_pyfunc_keeps_mlflows_pin_and_says_so(tmp_path: Path) -> None:
    version, notes = register(tmp_path, moved=True)
    assert version.flavor == "python_function"
    assert dict(version.runtime.packages) == {"scikit-learn": "1.9.1", "mlflow": "3.17.2"}
    assert LEFT_OUT not in notes
    assert "kept mlflow==3.17.2 in the runtime pins: the version serves through mlflow.pyfunc" \
        in notes


def test_a_version_served_natively_leaves_mlflow_out_and_says_so(tmp_path: Path) -> None:
    version, notes = register(tmp_path, moved=False)
    assert version.flavor == "sklearn"
    assert dict(version.runtime.packages) == {"scikit-learn": "1.9.1"}
    assert LEFT_OUT in notes


def test_pins_given_by_the_registrant_are_kept_as_given(tmp_path: Path) -> None:
    version, notes = register(tmp_path, moved=True, requires={"scikit-learn": "1.9.1"})
    assert version.flavor == "python_function"
    assert dict(version.runtime.packages) == {"scikit-learn": "1.9.1"}
    assert not any(n.startswith("kept ") for n in notes)
