"""Content-addressed artifact stores: a local directory or any fsspec URL."""

from typing import Any

from lastgood.adapters.artifacts.factory import open_artifact_store, s3_options
from lastgood.adapters.artifacts.local import LocalArtifactStore

__all__ = ["FsspecArtifactStore", "LocalArtifactStore", "open_artifact_store", "s3_options"]


def __getattr__(name: str) -> Any:
    """`FsspecArtifactStore` on first use: a local store never pays for importing fsspec."""
    if name == "FsspecArtifactStore":
        from lastgood.adapters.artifacts.remote import FsspecArtifactStore

        return FsspecArtifactStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
