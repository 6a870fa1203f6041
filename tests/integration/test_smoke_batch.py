"""The smoke child run on many versions (registration's recordings): one process loads them in
turn while more are handed over, and a version that hangs or kills it fails alone while the
rest are answered by a new one."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from lastgood.adapters.system.smoke import SubprocessSmoke
from lastgood.domain.versions import GoldenExample, GoldenSource, Manifest, Version
from lastgood.testing import make_manifest
from lastgood.testing.memory_store import MemoryArtifactStore

pytestmark = pytest.mark.slow

FORMATS = "tests.integration.smoke_formats:ScriptedFormats"


def version(model: str, x: int) -> Version:
    golden = (GoldenExample(inputs={"x": x}, expected=None, source=GoldenSource.UNCHECKED),)
    return Version(model=model, number=1, manifest=Manifest(()), digest="0" * 64,
                   flavor="sklearn", created_at=datetime.now(UTC), created_by="t",
                   golden=golden)


def test_versions_are_answered_in_order_by_one_child() -> None:
    smoke = SubprocessSmoke(MemoryArtifactStore(), formats_ref=FORMATS)
    with smoke.session(timeout_s=60) as session:
        for model, x in (("a", 1), ("pid", 2), ("c", 3)):
            session.hand(version(model, x))
        found = [session.outcome() for _ in range(3)]
        session.hand(version("pid", 4))  # handed after the others were answered
        later = session.outcome()
    assert [found[0].outputs, found[2].outputs] == [(2,), (6,)]
    assert all(o.ok for o in found)
    assert later.ok
    assert later.outputs == found[1].outputs  # one process answered them all: the same pid


def test_a_version_that_kills_or_hangs_the_child_fails_alone() -> None:
    smoke = SubprocessSmoke(MemoryArtifactStore(), formats_ref=FORMATS)
    batch = [version("a", 1), version("dies", 2), version("b", 3), version("hangs", 4),
             version("c", 5)]
    with smoke.session(timeout_s=20) as session:
        for v in batch:
            session.hand(v)
        found = [session.outcome() for _ in batch]
        session.hand(version("d", 6))  # the child after the failures answers on
        after = session.outcome()
    assert [o.ok for o in found] == [True, False, True, False, True]
    assert "died (exit code 3)" in found[1].summary
    assert "did not finish within 20 s" in found[3].summary
    assert [o.outputs for o in found if o.ok] == [(2,), (6,), (10,)]
    assert after.outputs == (12,)


def stored(store: MemoryArtifactStore, content: str) -> Version:
    data = content.encode()
    store.put(io.BytesIO(data))
    return replace(version("reads", 0), manifest=make_manifest(("weights.txt", data)))


def test_each_version_loads_its_own_fetched_files_and_a_bad_blob_fails_alone() -> None:
    store = MemoryArtifactStore()
    first, corrupted, third = stored(store, "first"), stored(store, "second"), stored(store, "x")
    store.blobs[corrupted.manifest.files[0].sha256] = b"tampered"
    smoke = SubprocessSmoke(store, formats_ref=FORMATS)
    with smoke.session(timeout_s=60) as session:
        for v in (first, corrupted, third):
            session.hand(v)
        found = [session.outcome() for _ in range(3)]
    assert [o.outputs for o in found] == [("first",), (), ("x",)]
    assert not found[1].ok
    assert "corrupted" in found[1].summary
