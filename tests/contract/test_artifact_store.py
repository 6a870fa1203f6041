"""One contract for every ArtifactStore: a local directory, fsspec on a local path, and S3 through
a real moto server on loopback."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from lastgood.adapters.artifacts import (
    FsspecArtifactStore,
    LocalArtifactStore,
    open_artifact_store,
)
from lastgood.adapters.artifacts.digests import CHUNK
from lastgood.domain.errors import IntegrityError, InvalidInput, NotFound, TransientError
from lastgood.ports import ArtifactStore
from tests.net import free_port, wait_for

BUCKET = "lastgood-contract"
CREDENTIALS = {"key": "testing", "secret": "testing"}
MOTO_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}




def wait_until_answering(url: str, proc: subprocess.Popen[bytes]) -> None:
    def answering() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}")
        with urllib.request.urlopen(url, timeout=1):
            return True

    # URLError, ConnectionError and TimeoutError are all OSErrors: not answering yet
    if not wait_for(answering, timeout_s=30, poll_s=0.1, retry_on=OSError):
        raise RuntimeError(f"moto_server did not answer at {url}")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3 API (moto_server) on a free loopback port, with the contract bucket."""
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)],
                            env={**os.environ, **MOTO_ENV},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{endpoint}/moto-api/", proc)
        s3_client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@dataclass
class Backend:
    """A store under test and a way to damage what it stored, as a disk or a person would."""

    store: ArtifactStore
    corrupt: Callable[[str], None]
    count: Callable[[], int]
    overwrite: Callable[[str, bytes], None]  # replace the stored bytes of a digest


def flip_first_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def files_under(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file() and ".tmp" not in p.parts)


def local_backend(tmp_path: Path) -> Backend:
    root = tmp_path / "store"
    store = open_artifact_store(str(root))
    return Backend(store, lambda sha: flip_first_byte(root / sha[:2] / sha),
                   lambda: files_under(root), partial(overwrite_file, root))


def overwrite_file(root: Path, sha: str, data: bytes) -> None:
    path = root / sha[:2] / sha
    path.chmod(0o644)
    path.write_bytes(data)


def fsspec_file_backend(tmp_path: Path) -> Backend:
    root = tmp_path / "fsspec-store"
    store = FsspecArtifactStore(f"file://{root}", auto_mkdir=True)
    return Backend(store, lambda sha: flip_first_byte(root / sha[:2] / sha),
                   lambda: files_under(root), partial(overwrite_file, root))


