"""The smoke child run on a batch of versions (registration's recordings): one process loads
them in turn, and a version that hangs or kills it fails alone while the rest are answered."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lastgood.adapters.system.smoke import SubprocessSmoke
from lastgood.domain.versions import GoldenExample, GoldenSource, Manifest, Version
from lastgood.testing.memory_store import MemoryArtifactStore

pytestmark = pytest.mark.slow

FORMATS = "tests.integration.smoke_formats:ScriptedFormats"


def version(model: str, x: int) -> Version:
    golden = (GoldenExample(inputs={"x": x}, expected=None, source=GoldenSource.UNCHECKED),)
    return Version(model=model, number=1, manifest=Manifest(()), digest="0" * 64,
                   flavor="sklearn", created_at=datetime.now(UTC), created_by="t",
                   golden=golden)


def test_a_batch_is_answered_in_order() -> None:
    smoke = SubprocessSmoke(MemoryArtifactStore(), formats_ref=FORMATS)
    found = smoke.smoke_many([version("a", 1), version("b", 2), version("c", 3)], timeout_s=60)
    assert [o.outputs for o in found] == [(2,), (4,), (6,)]
    assert all(o.ok for o in found)


def test_a_version_that_kills_or_hangs_the_child_fails_alone() -> None:
    smoke = SubprocessSmoke(MemoryArtifactStore(), formats_ref=FORMATS)
    batch = [version("a", 1), version("dies", 2), version("b", 3), version("hangs", 4),
             version("c", 5)]
    found = smoke.smoke_many(batch, timeout_s=20)
    assert [o.ok for o in found] == [True, False, True, False, True]
    assert "died (exit code 3)" in found[1].summary
    assert "did not finish within 20 s" in found[3].summary
    assert [o.outputs for o in found if o.ok] == [(2,), (6,), (10,)]
