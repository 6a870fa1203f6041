"""Contract: models and versions (numbers, tags, lookups, status) on every registry backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lastgood.domain.errors import AlreadyExists, NotFound
from lastgood.domain.versions import (
    Column,
    GoldenExample,
    Param,
    Resources,
    Runtime,
    Schema,
    VersionStatus,
)
from lastgood.ports import UnitOfWorkFactory
from lastgood.testing import EPOCH, make_manifest, make_new_version

AT = EPOCH + timedelta(microseconds=123456)  # sub-second precision must survive storage


def add(registry: UnitOfWorkFactory, model: str, *, tag: str | None = None, n: int = 1) -> None:
    with registry() as uow:
        for _ in range(n):
            uow.versions.add(make_new_version(model, tag=tag), at=AT, actor="ana")
        uow.commit()


def test_numbers_are_consecutive_per_model(registry: UnitOfWorkFactory) -> None:
    add(registry, "fraud", n=3)
    add(registry, "churn", n=2)
    add(registry, "fraud")
    with registry() as uow:
        assert [v.number for v in uow.versions.list("fraud")] == [4, 3, 2, 1]
        assert [v.number for v in uow.versions.list("churn")] == [2, 1]


def test_a_version_reads_back_exactly_as_registered(registry: UnitOfWorkFactory) -> None:
    new = make_new_version(
        "fraud", tag="v1.4.2", flavor="onnx",
        manifest=make_manifest(("model.onnx", b"weights"), ("meta/cfg.json", b"{}")),
        runtime=Runtime(python="3.11", packages={"onnxruntime": "1.17.0"},
                        resources=Resources(memory_mb=512, cpus=1.5, gpus=1)),
        schema=Schema(inputs=(Column("x", "float32", (1, 4)),), outputs=(Column("y", "int64"),),
                      params=(Param("threshold", "double", 50.0),
                              Param("ids", "long", [1, 2], (-1,)))),
        golden=(GoldenExample(inputs={"x": [[1.0, 2.0, 3.0, 4.0]]}, expected=[1], tolerance=0.1),),
        metrics={"auc": 0.91}, provenance={"git_sha": "abc"}, labels=("canary", "eu"),
        unsafe_format=True, signature="sig", signed_by="ci-key",
    )
    with registry() as uow:
        added = uow.versions.add(new, at=AT, actor="ana")
        uow.commit()
    with registry() as uow:
        stored = uow.versions.get("fraud", 1)
    assert stored == added
    assert (stored.number, stored.digest, stored.created_at, stored.created_by) == (
        1, new.manifest.digest, AT, "ana")
    assert (stored.manifest, stored.runtime, stored.schema, stored.golden) == (
        new.manifest, new.runtime, new.schema, new.golden)
    assert (stored.labels, stored.tag, stored.unsafe_format, stored.signature) == (
        ("canary", "eu"), "v1.4.2", True, "sig")
    assert stored.status is VersionStatus.ACTIVE


def test_versions_are_found_by_number_or_tag(registry: UnitOfWorkFactory) -> None:
    add(registry, "fraud")
    add(registry, "fraud", tag="v2")
    with registry() as uow:
        assert uow.versions.get("fraud", "v2").number == 2
        assert uow.versions.get("fraud", 1).tag is None


def test_unknown_version_names_the_range_and_the_fix(registry: UnitOfWorkFactory) -> None:
    add(registry, "fraud", n=2)
    with registry() as uow:
        with pytest.raises(NotFound, match=r"no version 7 — its versions are 1\.\.2; "
                                           r"list them with `lastgood versions fraud`"):
            uow.versions.get("fraud", 7)
        with pytest.raises(NotFound, match="no version tagged 'v9'"):
            uow.versions.get("fraud", "v9")
        with pytest.raises(NotFound, match="unknown model 'churn' — known models: fraud"):
            uow.versions.get("churn", 1)


def test_a_duplicate_tag_is_refused_but_other_models_may_use_it(
        registry: UnitOfWorkFactory) -> None:
    add(registry, "fraud", tag="v1")
    with registry() as uow, pytest.raises(AlreadyExists, match=r"tagged 'v1' \(#1\)"):
        uow.versions.add(make_new_version("fraud", tag="v1"), at=AT, actor="ana")
    add(registry, "churn", tag="v1")
    with registry() as uow:
        assert uow.versions.get("churn", "v1").number == 1
        assert uow.models.get("fraud").latest_number == 1


def test_models_summarise_their_versions(registry: UnitOfWorkFactory) -> None:
    with registry() as uow:
        assert uow.models.list() == []
        with pytest.raises(NotFound) as caught:
            uow.models.get("fraud")
    assert str(caught.value) == ("unknown model 'fraud' — known models: none yet; "
                                 "register one with `lastgood register`")
    add(registry, "fraud", n=3)
    add(registry, "churn")
    with registry() as uow:
        models = uow.models.list()
        assert [m.name for m in models] == ["churn", "fraud"]
        fraud = uow.models.get("fraud")
    assert (fraud.latest_number, fraud.version_count, fraud.created_at) == (3, 3, AT)


def test_list_pages_newest_first(registry: UnitOfWorkFactory) -> None:
    add(registry, "fraud", n=5)
    with registry() as uow:
        assert [v.number for v in uow.versions.list("fraud", limit=2)] == [5, 4]
        assert [v.number for v in uow.versions.list("fraud", limit=2, offset=2)] == [3, 2]
        assert [v.number for v in uow.versions.list("fraud", offset=4)] == [1]
        with pytest.raises(NotFound, match="unknown model 'churn'"):
            uow.versions.list("churn")


def test_set_status_changes_only_the_status(registry: UnitOfWorkFactory) -> None:
    add(registry, "fraud", tag="v1")
    with registry() as uow:
        before = uow.versions.get("fraud", 1)
        after = uow.versions.set_status("fraud", 1, VersionStatus.QUARANTINED)
        uow.commit()
    with registry() as uow:
        assert uow.versions.get("fraud", "v1") == after
        with pytest.raises(NotFound, match="no version 2"):
            uow.versions.set_status("fraud", 2, VersionStatus.RETIRED)
    assert after.status is VersionStatus.QUARANTINED
    assert after.manifest == before.manifest
    assert after.created_at == before.created_at


def test_referenced_blobs_cover_every_manifest(registry: UnitOfWorkFactory) -> None:
    one = make_manifest(("a", b"1"), ("b", b"2"))
    two = make_manifest(("a", b"1"), ("c", b"3"))
    with registry() as uow:
        assert uow.versions.referenced_blobs() == set()
        uow.versions.add(make_new_version("fraud", manifest=one), at=AT, actor="ana")
        uow.versions.add(make_new_version("churn", manifest=two), at=AT, actor="ana")
        uow.commit()
    with registry() as uow:
        assert uow.versions.referenced_blobs() == {f.sha256 for f in one.files + two.files}


def test_identical_content_is_found_by_digest_and_origin(registry: UnitOfWorkFactory) -> None:
    manifest = make_manifest(seed="same bytes")
    with registry() as uow:
        for origin in ("mlflow:m/1", "mlflow:m/2", None):
            prov = {"origin": origin, "note": 'a "quoted" 100%_'} if origin else {}
            uow.versions.add(make_new_version("fraud", manifest=manifest, provenance=prov),
                             at=AT, actor="ana")
        uow.versions.add(make_new_version("fraud", seed="other"), at=AT, actor="ana")
        uow.commit()
    digest = manifest.digest
    with registry() as uow:
        found = uow.versions.with_digest
        assert found("fraud", digest, key="origin", origin=None).number == 1  # type: ignore[union-attr]
        assert found("fraud", digest, key="origin", origin="mlflow:m/2").number == 2  # type: ignore[union-attr]
        assert found("fraud", digest, key="origin", origin="mlflow:m/9") is None
        assert found("churn", digest, key="origin", origin=None) is None
