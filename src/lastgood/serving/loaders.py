"""The real loader: fetch a version's verified files into a local cache, then load its format."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path, PurePosixPath

from lastgood.domain.errors import IntegrityError
from lastgood.domain.versions import Version
from lastgood.ports import ArtifactStore, ModelFormats, Predictor

__all__ = ["ArtifactLoader"]

COMPLETE = ".lastgood-complete"


class ArtifactLoader:
    """A `Loader` over an artifact store and the model formats (both passed in by the root).

    Files land under `cache_dir/<model>/<number>-<digest>/` at their manifest paths. A directory
    is published by an atomic rename only once every file was fetched and verified, so a crash
    mid-fetch never leaves a half directory that a later load would trust. It pickles when its
    parts do, so it can be handed to a probe process.
    """

    def __init__(self, *, store: ArtifactStore, formats: ModelFormats, cache_dir: Path) -> None:
        self.store = store
        self.formats = formats
        self.cache_dir = cache_dir

    def __call__(self, version: Version) -> Predictor:
        """Fetch (once) and load `version`; blocking, so call it off the event loop."""
        return self.formats.load(version, self.fetch(version))

    def directory(self, version: Version) -> Path:
        """Where the files of `version` live once fetched."""
        return self.cache_dir / version.model / f"{version.number}-{version.digest[:16]}"

    def fetch(self, version: Version) -> Path:
        """The local directory holding every verified file of `version`."""
        final = self.directory(version)
        if (final / COMPLETE).exists():
            return final
        staging = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        staging.mkdir(parents=True)
        try:
            for item in version.manifest.files:
                dest = staging / safe_relative(item.path)
                dest.parent.mkdir(parents=True, exist_ok=True)
                self.store.fetch(item.sha256, dest)
            (staging / COMPLETE).write_text(version.digest)
            try:
                staging.rename(final)
            except OSError:  # another process published it first: theirs is as good
                if not (final / COMPLETE).exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final


def safe_relative(path: str) -> Path:
    """A manifest path as a relative local path; refuse absolute paths and `..` escapes."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise IntegrityError(f"manifest path {path!r} escapes the version directory",
                             fix="re-register the version from a clean artifact directory")
    return Path(*pure.parts)
