"""A content-addressed artifact store in a local directory: root/ab/abcdef… (sha256)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lastgood.adapters.artifacts.digests import (
    check_digest,
    chunks,
    copy_hashing,
    corrupted,
    verify,
)
from lastgood.domain.errors import InvalidInput, NotFound, TransientError
from lastgood.domain.versions import Blob
from lastgood.ports import Progress

READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
FIX_STORE = "check that LASTGOOD_STORE_URL names a writable local directory with free space"
STALE_SPOOL_S = 3600.0
"""A spool file untouched this long was left by a crashed writer (a live upload writes, so its
mtime stays fresh); the next put sweeps it."""


class LocalArtifactStore:
    """Bytes under root/<sha256[:2]>/<sha256>, written atomically and verified on every read."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root).expanduser().absolute()

    @property
    def root(self) -> Path:
        return self._root

    def put(self, source: BinaryIO, *, progress: Progress | None = None) -> Blob:
        """Stream `source` into the store while hashing; same bytes twice are stored once.

        The bytes go to a temporary file on the same filesystem, are fsynced, then renamed into
        place and the directory fsynced, so a crash leaves either nothing or the whole blob.
        An existing copy that no longer matches its name is replaced: re-registering heals it.
        Bytes already stored intact are not fsynced again: the spool copy is thrown away, and
        the stored one was made durable when it was first put.
        """
        spool = self._root / ".tmp"
        with _translated("store an artifact in", self._root):
            spool.mkdir(parents=True, exist_ok=True)
            _sweep_stale(spool)
            fd, name = tempfile.mkstemp(dir=spool, prefix="put-")
            tmp = Path(name)
            try:
                with os.fdopen(fd, "wb") as out:
                    sha256, size = copy_hashing(chunks(source), out, progress)
                    final = self._path(sha256)
                    if final.exists() and self._intact(final, sha256):
                        return Blob(sha256=sha256, size=size, created=False)
                    out.flush()
                    os.fsync(out.fileno())
                self._make_dir(final.parent)
                os.chmod(tmp, READ_ONLY)  # stored bytes are never edited in place
                os.replace(tmp, final)
                _fsync_dir(final.parent)
                return Blob(sha256=sha256, size=size, created=True)
            finally:
                tmp.unlink(missing_ok=True)

    def read(self, sha256: str) -> bytes:
        """The bytes, verified; IntegrityError on mismatch, NotFound when absent."""
        path = self._existing(sha256)
        with _translated("read an artifact from", self._root):
            data = path.read_bytes()
        return verify(sha256, data, self.url(sha256))

    def fetch(self, sha256: str, dest: Path) -> None:
        """Copy the verified bytes to `dest`; a mismatch leaves no file behind."""
        path = self._existing(sha256)
        dest = Path(dest)
        with _translated("fetch an artifact from", self._root):
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
            tmp = Path(name)
            try:
                with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                    actual, _ = copy_hashing(chunks(src), out)
                if actual != sha256:
                    raise corrupted(sha256, actual, self.url(sha256))
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)

    def exists(self, sha256: str) -> bool:
        """Whether bytes with that digest are stored (not whether they are intact)."""
        return self._path(check_digest(sha256)).is_file()

    def delete(self, sha256: str) -> None:
        """Remove the bytes; deleting what is absent is not an error."""
        path = self._path(check_digest(sha256))
        with _translated("delete an artifact from", self._root):
            path.unlink(missing_ok=True)

    def url(self, sha256: str) -> str:
        """A file:// URL of the stored bytes."""
        return self._path(check_digest(sha256)).as_uri()

    def stamp(self, sha256: str) -> str:
        """Size, modification time (ns) and inode of the stored file: any rewrite changes it."""
        path = self._existing(sha256)
        with _translated("look at an artifact in", self._root):
            st = path.stat()
        return f"{st.st_size}-{st.st_mtime_ns}-{st.st_ino}"

    def publish(self, model_dir: Path, name: str) -> str:
        """Copy the model directory to root/models/<name>/ (a local path a platform on this
        host loads); the path."""
        dest = self._root / "models" / name
        with _translated("publish a model directory in", self._root):
            shutil.copytree(model_dir, dest, dirs_exist_ok=True)
        return str(dest)

    def _path(self, sha256: str) -> Path:
        return self._root / sha256[:2] / sha256

    def _existing(self, sha256: str) -> Path:
        path = self._path(check_digest(sha256))
        if not path.is_file():
            raise NotFound(f"artifact {sha256} is not in the store at {self._root}",
                           fix="check LASTGOOD_STORE_URL points at the store the version was "
                               "registered with, or re-register the version")
        return path

    def _intact(self, path: Path, sha256: str) -> bool:
        with path.open("rb") as src:
            actual, _ = copy_hashing(chunks(src), _Discard())
        return actual == sha256

    def _make_dir(self, directory: Path) -> None:
        if directory.is_dir():
            return
        directory.mkdir(parents=True, exist_ok=True)
        _fsync_dir(directory.parent)  # the new directory entry must survive a crash too


class _Discard:
    def write(self, data: bytes, /) -> int:
        return len(data)


def _sweep_stale(spool: Path, *, older_than_s: float = STALE_SPOOL_S) -> None:
    """Remove spool files a crashed writer left behind; never fails a put."""
    cutoff = time.time() - older_than_s
    for leftover in spool.glob("put-*"):
        with contextlib.suppress(OSError):  # gone already, or another writer's business
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _translated(action: str, root: Path) -> Iterator[None]:
    """Turn filesystem errors into the domain's, naming the store and the fix."""
    try:
        yield
    except PermissionError as exc:
        raise InvalidInput(f"cannot {action} {root}: permission denied", fix=FIX_STORE) from exc
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise InvalidInput(f"cannot {action} {root}: {exc.strerror}", fix=FIX_STORE) from exc
        raise TransientError(f"cannot {action} {root}: {exc}",
                             fix=f"{FIX_STORE}; the operation can be retried") from exc