def s3_backend(endpoint: str) -> Backend:
    prefix = f"run-{uuid.uuid4().hex[:8]}"
    client = s3_client(endpoint)
    store = open_artifact_store(f"s3://{BUCKET}/{prefix}", endpoint_url=endpoint,
                                storage_options=CREDENTIALS)

    def corrupt(sha: str) -> None:
        key = f"{prefix}/{sha[:2]}/{sha}"
        body = bytearray(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        body[0] ^= 0xFF
        client.put_object(Bucket=BUCKET, Key=key, Body=bytes(body))

    def count() -> int:
        listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")
        return int(listed.get("KeyCount", 0))

    def overwrite(sha: str, data: bytes) -> None:
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{sha[:2]}/{sha}", Body=data)

    return Backend(store, corrupt, count, overwrite)


@pytest.fixture(params=["local", "fsspec-file", pytest.param("s3", marks=pytest.mark.slow)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return local_backend(tmp_path)
    if request.param == "fsspec-file":
        return fsspec_file_backend(tmp_path)
    return s3_backend(request.getfixturevalue("moto_endpoint"))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_round_trip_returns_the_same_bytes(backend: Backend, tmp_path: Path) -> None:
    data = b"model weights \x00\x01\x02" * 100
    blob = backend.store.put(io.BytesIO(data))
    assert (blob.sha256, blob.size, blob.created) == (sha(data), len(data), True)
    assert backend.store.exists(blob.sha256)
    assert backend.store.read(blob.sha256) == data
    dest = tmp_path / "fetched" / "model.bin"
    backend.store.fetch(blob.sha256, dest)
    assert dest.read_bytes() == data


def test_empty_bytes_are_a_valid_blob(backend: Backend) -> None:
    blob = backend.store.put(io.BytesIO(b""))
    assert (blob.sha256, blob.size) == (sha(b""), 0)
    assert backend.store.read(blob.sha256) == b""


def test_the_same_bytes_are_stored_once(backend: Backend) -> None:
    data = b"same bytes"
    first = backend.store.put(io.BytesIO(data))
    second = backend.store.put(io.BytesIO(data))
    assert first.created
    assert not second.created
    assert first.sha256 == second.sha256
    assert backend.count() == 1


def test_a_flipped_byte_is_detected_on_read_and_fetch(backend: Backend, tmp_path: Path) -> None:
    blob = backend.store.put(io.BytesIO(b"precious model bytes"))
    backend.corrupt(blob.sha256)
    with pytest.raises(IntegrityError) as caught:
        backend.store.read(blob.sha256)
    text = str(caught.value)
    assert f"artifact {blob.sha256} is corrupted: stored bytes hash to " in text
    assert "restore it from a backup or re-register the version" in text
    dest = tmp_path / "out" / "model.bin"
    with pytest.raises(IntegrityError):
        backend.store.fetch(blob.sha256, dest)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_the_stamp_changes_when_the_stored_bytes_are_replaced(backend: Backend) -> None:
    data = b"model bytes " * 50
    blob = backend.store.put(io.BytesIO(data))
    first = backend.store.stamp(blob.sha256)
    assert backend.store.stamp(blob.sha256) == first  # nothing changed: the same stamp
    backend.overwrite(blob.sha256, data[:-1])  # a truncated copy, as a failing disk leaves it
    assert backend.store.stamp(blob.sha256) != first
    with pytest.raises(IntegrityError):
        backend.store.read(blob.sha256)
    backend.store.delete(blob.sha256)
    with pytest.raises(NotFound):
        backend.store.stamp(blob.sha256)


def test_a_missing_digest_is_not_found(backend: Backend, tmp_path: Path) -> None:
    absent = sha(b"never stored")
    assert not backend.store.exists(absent)
    with pytest.raises(NotFound, match=absent):
        backend.store.read(absent)
    with pytest.raises(NotFound):
        backend.store.fetch(absent, tmp_path / "x.bin")
    assert not (tmp_path / "x.bin").exists()


def test_delete_removes_and_tolerates_absence(backend: Backend) -> None:
    blob = backend.store.put(io.BytesIO(b"to be collected"))
    backend.store.delete(blob.sha256)
    assert not backend.store.exists(blob.sha256)
    backend.store.delete(blob.sha256)
    assert backend.count() == 0


def test_progress_reports_every_byte(backend: Backend) -> None:
    data = os.urandom(CHUNK * 2 + 12345)
    seen: list[int] = []
    blob = backend.store.put(io.BytesIO(data), progress=seen.append)
    assert sum(seen) == blob.size == len(data)
    assert len(seen) == 3


def test_a_malformed_digest_is_refused(backend: Backend) -> None:
    with pytest.raises(InvalidInput, match="not a sha256 digest"):
        backend.store.read("../../etc/passwd")


def test_url_names_the_blob(backend: Backend) -> None:
    blob = backend.store.put(io.BytesIO(b"where am I"))
    url = backend.store.url(blob.sha256)
    assert url.endswith(f"/{blob.sha256[:2]}/{blob.sha256}")
    assert url.split("://", 1)[0] in {"file", "s3"}


def test_local_re_put_heals_a_corrupted_copy(tmp_path: Path) -> None:
    backend = local_backend(tmp_path)
    data = b"heal me"
    blob = backend.store.put(io.BytesIO(data))
    backend.corrupt(blob.sha256)
    again = backend.store.put(io.BytesIO(data))
    assert again.created
    assert backend.store.read(blob.sha256) == data


def test_local_store_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    store.put(io.BytesIO(b"a"))
    store.put(io.BytesIO(b"a"))
    assert list((tmp_path / "store" / ".tmp").iterdir()) == []


def test_local_put_sweeps_what_a_crashed_writer_left_in_the_spool(tmp_path: Path) -> None:
    spool = tmp_path / "store" / ".tmp"
    spool.mkdir(parents=True)
    stale, fresh = spool / "put-crashed", spool / "put-uploading"
    stale.write_bytes(b"half a model")
    fresh.write_bytes(b"still arriving")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    LocalArtifactStore(tmp_path / "store").put(io.BytesIO(b"a"))
    assert sorted(p.name for p in spool.iterdir()) == ["put-uploading"]


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_an_unreachable_s3_endpoint_is_transient() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    store = open_artifact_store(f"s3://{BUCKET}/p", endpoint_url=endpoint,
                                storage_options=CREDENTIALS, connect_timeout_s=1,
                                max_attempts=1)
    calls: list[Callable[[], object]] = [
        lambda: store.put(io.BytesIO(b"x")),
        lambda: store.read(sha(b"x")),
        lambda: store.exists(sha(b"x")),
    ]
    for call in calls:
        with pytest.raises(TransientError) as caught:
            call()
        assert "unreachable" in str(caught.value)
        assert "LASTGOOD_STORE_URL" in caught.value.fix


@pytest.mark.slow
def test_a_missing_bucket_names_the_fix(moto_endpoint: str) -> None:
    store = open_artifact_store("s3://no-such-bucket/p", endpoint_url=moto_endpoint,
                                storage_options=CREDENTIALS)
    with pytest.raises(NotFound) as caught:
        store.put(io.BytesIO(b"x"))
    assert "bucket" in caught.value.message
    assert "create the bucket" in caught.value.fix


@pytest.mark.parametrize(
    ("url", "kind"),
    [("relative/store", LocalArtifactStore), ("/abs/store", LocalArtifactStore),
     ("file:///abs/store", LocalArtifactStore), ("s3://bucket/prefix", FsspecArtifactStore),
     ("memory://lastgood", FsspecArtifactStore)],
)
def test_open_chooses_the_store_by_url(url: str, kind: type) -> None:
    assert isinstance(open_artifact_store(url, storage_options={}), kind)


def test_a_file_url_keeps_its_path() -> None:
    store = open_artifact_store("file:///srv/lastgood%20store")
    assert isinstance(store, LocalArtifactStore)
    assert store.root == Path("/srv/lastgood store")


def test_an_empty_url_is_refused() -> None:
    with pytest.raises(InvalidInput, match="LASTGOOD_STORE_URL"):
        open_artifact_store("  ")


def test_a_store_still_reads_after_pickling(backend: Backend) -> None:
    # serving hands its loader, store included, to a probe process
    import pickle

    blob = backend.store.put(io.BytesIO(b"crosses a process boundary"))
    copy = pickle.loads(pickle.dumps(backend.store))
    assert copy.read(blob.sha256) == b"crosses a process boundary"


def test_a_missing_spool_dir_is_named(tmp_path: Path) -> None:
    store = open_artifact_store("memory://lastgood-spool", spool_dir=tmp_path / "absent")
    with pytest.raises(InvalidInput, match="absent"):
        store.put(io.BytesIO(b"x"))


def published_files(url: str, endpoint: str | None) -> dict[str, bytes]:
    """What a serving platform finds under a published model directory, read with its own
    client (boto3 for s3://, the filesystem otherwise)."""
    if url.startswith("s3://"):
        assert endpoint is not None
        bucket, prefix = url.removeprefix("s3://").split("/", 1)
        client = s3_client(endpoint)
        keys = [o["Key"] for o in client.list_objects_v2(
            Bucket=bucket, Prefix=f"{prefix}/")["Contents"]]
        return {k.removeprefix(f"{prefix}/"): client.get_object(Bucket=bucket, Key=k)[
            "Body"].read() for k in keys}
    root = Path(url.removeprefix("file://"))
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


def test_a_model_directory_is_published_as_a_directory_a_platform_loads(
        backend: Backend, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    model_dir = tmp_path / "iris"
    files = {"MLmodel": b"flavors: {}\n", "model.skops": b"\x00weights" * 50,
             "nested/requirements.txt": b"scikit-learn\n"}
    for name, data in files.items():
        (model_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (model_dir / name).write_bytes(data)
    url = backend.store.publish(model_dir, "iris/3")
    assert url.rstrip("/").endswith("models/iris/3")
    endpoint = (request.getfixturevalue("moto_endpoint") if url.startswith("s3://") else None)
    assert published_files(url, endpoint) == files
    assert backend.store.publish(model_dir, "iris/3") == url  # again: the same directory
    assert published_files(url, endpoint) == files
