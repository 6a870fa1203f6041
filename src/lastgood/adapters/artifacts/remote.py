"""A content-addressed artifact store on any fsspec URL (s3://bucket/prefix through s3fs)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import fsspec

from lastgood.adapters.artifacts.digests import (
    CHUNK,
    check_digest,
    chunks,
    copy_hashing,
    corrupted,
    verify,
)
from lastgood.domain.errors import (
    Forbidden,
    InvalidInput,
    LastGoodError,
    NotFound,
    TransientError,
    Unauthorized,
)
from lastgood.domain.versions import Blob
from lastgood.ports import Progress

# Object stores where a single upload becomes visible all at once (multipart uploads included);
# elsewhere an upload goes to a temporary key first and is moved into place.
ATOMIC_UPLOAD = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"})
# Errors of the local disk (spool and cache files), not of the remote store.
LOCAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES})
FIX_URL = "check LASTGOOD_STORE_URL (and LASTGOOD_S3_ENDPOINT_URL for S3-compatible stores)"


class FsspecArtifactStore:
    """Bytes under <url>/<sha256[:2]>/<sha256> on any fsspec filesystem, verified on read.

    `storage_options` go to the filesystem (for s3fs: endpoint_url, key, secret,
    config_kwargs, ...). Bytes are hashed into a local spool file first, so the key is known
    before anything is uploaded and no partial object ever appears under it.
    """

    def __init__(self, url: str, *, spool_dir: Path | None = None,
                 **storage_options: Any) -> None:
        self._url = url.rstrip("/")
        self._spool_dir = spool_dir
        fs, root = fsspec.core.url_to_fs(self._url, **storage_options)
        self._fs: Any = fs
        self._root: str = str(root).rstrip("/")
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        self._atomic = protocol in ATOMIC_UPLOAD

    def put(self, source: BinaryIO, *, progress: Progress | None = None) -> Blob:
        """Hash `source` into a local spool file, then upload it under its digest (dedupes).

        An object already stored under the digest with the same size is kept: comparing
        sizes is what an object store offers cheaply; reads verify every byte anyway.
        """
        where = self._spool_dir or Path(tempfile.gettempdir())
        with _local_disk("spool the artifact in", where):
            fd, name = tempfile.mkstemp(dir=where, prefix="lastgood-put-")
        spool = Path(name)
        try:
            with _local_disk("spool the artifact in", where), os.fdopen(fd, "wb") as out:
                sha256, size = copy_hashing(chunks(source), out, progress)
            key = self._key(sha256)
            with self._translated("store an artifact"):
                if self._stored_size(key) == size:
                    return Blob(sha256=sha256, size=size, created=False)
                self._upload(spool, key)
            return Blob(sha256=sha256, size=size, created=True)
        finally:
            spool.unlink(missing_ok=True)

    def read(self, sha256: str) -> bytes:
        """The bytes, verified; IntegrityError on mismatch, NotFound when absent."""
        key = self._key(check_digest(sha256))
        with self._translated("read an artifact", sha256):
            data: bytes = self._fs.cat_file(key)
        return verify(sha256, data, self.url(sha256))

    def fetch(self, sha256: str, dest: Path) -> None:
        """Stream the object to `dest` while hashing; a mismatch leaves no file behind."""
        key = self._key(check_digest(sha256))
        dest = Path(dest)
        with _local_disk("fetch the artifact into", dest.parent):
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        tmp = Path(name)
        try:
            with (os.fdopen(fd, "wb") as out, self._translated("fetch an artifact", sha256),
                  self._fs.open(key, "rb", block_size=CHUNK) as src):
                actual, _ = copy_hashing(chunks(src), out)
            if actual != sha256:
                raise corrupted(sha256, actual, self.url(sha256))
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def exists(self, sha256: str) -> bool:
        """Whether an object with that digest is stored (not whether it is intact)."""
        key = self._key(check_digest(sha256))
        with self._translated("look up an artifact"):
            return bool(self._fs.exists(key))

    def delete(self, sha256: str) -> None:
        """Remove the object; deleting what is absent is not an error."""
        key = self._key(check_digest(sha256))
        with self._translated("delete an artifact"):
            try:
                self._fs.rm_file(key)
            except FileNotFoundError as exc:
                if _missing_bucket(exc):
                    raise

    def url(self, sha256: str) -> str:
        """The object's full URL, e.g. s3://bucket/prefix/ab/abcdef…"""
        return str(self._fs.unstrip_protocol(self._key(check_digest(sha256))))

    def stamp(self, sha256: str) -> str:
        """The object's size and ETag (or modification time): a rewrite changes it."""
        key = self._key(check_digest(sha256))
        with self._translated("look at an artifact", sha256):
            info = self._fs.info(key)
        version = next((info[k] for k in ("ETag", "etag", "mtime", "LastModified", "created")
                        if info.get(k) is not None), "")
        return f"{info.get('size')}-{version}"

    def publish(self, model_dir: Path, name: str) -> str:
        """Upload the model directory under <url>/models/<name>/, file by file; its URL."""
        prefix = f"{self._root}/models/{name}"
        with self._translated("publish a model directory"):
            for path in sorted(model_dir.rglob("*")):
                if path.is_file():
                    self._upload(path, f"{prefix}/{path.relative_to(model_dir).as_posix()}")
        return str(self._fs.unstrip_protocol(prefix))

    def _key(self, sha256: str) -> str:
        return f"{self._root}/{sha256[:2]}/{sha256}"

    def _stored_size(self, key: str) -> int | None:
        try:
            return int(self._fs.info(key)["size"])
        except FileNotFoundError as exc:
            if _missing_bucket(exc):
                raise
            return None

    def _upload(self, spool: Path, key: str) -> None:
        if self._atomic:
            self._fs.put_file(str(spool), key)
            return
        staging = f"{self._root}/.tmp/{hashlib.sha256(os.urandom(16)).hexdigest()[:16]}"
        self._fs.put_file(str(spool), staging)
        self._fs.mv(staging, key)

    @contextlib.contextmanager
    def _translated(self, action: str, sha256: str | None = None) -> Iterator[None]:
        """Turn s3fs/botocore/aiohttp/OSError failures into the domain's error tree."""
        try:
            yield
        except LastGoodError:
            raise
        except OSError as exc:
            raise self._os_error(action, exc, sha256) from exc
        except Exception as exc:
            if _is_missing_credentials(exc):
                raise Unauthorized(f"no credentials to {action} in {self._url}",
                                   fix="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or "
                                       "AWS_PROFILE for the artifact store") from exc
            if isinstance(exc, _transient_errors()):
                raise self._unreachable(action, exc) from exc
            raise

    def _os_error(self, action: str, exc: OSError, sha256: str | None) -> LastGoodError:
        if exc.errno in LOCAL_ERRNOS:  # s3fs errors carry no errno: this is the local disk
            return InvalidInput(f"cannot {action}: {exc.strerror} on the local disk",
                                fix="free space (or fix permissions) in the temp or cache "
                                    "directory")
        if isinstance(exc, FileNotFoundError):
            return self._not_found(exc, sha256)
        if isinstance(exc, PermissionError):
            return Forbidden(f"the artifact store {self._url} refused to {action}: {exc}",
                             fix="check the store credentials (AWS_ACCESS_KEY_ID/AWS_PROFILE) "
                                 "and the bucket policy")
        return self._unreachable(action, exc)

    def _unreachable(self, action: str, exc: BaseException) -> TransientError:
        return TransientError(
            f"the artifact store {self._url} is unreachable (while trying to {action}): {exc}",
            fix=f"{FIX_URL}, the network and the store; the operation can be retried",
            details={"url": self._url})

    def _not_found(self, exc: FileNotFoundError, sha256: str | None) -> NotFound:
        if _missing_bucket(exc):
            return NotFound(f"the bucket of the artifact store {self._url} does not exist",
                            fix=f"create the bucket, or {FIX_URL}")
        what = f"artifact {sha256}" if sha256 else "the artifact"
        return NotFound(f"{what} is not in the store at {self._url}",
                        fix="check LASTGOOD_STORE_URL points at the store the version was "
                            "registered with, or re-register the version")


@contextlib.contextmanager
def _local_disk(action: str, where: Path) -> Iterator[None]:
    """Errors of the local spool or cache directory, told apart from the store's."""
    try:
        yield
    except OSError as exc:
        raise InvalidInput(f"cannot {action} {where}: {exc.strerror or exc}",
                           fix="free space (or fix permissions) there") from exc


def _missing_bucket(exc: BaseException) -> bool:
    return "bucket" in str(exc).lower()


def _is_missing_credentials(exc: BaseException) -> bool:
    missing = _foreign_class("botocore.exceptions", "NoCredentialsError")
    return missing is not None and isinstance(exc, missing)


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Network failures of the stores we know, imported lazily: only s3 needs botocore."""
    found = [_foreign_class("botocore.exceptions", "BotoCoreError"),
             _foreign_class("aiohttp", "ClientError")]
    return (TimeoutError, *(cls for cls in found if cls is not None))


def _foreign_class(module: str, name: str) -> type[BaseException] | None:
    try:
        cls: type[BaseException] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return cls
