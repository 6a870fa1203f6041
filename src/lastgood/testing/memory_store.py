"""An artifact store in memory: the fake behind unit tests of the services."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

from lastgood.domain.errors import IntegrityError, NotFound
from lastgood.domain.versions import Blob
from lastgood.ports import Progress


class MemoryArtifactStore:
    """Content-addressed bytes in a dict; `corrupt()` flips a byte for integrity tests."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.published: dict[str, bytes] = {}  # models/<name>/<path> -> bytes

    def put(self, source: BinaryIO, *, progress: Progress | None = None) -> Blob:
        data = source.read()
        if progress:
            progress(len(data))
        sha = hashlib.sha256(data).hexdigest()
        created = sha not in self.blobs
        self.blobs[sha] = data
        return Blob(sha, len(data), created)

    def read(self, sha256: str) -> bytes:
        if sha256 not in self.blobs:
            raise NotFound(f"artifact {sha256[:12]} is not in the store",
                           fix="re-register the version or restore the store")
        data = self.blobs[sha256]
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise IntegrityError(f"artifact {sha256[:12]} is corrupted (hashes to {actual[:12]})",
                                 fix="restore it from a backup or re-register the version")
        return data

    def fetch(self, sha256: str, dest: Path) -> None:
        dest.write_bytes(self.read(sha256))

    def exists(self, sha256: str) -> bool:
        return sha256 in self.blobs

    def delete(self, sha256: str) -> None:
        self.blobs.pop(sha256, None)

    def url(self, sha256: str) -> str:
        return f"memory://{sha256}"

    def stamp(self, sha256: str) -> str:
        if sha256 not in self.blobs:
            raise NotFound(f"artifact {sha256[:12]} is not in the store",
                           fix="re-register the version or restore the store")
        data = self.blobs[sha256]
        return f"{len(data)}-{hash(data)}"

    def publish(self, model_dir: Path, name: str) -> str:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                self.published[f"{name}/{path.relative_to(model_dir).as_posix()}"] = \
                    path.read_bytes()
        return f"memory://models/{name}"

    def corrupt(self, sha256: str) -> None:
        data = bytearray(self.blobs[sha256])
        data[0] ^= 0xFF
        self.blobs[sha256] = bytes(data)
