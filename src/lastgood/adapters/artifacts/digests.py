"""What every artifact store shares: digest checks, hashing while copying, the integrity error."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO, Protocol

from lastgood.domain.errors import IntegrityError, InvalidInput
from lastgood.domain.versions import SHA256_PATTERN
from lastgood.ports import Progress

CHUNK = 1024 * 1024
"""Bytes per read: large enough to be fast, small enough to keep memory flat for big models."""


class Sink(Protocol):
    def write(self, data: bytes, /) -> int | None: ...


def check_digest(sha256: str) -> str:
    """Return `sha256` if it is 64 lowercase hex digits; anything else could escape the store."""
    if not SHA256_PATTERN.match(sha256):
        raise InvalidInput(f"{sha256!r} is not a sha256 digest",
                           fix="pass the 64 lowercase hex digits from the version's manifest")
    return sha256


def chunks(source: BinaryIO) -> Iterator[bytes]:
    """The source's bytes in CHUNK-sized pieces, without reading it whole."""
    while True:
        data = source.read(CHUNK)
        if not data:
            return
        yield data


def copy_hashing(pieces: Iterable[bytes], sink: Sink, progress: Progress | None = None,
                 ) -> tuple[str, int]:
    """Write every piece to `sink` while hashing; returns (sha256, size)."""
    hasher = hashlib.sha256()
    size = 0
    for data in pieces:
        hasher.update(data)
        sink.write(data)
        size += len(data)
        if progress is not None:
            progress(len(data))
    return hasher.hexdigest(), size


def corrupted(sha256: str, actual: str, where: str) -> IntegrityError:
    """The error for stored bytes that no longer hash to their name."""
    return IntegrityError(
        f"artifact {sha256} is corrupted: stored bytes hash to {actual}",
        fix="restore it from a backup or re-register the version",
        details={"sha256": sha256, "actual": actual, "url": where},
    )


def verify(sha256: str, data: bytes, where: str) -> bytes:
    """Return `data` if it hashes to `sha256`, else raise IntegrityError."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise corrupted(sha256, actual, where)
    return data
